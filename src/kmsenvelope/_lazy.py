"""Lazy exports for the public packages: a name is imported when first used, not when its package is.

This keeps ``import kmsenvelope`` fast (no boto3, SQLAlchemy or rich until something needs them).
A package ``__init__`` declares, each as a literal, the same names in three places::

    __all__ = ["Envelope", "errors"]                    # what ``from pkg import *`` and tools see
    _EXPORTS = {"Envelope": ".envelope"}                # name -> defining module, relative to the package
    if TYPE_CHECKING:
        from . import errors as errors                  # what type checkers and IDEs see
        from .envelope import Envelope as Envelope
    else:
        __getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS, submodules=("errors",))

Exporting one more name is one line in each; ``tests/test_exports.py`` fails when the three disagree.
``__getattr__`` is defined only outside ``TYPE_CHECKING`` so that a type checker still flags an import
of a name that is not exported.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str,
    namespace: MutableMapping[str, Any],
    exports: Mapping[str, str],
    *,
    submodules: Iterable[str] = (),
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package``.

    ``exports`` maps each lazily exported name to the module that defines it (relative to ``package``
    when it starts with a dot); ``submodules`` names submodules exported as themselves. A resolved name
    is stored in ``namespace`` (the package's ``globals()``), so each is looked up once.
    """
    names = dict(exports)
    modules = frozenset(submodules)
    overlap = modules.intersection(names)
    if overlap:
        raise ValueError(f"{package}: exported both as a name and as a submodule: {sorted(overlap)}")

    def __getattr__(name: str) -> Any:
        if name in modules:
            return importlib.import_module(f"{package}.{name}")
        source = names.get(name)
        if source is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(source, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *names, *modules})

    return __getattr__, __dir__
