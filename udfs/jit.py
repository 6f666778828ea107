"""`njit` that imports numba only when a kernel first runs.

The registry (names, signatures, docs) must load without numba: the SQL front end checks names
on every statement with OVER, and `cryptodb kernels` and the REPL list them. Functions decorated
here stay plain Python until the first call of any of them; then every one becomes a numba
dispatcher at once, replacing itself in its module, so jitted code calling jitted code (and
`cache=True`) works exactly as with `numba.njit`.
"""

from __future__ import annotations

import functools

_ALL: list[LazyJit] = []


class LazyJit:
    def __init__(self, fn, options: dict):
        self.py_func = fn
        self.options = options
        self.dispatcher = None
        functools.update_wrapper(self, fn)
        _ALL.append(self)

    def __call__(self, *args):
        if self.dispatcher is None:
            materialize()
        return self.dispatcher(*args)


def materialize() -> None:
    import numba

    for lazy in _ALL:
        if lazy.dispatcher is None:
            lazy.dispatcher = numba.njit(**lazy.options)(lazy.py_func)
    # Swap every module-level reference, names imported from another kernel module included.
    namespaces = {id(lazy.py_func.__globals__): lazy.py_func.__globals__ for lazy in _ALL}
    for namespace in namespaces.values():
        for name, value in list(namespace.items()):
            if isinstance(value, LazyJit):
                namespace[name] = value.dispatcher


def njit(fn=None, **options):
    """Use as @njit(cache=True) (or bare @njit): numba.njit, deferred. Kernels release the GIL
    (nogil=True unless told otherwise), so the engine can run several at once on threads.
    (error_model="numpy" was measured: EMA ran 5x slower with it, nothing ran faster.)"""
    options.setdefault("nogil", True)
    if fn is None:
        return lambda f: LazyJit(f, options)
    return LazyJit(fn, options)
