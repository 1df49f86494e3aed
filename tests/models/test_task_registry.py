"""Task registry: built-ins, and plug-ins found through real ``fedchain.tasks`` entry points.

Each test writes a tiny installed distribution (a ``*.dist-info`` folder with an
``entry_points.txt``, plus its module) into a temporary folder put on ``sys.path``: the same
thing ``pip install`` leaves behind, read by ``importlib.metadata`` exactly as in production.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fedchain.errors import ConfigError
from models.tasks import ENTRY_POINT_GROUP, Task, available_tasks, get_task
from models.tasks.breast import BreastTask
from models.tasks.hapt import HaptTask
from models.tasks.heart import HeartTask
from tests import factories

PLUGIN_MODULE = """
from consensus.task_spec import ModelSpec, TrainingSettings
from fedchain.errors import DataError
from models.tasks.abc import InstitutionData, Task


class ToyTask(Task):
    name = "toy"
    primary_metric = "auroc"

    def default_model(self, task_args):
        return ModelSpec(arch="logreg", kwargs={"in_features": 2})

    def default_training(self):
        return TrainingSettings(epochs=1, lr=0.1, batch_size=4)

    def builtin_institutions(self, spec):
        return []

    def load(self, spec, local):
        raise DataError("toy task has no data")


class Misnamed(ToyTask):
    name = "something-else"


TOY_INSTANCE = ToyTask()
NOT_A_TASK = 42
"""


def install_plugin(root: Path, dist: str, entries: dict[str, str], module: str | None) -> None:
    factories.install_plugin(root, dist, ENTRY_POINT_GROUP, entries, module)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    with factories.plugin_site(tmp_path, monkeypatch) as root:
        yield root


def test_builtins():
    assert {"heart", "hapt", "breast", "ehr-csv", "imaging", "signals"} <= set(available_tasks())
    assert isinstance(get_task("heart"), HeartTask)
    assert isinstance(get_task("hapt"), HaptTask)
    assert isinstance(get_task("breast"), BreastTask)
    assert get_task("heart").primary_metric == "auroc"
    assert get_task("hapt").primary_metric == "macro_f1"
    with pytest.raises(ConfigError, match="'mnist' is not installed here; installed: breast"):
        get_task("mnist")


def test_plugin_class_and_instance_through_entry_points(site):
    install_plugin(
        site,
        "fedchain_test_toy",
        {"toy": "fedchain_test_toy:ToyTask", "toy2": "fedchain_test_toy:TOY_INSTANCE"},
        PLUGIN_MODULE,
    )
    assert "toy" in available_tasks() and "heart" in available_tasks()
    task = get_task("toy")
    assert isinstance(task, Task) and type(task).__name__ == "ToyTask"
    spec = task.default_spec()
    assert spec.task == "toy" and spec.model.arch == "logreg"
    with pytest.raises(ConfigError, match="named 'toy'"):
        get_task("toy2")  # an instance whose name is not the entry point's


def test_broken_plugins_name_their_entry_point_and_spare_the_builtins(site):
    install_plugin(
        site,
        "fedchain_test_broken",
        {
            "missing": "fedchain_test_nowhere:Task",
            "number": "fedchain_test_broken:NOT_A_TASK",
            "renamed": "fedchain_test_broken:Misnamed",
            "heart": "fedchain_test_broken:ToyTask",  # cannot shadow a built-in
        },
        PLUGIN_MODULE,
    )
    with pytest.raises(ConfigError, match=r"'missing' \(entry point 'fedchain_test_nowhere:Task'"):
        get_task("missing")
    with pytest.raises(ConfigError, match=r"resolves to int, not a models\.tasks\.Task"):
        get_task("number")
    with pytest.raises(ConfigError, match="named 'something-else'"):
        get_task("renamed")
    assert isinstance(get_task("heart"), HeartTask)
    assert {"missing", "number", "renamed", "heart", "hapt"} <= set(available_tasks())


def test_plugin_that_fails_at_import(site):
    install_plugin(
        site,
        "fedchain_test_crash",
        {"crash": "fedchain_test_crash:ToyTask"},
        "raise RuntimeError('boom at import')\n",
    )
    with pytest.raises(ConfigError, match="cannot be loaded: RuntimeError: boom at import") as e:
        get_task("crash")
    assert "\n" not in str(e.value)
    assert isinstance(get_task("breast"), BreastTask)
