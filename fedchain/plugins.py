"""Finding and loading third-party plug-ins declared as Python entry points.

Tasks (``fedchain.tasks``) and attacks (``fedchain.attacks``) are found the same way: a package
installed locally by the operator declares, e.g. in its pyproject.toml::

    [project.entry-points."fedchain.attacks"]
    my-attack = "lab_attacks.mine:MyAttack"

A plug-in never replaces a built-in of the same name, and one that cannot be imported gives one
ConfigError line naming its entry point (only when it is asked for: the built-ins and the other
plug-ins keep working).
"""

from __future__ import annotations

from collections.abc import Collection
from importlib.metadata import EntryPoint, entry_points

from fedchain.errors import ConfigError


def plugin_entry_points(group: str, builtins: Collection[str]) -> dict[str, EntryPoint]:
    """Installed entry points of ``group`` by name, except those named like a built-in."""
    return {ep.name: ep for ep in entry_points(group=group) if ep.name not in builtins}


def plugin_label(kind: str, ep: EntryPoint) -> str:
    """``<kind> plug-in 'name' (entry point 'module:attr' in group 'group')``, for messages."""
    return f"{kind} plug-in {ep.name!r} (entry point {ep.value!r} in group {ep.group!r})"


def load_entry_point(kind: str, ep: EntryPoint) -> object:
    """The object ``ep`` names; one ConfigError line if importing it fails in any way."""
    try:
        return ep.load()
    except Exception as exc:  # any import-time failure of third-party code
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ConfigError(
            f"{plugin_label(kind, ep)} cannot be loaded: {type(exc).__name__}: {first}; "
            "reinstall or remove the package that declares it"
        ) from None


def require_plugin_name(kind: str, ep: EntryPoint, obj: object) -> None:
    """ConfigError unless ``obj.name`` is the entry point's name (what users type and see)."""
    name = getattr(obj, "name", None)
    if name != ep.name:
        raise ConfigError(
            f"{plugin_label(kind, ep)}: its {kind} is named {name!r}; the entry point's name and "
            f"the {kind}'s name must be equal"
        )
