"""``KMSENVELOPE_PORTABLE``: one switch that turns off every shortcut through private APIs.

A hot path may go around a public API only where measurement shows it buys at least 15% on a size users
care about (``docs/performance.md``, "Shortcuts and the portable switch"), and only with a public-API
fallback that produces the same bytes. Today there is one: :func:`.buffers.new_bytes`, which builds large
``encrypt``/``decrypt`` results in place through CPython's C API (``ctypes``).
Setting the environment variable ``KMSENVELOPE_PORTABLE`` to ``1`` (or ``true``/``yes``/``on``) before
``kmsenvelope`` is first imported forces every fallback; it is read once, at import, so a process never
mixes the two paths. The test suite runs the conformance, interop and property tests once with it set.
"""

from __future__ import annotations

import os

__all__ = ["ACTIVE", "ENV_VAR", "shortcuts"]

ENV_VAR = "KMSENVELOPE_PORTABLE"
"""The environment variable read at import."""

ACTIVE: bool = os.environ.get(ENV_VAR, "").strip().lower() in ("1", "true", "yes", "on")
"""True when the switch was on at import: every shortcut below is off."""


def shortcuts() -> dict[str, bool]:
    """Each shortcut through private APIs or CPython internals, and whether it is in use in this process.

    Every value is ``False`` when :data:`ACTIVE` is true.
    """
    from . import buffers

    return {"buffers.new_bytes": buffers.in_place_available()}
