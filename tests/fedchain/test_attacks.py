"""Attacks as plug-ins: each built-in does what it says, the registry, the Byzantine learner,
the test-only peer setting, and Byzantine members in the simulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tomli_w
import torch
from rich.console import Console

from consensus.serialization import weights_to_bytes
from consensus.task_spec import AggregationSpec
from fedchain.attacks import (
    ENTRY_POINT_GROUP,
    Attack,
    AttackView,
    ByzantineLearner,
    attack_names,
    attack_seed,
    get_attack,
)
from fedchain.attacks.collude import Collude
from fedchain.attacks.label_flip import LabelFlip
from fedchain.attacks.updates import SignFlip
from fedchain.errors import ConfigError
from fedchain.simulator.byzantine import byzantine_members
from fedchain.simulator.run import simulate
from models.tasks import InstitutionData, Learner, LocalData, Samples, get_task
from peer.config import ALLOW_ATTACKS_ENV, load_config
from peer.records import History
from tests import factories

G = {"w": torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "b": torch.tensor([0.5])}
H = {"w": torch.tensor([[1.5, 1.0], [3.0, 6.0]]), "b": torch.tensor([0.0])}


def view(**kw) -> AttackView:
    return AttackView(**{"round": 1, "global_weights": G, "honest_update": H, "seed": 7, **kw})


def assert_exact(got: dict[str, torch.Tensor], want: dict[str, list[Any]]) -> None:
    assert list(got) == list(want)
    for key, value in want.items():
        assert got[key].dtype == torch.float32 and got[key].is_contiguous()
        assert torch.equal(got[key], torch.tensor(value, dtype=torch.float32)), key


# -- the built-ins ----------------------------------------------------------------------------


def test_sign_flip_reverses_the_change() -> None:
    assert_exact(get_attack("sign-flip").craft(view()), {"w": [[0.5, 3.0], [3.0, 2.0]], "b": [1.0]})
    assert_exact(
        get_attack("sign-flip", scale=2).craft(view()), {"w": [[0.0, 4.0], [3.0, 0.0]], "b": [1.5]}
    )


def test_scaling_scales_the_change() -> None:
    assert_exact(
        get_attack("scaling").craft(view()), {"w": [[51.0, -98.0], [3.0, 204.0]], "b": [-49.5]}
    )
    assert_exact(
        get_attack("scaling", factor=3).craft(view()),
        {"w": [[2.5, -1.0], [3.0, 10.0]], "b": [-1.0]},
    )


def test_gaussian_noise_is_seeded_by_the_view() -> None:
    attack = get_attack("gaussian-noise", sigma=0.5)
    got = attack.craft(view(seed=11))
    gen = torch.Generator().manual_seed(11)
    noise = {k: torch.randn(H[k].shape, generator=gen, dtype=torch.float64) for k in ("b", "w")}
    for key in ("w", "b"):
        want = (H[key].to(torch.float64) + 0.5 * noise[key]).to(torch.float32)
        assert torch.equal(got[key], want)
    assert list(got) == ["w", "b"]
    assert torch.equal(attack.craft(view(seed=11))["w"], got["w"])
    assert not torch.equal(attack.craft(view(seed=12))["w"], got["w"])


def test_free_ride_sends_the_global_model_back() -> None:
    got = get_attack("free-ride").craft(view())
    assert_exact(got, {"w": [[1.0, 2.0], [3.0, 4.0]], "b": [0.5]})
    assert weights_to_bytes(got) == weights_to_bytes(G)  # the chain's free-rider check sees it


def test_collude_reverses_the_honest_mean_and_is_identical_for_every_colluder() -> None:
    others = ({"w": torch.full((2, 2), 3.0), "b": torch.tensor([1.5])}, H)
    attack = get_attack("collude")
    # mean change: w ((2,1,0,-1) + (0.5,-1,0,2)) / 2 = (1.25, 0, 0, 0.5); b (1 - 0.5) / 2 = 0.25
    mine = attack.craft(view(honest_updates=others, seed=1))
    assert_exact(mine, {"w": [[-0.25, 2.0], [3.0, 3.5]], "b": [0.25]})
    theirs = attack.craft(view(honest_updates=others, seed=2, honest_update=G))
    assert weights_to_bytes(mine) == weights_to_bytes(theirs)
    # without the honest updates: a pseudo-change from the shared seed, still identical
    a = attack.craft(view(seed=1, shared_seed=5))
    b = attack.craft(view(seed=2, shared_seed=5, honest_update=G))
    assert weights_to_bytes(a) == weights_to_bytes(b) != weights_to_bytes(G)
    assert attack.needs_honest_updates


def test_label_flip_flips_training_labels_only() -> None:
    data = InstitutionData(
        train=Samples(np.zeros((4, 2)), np.array([0, 1, 2, 1])),
        test=Samples(np.zeros((2, 2)), np.array([2, 0])),
    )
    flipped = get_attack("label-flip").poison_data(data)
    assert flipped.train.y.tolist() == [2, 1, 0, 1]
    assert flipped.test.y.tolist() == [2, 0] and data.train.y.tolist() == [0, 1, 2, 1]
    assert LabelFlip(num_classes=4).poison_data(data).train.y.tolist() == [3, 2, 1, 2]
    assert get_attack("label-flip").craft(view())["w"].equal(H["w"])  # honest training after


def test_seeds_differ_per_member_and_round_and_are_stable() -> None:
    assert attack_seed(0, 1, "va") == attack_seed(0, 1, "va") < 2**63
    assert len({attack_seed(0, 1, "va"), attack_seed(0, 2, "va"), attack_seed(0, 1, "x")}) == 3


# -- the registry -----------------------------------------------------------------------------


def test_registry_lists_builtins_and_refuses_unknown_names_and_params() -> None:
    builtins = {"sign-flip", "scaling", "gaussian-noise", "label-flip", "free-ride", "collude"}
    assert builtins <= set(attack_names())
    with pytest.raises(ConfigError, match="unknown attack 'nope'; known attacks: collude, free"):
        get_attack("nope")
    with pytest.raises(ConfigError, match=r"'sign-flip' has no parameter 'factor'.*scale"):
        get_attack("sign-flip", factor=2)
    with pytest.raises(ConfigError, match="parameter 'sigma' must be a finite number > 0"):
        get_attack("gaussian-noise", sigma=-1)
    with pytest.raises(ConfigError, match="parameter 'factor'"):
        get_attack("scaling", factor="big")
    with pytest.raises(ConfigError, match="'num_classes' must be an integer >= 2"):
        get_attack("label-flip", num_classes=1)


PLUGIN = """
from fedchain.attacks import Attack
from fedchain.attacks.abc import as_update


class Zero(Attack):
    name = "zero"

    def __init__(self, value=0.0):
        self.value = value

    def craft(self, view):
        return {k: v * self.value for k, v in as_update(view.global_weights).items()}


class Misnamed(Zero):
    name = "other"
"""


def install_plugin(root: Path, dist: str, entries: dict[str, str], module: str | None) -> None:
    factories.install_plugin(root, dist, ENTRY_POINT_GROUP, entries, module)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    with factories.plugin_site(tmp_path, monkeypatch) as root:
        yield root


def test_a_third_party_attack_registers_through_its_entry_point(site) -> None:
    install_plugin(site, "fedchain_test_zero", {"zero": "fedchain_test_zero:Zero"}, PLUGIN)
    assert "zero" in attack_names()
    got = get_attack("zero", value=0.0).craft(view())
    assert_exact(got, {"w": [[0.0, 0.0], [0.0, 0.0]], "b": [0.0]})


def test_broken_plugins_give_one_line_and_spare_the_builtins(site) -> None:
    install_plugin(
        site,
        "fedchain_test_broken",
        {
            "gone": "fedchain_test_nowhere:Zero",
            "other-name": "fedchain_test_broken:Misnamed",
            "sign-flip": "fedchain_test_broken:Zero",  # cannot replace a built-in
        },
        PLUGIN,
    )
    with pytest.raises(ConfigError) as err:
        get_attack("gone")
    assert "\n" not in str(err.value)
    assert "attack plug-in 'gone' (entry point 'fedchain_test_nowhere:Zero'" in str(err.value)
    assert "cannot be loaded: ModuleNotFoundError" in str(err.value)
    with pytest.raises(ConfigError, match="named 'other'"):
        get_attack("other-name")
    assert isinstance(get_attack("sign-flip"), SignFlip)


# -- the Byzantine learner --------------------------------------------------------------------


def heart_learner(name: str = "cleveland") -> Learner:
    task = get_task("heart")
    spec = task.default_spec(training={"epochs": 1})
    return Learner.from_local(task, spec, LocalData(partition=name), name)


def test_byzantine_learner_wraps_a_real_heart_learner() -> None:
    honest = heart_learner()
    start = honest.initial_weights()
    trained = honest.train(start, 1)
    byz = ByzantineLearner(honest, get_attack("sign-flip"), member="cleveland", seed=0)
    assert byz.num_samples == honest.num_samples
    assert byz.reference_weights().keys() == honest.reference_weights().keys()
    crafted = byz.train(start, 1)
    for key, g in start.items():
        assert crafted[key].dtype == torch.float32 and crafted[key].is_contiguous()
        want = (2 * g.double() - trained[key].double()).float()
        assert torch.equal(crafted[key], want)
    assert set(byz.evaluate(crafted)) == set(honest.evaluate(crafted))


@pytest.mark.parametrize("name", ["label-flip", "gaussian-noise", "sign-flip", "collude"])
def test_any_tensor_order_of_the_global_model_is_accepted(name: str) -> None:
    """The node decodes the global model in sorted name order, not the model's own order."""
    honest = heart_learner()
    start = honest.initial_weights()
    shuffled = {k: start[k] for k in reversed(list(start))}
    byz = ByzantineLearner(honest, get_attack(name), member="cleveland", seed=0)
    got = byz.train(shuffled, 1)
    assert list(got) == list(shuffled)
    assert all(got[k].shape == start[k].shape for k in start)


def test_label_flip_learner_trains_on_a_flipped_copy() -> None:
    honest = heart_learner()
    labels = honest.data.train.y.copy()
    byz = ByzantineLearner(honest, get_attack("label-flip"), member="cleveland", seed=0)
    start = honest.initial_weights()
    assert np.array_equal(honest.data.train.y, labels)  # the original keeps its data
    flipped = Learner(honest.task, honest.spec, byz.inner.data, "cleveland")  # type: ignore[attr-defined]
    assert np.array_equal(flipped.data.train.y, 1 - labels)
    assert all(
        torch.equal(a, b)
        for a, b in zip(byz.train(start, 1).values(), flipped.train(start, 1).values(), strict=True)
    )


def test_poisoning_needs_a_learner_with_data() -> None:
    class Bare:
        num_samples = 1

        def reference_weights(self):
            return {}

        def train(self, global_weights, round_no):
            return dict(global_weights)

        def evaluate(self, weights):
            return {}

        def plan_privacy(self, planned_rounds):
            return None

    with pytest.raises(ConfigError, match="poisons local data"):
        ByzantineLearner(Bare(), get_attack("label-flip"), member="x", seed=0)
    assert isinstance(ByzantineLearner(Bare(), get_attack("scaling"), member="x", seed=0), object)


def test_a_crafted_update_of_the_wrong_shape_is_refused() -> None:
    class Wrong(Attack):
        name = "wrong"

        def craft(self, view):
            return {"w": torch.zeros(3)}

    honest = heart_learner()
    byz = ByzantineLearner(honest, Wrong(), member="cleveland", seed=0)
    with pytest.raises(ValueError, match="crafted tensors"):
        byz.train(honest.initial_weights(), 1)


# -- the test-only peer setting -----------------------------------------------------------------

PEER = {
    "state_dir": "state",
    "institution": {"name": "cleveland"},
    "keys": {"eth_keystore": "keys/eth.json", "libp2p_keystore": "keys/libp2p.json"},
    "chain": {"rpc_url": "http://127.0.0.1:8545", "contract": "0x" + "ab" * 20, "task_id": 1},
    "ipfs": {"api": "/ip4/127.0.0.1/tcp/5001"},
    "data": {"partition": "cleveland"},
    "testing": {"attack": "scaling", "attack_params": {"factor": 10}},
}


def test_peer_config_refuses_testing_without_the_env_var(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "peer.toml"
    path.write_text(tomli_w.dumps(PEER))
    monkeypatch.delenv(ALLOW_ATTACKS_ENV, raising=False)
    with pytest.raises(ConfigError, match=r"\[testing\].*FEDCHAIN_ALLOW_ATTACKS=1"):
        load_config(path)
    monkeypatch.setenv(ALLOW_ATTACKS_ENV, "yes")
    with pytest.raises(ConfigError, match="FEDCHAIN_ALLOW_ATTACKS=1"):
        load_config(path)
    monkeypatch.setenv(ALLOW_ATTACKS_ENV, "1")
    cfg = load_config(path)
    assert cfg.testing is not None and cfg.testing.attack == "scaling"
    assert cfg.testing.attack_params == {"factor": 10}
    monkeypatch.delenv(ALLOW_ATTACKS_ENV)
    plain = {k: v for k, v in PEER.items() if k != "testing"}
    path.write_text(tomli_w.dumps(plain))
    assert load_config(path).testing is None


def test_peer_testing_attack_is_built_and_announced(tmp_path: Path, monkeypatch, caplog) -> None:
    from peer.startup import _testing_attack

    path = tmp_path / "peer.toml"
    path.write_text(tomli_w.dumps(PEER))
    monkeypatch.setenv(ALLOW_ATTACKS_ENV, "1")
    cfg = load_config(path)
    with caplog.at_level("WARNING", logger="fedchain.peer"):
        attack = _testing_attack(cfg)
    assert attack is not None and attack.describe() == {
        "name": "scaling",
        "params": {"factor": 10.0},
    }
    assert "TESTING ONLY" in caplog.text
    bad = {**PEER, "testing": {"attack": "scaling", "attack_params": {"scale": 2}}}
    path.write_text(tomli_w.dumps(bad))
    with pytest.raises(ConfigError, match="no parameter 'scale'"):
        _testing_attack(load_config(path))


# -- the simulator ------------------------------------------------------------------------------


def _quiet() -> Console:
    return Console(quiet=True)


def test_byzantine_members_are_chosen_from_the_seed() -> None:
    names = ["a", "b", "c", "d", "e"]
    assert byzantine_members(names, 2, 0) == byzantine_members(names, 2, 0)
    assert len(byzantine_members(names, 2, 0)) == 2
    assert {tuple(byzantine_members(names, 2, s)) for s in range(8)} != {("a", "b")}
    with pytest.raises(ConfigError, match="between 0 and the 5 peers"):
        byzantine_members(names, 6, 0)


def test_simulate_with_one_sign_flipping_member(tmp_path: Path) -> None:
    result = simulate(
        "heart",
        4,
        2,
        seed=0,
        out=tmp_path,
        local_only=False,
        console=_quiet(),
        attack="sign-flip",
        byzantine=1,
    )
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["byzantine"] == result.record["byzantine"]
    byz = record["byzantine"]
    assert byz["attack"] == {"name": "sign-flip", "params": {"scale": 1.0}}
    (member,) = byz["members"]
    assert member == byzantine_members(["cleveland", "hungary", "switzerland", "va"], 1, 0)[0]
    assert set(byz["addresses"]) == {member} and not byz["sees_honest_updates"]
    assert len(record["rounds"]) == 2
    assert all(len(r["participants"]) == 4 and r["left_out"] == {} for r in record["rounds"])


def test_colluders_submit_identical_bytes_and_one_is_left_out_as_a_copy(tmp_path: Path) -> None:
    seen: list[int] = []

    class Watched(Collude):
        def craft(self, view: AttackView) -> dict[str, torch.Tensor]:
            seen.append(len(view.honest_updates or ()))
            return super().craft(view)

    result = simulate(
        "heart",
        4,
        2,
        seed=0,
        out=tmp_path,
        local_only=False,
        console=_quiet(),
        attack=Watched(),
        byzantine=2,
    )
    # Both colluders saw both honest updates, in both rounds (also in round 2, which begins
    # when a colluder's attestation finalizes round 1: the honest members train first).
    assert seen == [2, 2, 2, 2]
    byz = result.record["byzantine"]
    assert byz["sees_honest_updates"] and len(byz["members"]) == 2
    addresses = {a.lower() for a in byz["addresses"].values()}
    assert len(result.record["rounds"]) == 2
    for round_record in result.record["rounds"]:
        cids = {p["address"].lower(): p["update_cid"] for p in round_record["participants"]}
        assert len({cids[a] for a in addresses}) == 1  # byte-identical submissions
        honest = [cid for a, cid in cids.items() if a not in addresses]
        assert cids[next(iter(addresses))] not in honest
        (copied,) = round_record["left_out"]
        assert copied.lower() in addresses and "copy" in round_record["left_out"][copied]
    round_1 = result.record["rounds"][0]
    honest_name = next(
        n for n in ("cleveland", "hungary", "switzerland", "va") if n not in byz["members"]
    )
    entry = next(iter(History(tmp_path / "peers" / honest_name).entries()))
    assert entry["left_out"] == round_1["left_out"]


def test_simulate_takes_an_aggregation_override(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown aggregation rule 'nope'"):
        simulate(
            "heart", 4, 1, out=tmp_path, console=_quiet(), aggregation=AggregationSpec(rule="nope")
        )


def test_simulate_refuses_mismatched_attack_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--attack needs --byzantine"):
        simulate("heart", 4, 1, out=tmp_path, console=_quiet(), attack="scaling")
    with pytest.raises(ConfigError, match="need --attack"):
        simulate("heart", 4, 1, out=tmp_path, console=_quiet(), byzantine=1)
    with pytest.raises(ConfigError, match="unknown attack"):
        simulate("heart", 4, 1, out=tmp_path, console=_quiet(), attack="x", byzantine=1)


def test_cli_attack_params_are_toml_values() -> None:
    from fedchain.cli import _key_values

    got = _key_values(["factor=10", "scale=0.5", "flag=true", "name=va", 'q="x y"'], "--p")
    assert got == {"factor": 10, "scale": 0.5, "flag": True, "name": "va", "q": "x y"}
    with pytest.raises(ConfigError, match="'factor' is not key=value"):
        _key_values(["factor"], "--attack-param")


def test_cli_simulate_with_an_attack(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fedchain.cli import app

    out = tmp_path / "run"
    args = ["simulate", "--peers", "4", "--rounds", "1", "--no-local-only", "--out", str(out)]
    attack = ["--attack", "scaling", "--attack-param", "factor=10"]
    result = CliRunner().invoke(app, [*args, *attack])
    assert result.exit_code == 0, result.output
    byz = json.loads((out / "record.json").read_text())["byzantine"]
    assert byz["attack"] == {"name": "scaling", "params": {"factor": 10.0}}
    assert len(byz["members"]) == 1  # --byzantine defaults to 1 with --attack
