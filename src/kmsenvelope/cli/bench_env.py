"""Where benchmark numbers came from: the machine and the library versions."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

__all__ = ["library_versions", "machine_info"]


def machine_info() -> dict[str, Any]:
    """CPU count, platform and Python of this machine."""
    affinity = getattr(os, "sched_getaffinity", None)
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(affinity(0)) if affinity is not None else os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
    }
    try:
        from cryptography.hazmat.backends.openssl.backend import backend

        info["openssl"] = backend.openssl_version_text()
    except Exception:  # pragma: no cover - depends on the cryptography build
        info["openssl"] = None
    return info


_LIBRARIES = (
    "kmsenvelope",
    "cryptography",
    "aws-encryption-sdk",
    "boto3",
    "botocore",
    "moto",
    "click",
    "rich",
)


def library_versions() -> dict[str, str | None]:
    """Installed versions of kmsenvelope and what the benchmark compares it with (None: not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str | None] = {}
    for name in _LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions
