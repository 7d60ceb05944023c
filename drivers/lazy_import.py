"""Third-party modules loaded on first use, so a command that never talks to libvirt
(``check``, ``--help``) does not pay for loading its C binding (about 0.1 s).

``libvirt = lazy_module("libvirt")`` gives the module object at once; Python runs the
module's code the first time one of its attributes is read (:class:`importlib.util.LazyLoader`).
Modules that use it import the real module under ``TYPE_CHECKING`` for mypy.

Python before 3.12 does not make that first read thread-safe: a second thread reading an
attribute while the first is still running the module's code sees a half-made module
(``module 'libvirt' has no attribute 'registerErrorHandler'`` when several hosts were
connected at once). :func:`loaded` runs the module's code under one lock; code that may
first touch a lazy module from several threads calls it before anything else.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from types import ModuleType

_LOADING = threading.Lock()


def lazy_module(name: str) -> ModuleType:
    """``name`` as a module whose code runs on first attribute access (at once if loaded)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


def loaded(module: ModuleType) -> ModuleType:
    """``module`` with its code run, once, whichever thread asks first; the others wait."""
    with _LOADING:
        _ = module.__name__  # the first attribute read runs the module's code
    return module
