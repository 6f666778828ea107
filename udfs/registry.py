"""The registry of kernels: the SQL engine, live mode, `cryptodb kernels` and the REPL all read it.

Kernel modules register their units on import. Adding a kernel is adding a unit to one of the
modules listed in KERNEL_MODULES (or a module of your own, registered through `register`).
"""

from __future__ import annotations

import importlib

from .kernel import KernelSpec

KERNEL_MODULES = (
    "moments",
    "covariance",
    "smoothing",
    "sequence",
    "momentum",
    "extremes",
    "volatility",
    "microstructure",
    "risk",
    "position",
    "bars",
    "streak",
)

_KERNELS: dict[str, KernelSpec] = {}
_ALIASES: dict[str, tuple[str, str]] = {}  # alias -> (kernel, field)
_loaded = False


def register(spec: KernelSpec) -> KernelSpec:
    """Add a kernel (built-in or a user's own); its name and field aliases become callable in SQL."""
    name = spec.name.lower()
    _KERNELS[name] = spec
    for alias, field in spec.field_aliases.items():
        if field not in {o.name for o in spec.outputs}:
            raise ValueError(f"{spec.name}: alias {alias!r} names unknown field {field!r}")
        _ALIASES[alias.lower()] = (name, field)
    return spec


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in KERNEL_MODULES:
        try:
            importlib.import_module(f"{__package__}.{module}")
        except ModuleNotFoundError as e:
            if e.name != f"{__package__}.{module}":
                raise


def kernels() -> dict[str, KernelSpec]:
    _load()
    return dict(sorted(_KERNELS.items()))


def names() -> set[str]:
    """Every name callable with OVER: kernels and their per-field aliases."""
    _load()
    return set(_KERNELS) | set(_ALIASES)


def resolve(name: str) -> tuple[KernelSpec, str | None] | None:
    """A name used in SQL -> (kernel, field or None); None when it is not a kernel."""
    _load()
    key = name.lower()
    if key in _KERNELS:
        return _KERNELS[key], None
    if key in _ALIASES:
        kernel, field = _ALIASES[key]
        return _KERNELS[kernel], field
    return None


def aliases() -> dict[str, tuple[str, str]]:
    _load()
    return dict(_ALIASES)
