"""Test helpers: a local AWS (patched moto server) for tests of code that uses kmsenvelope with AWS.

``local_aws()`` is a context manager; with kmsenvelope installed, pytest also gets a ``local_aws``
fixture (plugin :mod:`kmsenvelope.testing.pytest_plugin`). moto and boto3 are imported only when a
server starts. See ``docs/testing.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "local_aws": ".local_aws",
    "LocalAws": ".local_aws",
    "MrkKey": ".local_aws",
    "RsaKey": ".local_aws",
    "ACCOUNT_ID": ".local_aws",
    "TIMEOUT": ".interceptor",
    "RecordedRequest": ".interceptor",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from .interceptor import TIMEOUT as TIMEOUT
    from .interceptor import RecordedRequest as RecordedRequest
    from .local_aws import ACCOUNT_ID as ACCOUNT_ID
    from .local_aws import LocalAws as LocalAws
    from .local_aws import MrkKey as MrkKey
    from .local_aws import RsaKey as RsaKey
    from .local_aws import local_aws as local_aws


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kmsenvelope.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
