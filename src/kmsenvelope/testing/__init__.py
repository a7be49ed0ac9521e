"""Test helpers: a local AWS (patched moto server) for tests of code that uses kmsenvelope with AWS.

``local_aws()`` is a context manager; with kmsenvelope installed, pytest also gets the
``kmsenvelope_local_aws`` and ``kmsenvelope_postgres`` fixtures (plugin
:mod:`kmsenvelope.testing.pytest_plugin`). moto and boto3 are imported only when a
server starts. See ``docs/testing.md``.
"""

from __future__ import annotations

from . import moto_patches as moto_patches
from .interceptor import LATENCY, TIMEOUT, RecordedRequest
from .local import ACCOUNT_ID, LocalAws, MrkKey, RsaKey, local_aws
from .postgres import postgres

__all__ = [
    "ACCOUNT_ID",
    "LATENCY",
    "TIMEOUT",
    "LocalAws",
    "MrkKey",
    "RecordedRequest",
    "RsaKey",
    "local_aws",
    "moto_patches",
    "postgres",
]
