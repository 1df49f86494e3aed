"""Task names -> tasks: the built-ins plus plug-ins from the ``fedchain.tasks`` entry points.

A third party ships a task as an ordinary Python package declaring, e.g. in pyproject.toml::

    [project.entry-points."fedchain.tasks"]
    ecg = "hospital_tasks.ecg:EcgTask"      # a Task subclass (or instance) named "ecg"

Task code is only ever installed locally, by the institution's operator; no code ever comes
from another peer or from the chain — a task spec names a task, and a peer that has no such
task installed refuses the spec. A broken plug-in gives a ConfigError naming its entry point
when asked for, and never hides the built-ins.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint

from fedchain.errors import ConfigError
from fedchain.plugins import (
    load_entry_point,
    plugin_entry_points,
    plugin_label,
    require_plugin_name,
)
from models.tasks.abc import Task
from models.tasks.breast import BreastTask
from models.tasks.ehr import EhrCsvTask
from models.tasks.hapt import HaptTask
from models.tasks.heart import HeartTask
from models.tasks.imaging import ImagingTask
from models.tasks.signals import SignalsTask
from models.tasks.synthetic import SyntheticBenchTask

ENTRY_POINT_GROUP = "fedchain.tasks"

BUILTIN_TASKS: dict[str, Callable[[], Task]] = {
    task.name: task
    for task in (
        HeartTask,
        HaptTask,
        BreastTask,
        EhrCsvTask,
        ImagingTask,
        SignalsTask,
        SyntheticBenchTask,
    )
}


def _plugins() -> dict[str, EntryPoint]:
    """Installed plug-in entry points by name (built-in names are never overridden)."""
    return plugin_entry_points(ENTRY_POINT_GROUP, BUILTIN_TASKS)


def _load_plugin(ep: EntryPoint) -> Task:
    label = plugin_label("task", ep)
    obj = load_entry_point("task", ep)
    if isinstance(obj, type) and issubclass(obj, Task):
        try:
            task = obj()
        except Exception as exc:
            raise ConfigError(
                f"{label}: {obj.__name__}() failed: {type(exc).__name__}: {exc}"
            ) from None
    elif isinstance(obj, Task):
        task = obj
    else:
        raise ConfigError(
            f"{label} resolves to {type(obj).__name__}, not a models.tasks.Task subclass or "
            "instance; fix the entry point"
        )
    require_plugin_name("task", ep, task)
    return task


def available_tasks() -> tuple[str, ...]:
    """Names of the built-in and installed tasks, sorted (plug-ins are not imported)."""
    return tuple(sorted({*BUILTIN_TASKS, *_plugins()}))


def get_task(name: str) -> Task:
    """The task called ``name`` (ConfigError naming the installed ones if there is none)."""
    factory = BUILTIN_TASKS.get(name)
    if factory is not None:
        return factory()
    plugin = _plugins().get(name)
    if plugin is None:
        raise ConfigError(
            f"task {name!r} is not installed here; installed: {', '.join(available_tasks())}. "
            f"Install the package providing it (entry-point group {ENTRY_POINT_GROUP!r})"
        )
    return _load_plugin(plugin)
