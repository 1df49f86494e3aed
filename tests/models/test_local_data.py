"""Bring your own data: the readers accept documented files and name every problem in one line."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import ValidationError

from fedchain.errors import ConfigError, DataError
from models.datasets.heart import read_heart_frame
from models.tasks import Learner, LocalData, get_task
from models.tasks.heart import HEART_SCHEMA

SCHEMA: dict[str, Any] = {
    "features": [
        {"name": "age", "type": "float"},
        {"name": "visits", "type": "int"},
        {"name": "sex", "type": "category", "values": [0, 1]},
        {"name": "cp", "type": "category", "values": ["a", "b", "c"]},
    ],
    "label": {"name": "target", "classes": 2},
}
HEADER = ["id", "age", "visits", "sex", "cp", "target"]


def ehr_rows(n: int = 40, seed: int = 0) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        age = rng.normal(60, 10)
        target = int(age > 60)
        cp = "abc"[i % 3]
        rows.append([str(i), f"{age:.1f}", str(i % 5), str(i % 2), cp, str(target)])
    return rows


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def load_ehr(path: Path, schema: dict[str, Any] = SCHEMA, **local: Any):
    task = get_task("ehr-csv")
    return task.load(task.default_spec(task_args=schema), LocalData(path=path, **local))


# --- EHR CSV ---------------------------------------------------------------------------------


def test_valid_csv_loads_encodes_splits_and_trains(tmp_path):
    path = write_csv(tmp_path / "ehr.csv", ehr_rows())
    task = get_task("ehr-csv")
    spec = task.default_spec(task_args=SCHEMA)
    assert spec.model.arch == "logreg"
    assert spec.model.kwargs == {"in_features": 5, "num_classes": 2}  # 1 + 1 + 1 + 2
    data = task.load(spec, LocalData(path=path))
    assert data.train.size == 32 and data.test.size == 8 and data.num_samples == 32
    assert isinstance(data.train.x, np.ndarray) and data.train.x.dtype == np.float32
    assert data.train.x.shape == (32, 5)
    np.testing.assert_allclose(data.train.x.mean(axis=0), 0.0, atol=1e-5)  # z-scored
    assert task.primary_metric_for(spec) == "auroc"
    again = task.load(spec, LocalData(path=path))
    assert np.array_equal(again.test.y, data.test.y)  # the split is seeded
    other = task.load(spec, LocalData(path=path, split_seed=1, test_fraction=0.25))
    assert other.test.size == 10
    learner = Learner(task, spec, data, "hospital-a")
    weights = learner.train(learner.initial_weights(), 1)
    assert set(learner.evaluate(weights)) >= {"auroc", "macro_f1"}


def test_category_encoding_one_hot_without_the_first_level(tmp_path):
    rows = [[str(i), "50", "1", "1", "abc"[i % 3], str(i % 2)] for i in range(30)]
    path = write_csv(tmp_path / "ehr.csv", rows)
    data = load_ehr(path)
    assert isinstance(data.train.x, np.ndarray)
    raw_cp = np.unique(data.train.x[:, 3:5], axis=0)
    assert raw_cp.shape[0] == 3  # levels a, b, c -> (0,0), (1,0), (0,1) after scaling


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda rows, header: (rows, [h for h in header if h != "age"]), "lacks column"),
        (lambda rows, header: (_set(rows, 16, 1, "abc"), header), "line 18, column 'age'"),
        (lambda rows, header: (_set(rows, 3, 5, "2"), header), "label 2 is outside 0..1"),
        (lambda rows, header: (_set(rows, 0, 2, ""), header), "line 2, column 'visits'"),
        (lambda rows, header: (_set(rows, 4, 2, "1.5"), header), "not an integer"),
        (lambda rows, header: (_set(rows, 5, 4, "z"), header), "not one of the agreed values"),
        (lambda rows, header: (_set(rows, 6, 5, "yes"), header), "not a class index"),
        (lambda rows, header: ([r[:-1] for r in rows], header), "fields"),
    ],
    ids=[
        "missing-column",
        "wrong-dtype",
        "label-range",
        "missing",
        "int",
        "category",
        "label",
        "ragged",
    ],
)
def test_each_csv_problem_is_one_line_naming_file_and_place(tmp_path, edit, message):
    rows, header = edit(ehr_rows(), list(HEADER))
    if header != HEADER:
        rows = [[c for c, h in zip(r, HEADER, strict=True) if h in header] for r in rows]
    path = write_csv(tmp_path / "ehr.csv", rows, header)
    with pytest.raises(DataError, match=message) as caught:
        load_ehr(path)
    text = str(caught.value)
    assert "\n" not in text and str(path) in text


def _set(rows: list[list[str]], row: int, column: int, value: str) -> list[list[str]]:
    rows[row][column] = value
    return rows


def test_wrong_dtype_message_says_what_to_do(tmp_path):
    rows = _set(ehr_rows(), 16, 1, "abc")
    path = write_csv(tmp_path / "ehr.csv", rows)
    with pytest.raises(DataError) as caught:
        load_ehr(path)
    assert str(caught.value) == (
        f"data.path {path}: line 18, column 'age': 'abc' is not a number; "
        "fix the value or drop the row"
    )


def test_empty_header_only_too_small_and_one_class(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="is empty"):
        load_ehr(empty)
    with pytest.raises(DataError, match="no records"):
        load_ehr(write_csv(tmp_path / "header.csv", []))
    with pytest.raises(DataError, match="need at least 10"):
        load_ehr(write_csv(tmp_path / "few.csv", ehr_rows(8)))
    one_class = [[*r[:-1], "0"] for r in ehr_rows()]
    with pytest.raises(DataError, match="both classes"):
        load_ehr(write_csv(tmp_path / "one.csv", one_class))
    with pytest.raises(DataError, match="does not exist"):
        load_ehr(tmp_path / "none.csv")


def test_bad_schema_is_a_config_error():
    task = get_task("ehr-csv")
    with pytest.raises(ConfigError, match="needs 'values'"):
        task.default_spec(
            task_args={"features": [{"name": "sex", "type": "category"}], "label": SCHEMA["label"]}
        )
    with pytest.raises(ConfigError, match=r"task_args\.label"):
        task.default_spec(task_args={"features": SCHEMA["features"]})


def test_heart_from_own_csv_in_heart_schema(tmp_path):
    """A hospital with its own records joins the heart task: same 13 model inputs."""
    frame = read_heart_frame()
    rows = frame[frame["dataset"] == "Cleveland"].drop(columns=["slope", "ca", "thal"]).dropna()
    out = []
    for _, r in rows.iterrows():
        out.append(
            [
                r["age"],
                int(r["sex"] == "Male"),
                r["trestbps"],
                r["chol"],
                int(bool(r["fbs"])),
                r["thalch"],
                int(bool(r["exang"])),
                r["oldpeak"],
                r["cp"],
                r["restecg"],
                int(r["num"] > 0),
            ]
        )
    header = [f["name"] for f in HEART_SCHEMA["features"]] + ["target"]
    path = write_csv(tmp_path / "cleveland.csv", [[str(v) for v in row] for row in out], header)
    task = get_task("heart")
    spec = task.default_spec(training={"epochs": 20, "batch_size": 16})
    learner = Learner.from_local(task, spec, LocalData(path=path), "my-hospital")
    assert learner.data.train.x.shape[1] == 13 and learner.num_samples == 243
    weights = learner.train(learner.initial_weights(), 1)
    assert learner.evaluate(weights)["auroc"] > 0.75


# --- images ----------------------------------------------------------------------------------


def _images(n: int = 30, size: int = 28, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    images = rng.integers(0, 120, (n, size, size), dtype=np.uint8)
    images[labels == 1, 10:18, 10:18] = 250  # a bright blob for class 1
    return images, labels


def test_image_npz_loads_and_trains(tmp_path):
    images, labels = _images()
    np.savez(tmp_path / "scans.npz", images=images, labels=labels)
    task = get_task("imaging")
    spec = task.default_spec()
    assert spec.model.arch == "image_cnn"
    data = task.load(spec, LocalData(path=tmp_path / "scans.npz"))
    assert data.train.size == 24 and data.test.size == 6
    assert isinstance(data.train.x, np.ndarray) and data.train.x.shape[1:] == (1, 28, 28)
    assert data.train.x.min() >= 0.0 and data.train.x.max() <= 1.0
    learner = Learner(task, spec, data, "site")
    learner.evaluate(learner.train(learner.initial_weights(), 1))


def test_image_npz_problems(tmp_path):
    task = get_task("imaging")
    spec = task.default_spec()
    images, labels = _images(size=32)
    np.savez(tmp_path / "big.npz", images=images, labels=labels)
    with pytest.raises(DataError, match=r"\[1, 32, 32\].*resize"):
        task.load(spec, LocalData(path=tmp_path / "big.npz"))
    np.savez(tmp_path / "nolabels.npz", images=_images()[0])
    with pytest.raises(DataError, match="no array 'labels'"):
        task.load(spec, LocalData(path=tmp_path / "nolabels.npz"))
    np.savez(tmp_path / "objects.npz", images=np.array([None] * 3, dtype=object), labels=labels)
    with pytest.raises(DataError, match="pickle"):
        task.load(spec, LocalData(path=tmp_path / "objects.npz"))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"not a readable \.npz"):
        task.load(spec, LocalData(path=tmp_path / "junk.npz"))
    images, labels = _images()
    np.savez(tmp_path / "labels.npz", images=images, labels=labels + 1)
    with pytest.raises(DataError, match=r"label 2 is outside 0\.\.1"):
        task.load(spec, LocalData(path=tmp_path / "labels.npz"))


def _png_folder(folder: Path, n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    folder.mkdir()
    images, labels = _images(n)
    for i, image in enumerate(images):
        Image.fromarray(image, mode="L").save(folder / f"img{i:02d}.png")
    with (folder / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label"])
        writer.writerows([f"img{i:02d}.png", int(label)] for i, label in enumerate(labels))
    return images, labels


def test_png_folder_loads_the_same_pixels(tmp_path):
    images, labels = _png_folder(tmp_path / "pngs")
    task = get_task("imaging")
    local = LocalData(path=tmp_path / "pngs", test_fraction=0.25)
    assert local.data_format() == "png-folder"
    data = task.load(task.default_spec(), local)
    assert data.train.size + data.test.size == 20
    from models.tasks.formats.images import read_png_folder

    x, y = read_png_folder(tmp_path / "pngs", "pngs")
    np.testing.assert_array_equal(y, labels)
    np.testing.assert_allclose(x[:, 0], images.astype(np.float32) / 255.0)


def test_png_folder_with_a_missing_label_or_missing_file(tmp_path):
    _png_folder(tmp_path / "pngs")
    Image.fromarray(np.zeros((28, 28), np.uint8), mode="L").save(tmp_path / "pngs" / "extra.png")
    task = get_task("imaging")
    with pytest.raises(DataError, match=r"extra\.png has no row in labels\.csv"):
        task.load(task.default_spec(), LocalData(path=tmp_path / "pngs"))
    (tmp_path / "pngs" / "extra.png").unlink()
    (tmp_path / "pngs" / "img03.png").unlink()
    with pytest.raises(DataError, match=r"line 5: file 'img03\.png' does not exist"):
        task.load(task.default_spec(), LocalData(path=tmp_path / "pngs"))
    (tmp_path / "pngs" / "labels.csv").unlink()
    with pytest.raises(DataError, match=r"no labels\.csv"):
        task.load(task.default_spec(), LocalData(path=tmp_path / "pngs"))


# --- signals ---------------------------------------------------------------------------------

SIGNALS = {
    "modalities": {"acc": {"channels": 3, "length": 32}, "ppg": {"channels": 1, "length": 32}},
    "classes": 3,
}


def _signals(path: Path, modalities: tuple[str, ...], n: int = 36, **override: Any) -> None:
    rng = np.random.default_rng(0)
    arrays: dict[str, Any] = {
        m: rng.normal(size=(n, SIGNALS["modalities"][m]["channels"], 32)).astype(np.float32)
        for m in modalities
    }
    arrays["labels"] = np.arange(n) % 3
    arrays.update(override)
    np.savez(path, **arrays)


def test_signals_npz_with_only_the_modalities_held(tmp_path):
    _signals(tmp_path / "wear.npz", ("acc",))
    task = get_task("signals")
    spec = task.default_spec(task_args=SIGNALS)
    assert spec.model.arch == "fusion" and task.primary_metric_for(spec) == "macro_f1"
    with pytest.raises(DataError, match="no array for modality 'ppg'"):
        task.load(spec, LocalData(path=tmp_path / "wear.npz"))
    data = task.load(spec, LocalData(path=tmp_path / "wear.npz", modalities=("acc",)))
    assert data.modalities == ("acc",) and isinstance(data.train.x, dict)
    assert set(data.train.x) == {"acc"}
    learner = Learner(task, spec, data, "clinic")
    start = learner.initial_weights()
    trained = learner.train(start, 1)
    ppg = [k for k in start if k.startswith("encoders.ppg.")]
    assert ppg and all(torch.equal(trained[k], start[k]) for k in ppg)


def test_signals_npz_problems(tmp_path):
    task = get_task("signals")
    spec = task.default_spec(task_args=SIGNALS)
    both = ("acc", "ppg")
    _signals(tmp_path / "a.npz", both, acc=np.zeros((36, 2, 32), np.float32))
    with pytest.raises(DataError, match=r"modality 'acc' is \[2, 32\].*expects \[3, 32\]"):
        task.load(spec, LocalData(path=tmp_path / "a.npz"))
    _signals(tmp_path / "b.npz", both, ppg=np.zeros((35, 1, 32), np.float32))
    with pytest.raises(DataError, match="35 samples"):
        task.load(spec, LocalData(path=tmp_path / "b.npz"))
    nan = np.zeros((36, 3, 32), np.float32)
    nan[0, 0, 0] = np.nan
    _signals(tmp_path / "c.npz", both, acc=nan)
    with pytest.raises(DataError, match="NaN"):
        task.load(spec, LocalData(path=tmp_path / "c.npz"))
    with pytest.raises(ConfigError, match="eeg"):
        task.load(spec, LocalData(path=tmp_path / "c.npz", modalities=("eeg",)))


# --- LocalData -------------------------------------------------------------------------------


def test_local_data_needs_one_source_and_infers_the_format(tmp_path):
    with pytest.raises(ValidationError, match=r"data\.partition"):
        LocalData()
    with pytest.raises(ValidationError, match="exactly one"):
        LocalData(partition="va", path=tmp_path)
    with pytest.raises(ValidationError):
        LocalData(partition="va", test_fraction=1.5)
    assert LocalData(path=Path("x.CSV")).data_format() == "csv"
    assert LocalData(path=Path("x.npz")).data_format() == "npz"
    assert LocalData(path=tmp_path).data_format() == "png-folder"
    assert LocalData(path=Path("x.bin"), format="npz").data_format() == "npz"
    (tmp_path / "x.bin").write_bytes(b"")
    with pytest.raises(DataError, match=r"set data\.format"):
        LocalData(path=tmp_path / "x.bin").data_format()
    assert LocalData(path=Path("d/e.csv")).resolved(tmp_path).path == tmp_path / "d" / "e.csv"


def test_peer_config_pointing_at_own_csv_gives_a_learner(tmp_path):
    """The path from a peer's [data] section (relative to the config) reaches the loader."""
    import tomli_w

    from peer.config import load_config

    (tmp_path / "records").mkdir()
    write_csv(tmp_path / "records" / "ehr.csv", ehr_rows())
    config = {
        "state_dir": "state",
        "institution": {"name": "hospital-a"},
        "keys": {"eth_keystore": "k/eth.json", "libp2p_keystore": "k/p2p.json"},
        "chain": {"rpc_url": "http://127.0.0.1:8545", "contract": "0x" + "ab" * 20, "task_id": 1},
        "ipfs": {"api": "/ip4/127.0.0.1/tcp/5001"},
        "data": {"path": "records/ehr.csv", "test_fraction": 0.25},
    }
    (tmp_path / "peer.toml").write_text(tomli_w.dumps(config))
    cfg = load_config(tmp_path / "peer.toml")
    task = get_task("ehr-csv")
    learner = Learner.from_local(
        task, task.default_spec(task_args=SCHEMA), cfg.data, cfg.institution.name
    )
    assert learner.num_samples == 30 and learner.data.test.size == 10
