"""Output buffers for large one-shot results.

Returning ``bytes`` normally means building the result elsewhere and copying it: the peak heap is
then twice the message, which makes glibc trim and re-fault the heap on every call (measured here:
~460 page faults and 7x the time for a 1 MiB message). On CPython we instead allocate the final
``bytes`` object uninitialised (``PyBytes_FromStringAndSize(NULL, n)``, the documented way to build
a bytes object in place) and let AES-GCM write straight into it. The object is not visible to any
other code until it is fully written, and the writable view is released before it is returned.

The layout is checked once at first use; anywhere it does not hold (another interpreter, a changed
layout), or when ``KMSENVELOPE_PORTABLE`` is set (:mod:`.portable`), :func:`new_bytes` returns ``None``
and callers fall back to joining parts with public APIs.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from . import portable

__all__ = ["in_place_available", "new_bytes"]

_state: dict[str, Any] = {}
_lock = threading.Lock()


def _setup() -> bool:
    if portable.ACTIVE or sys.implementation.name != "cpython":
        return False
    try:
        import ctypes

        alloc = ctypes.pythonapi.PyBytes_FromStringAndSize
        alloc.restype = ctypes.py_object
        alloc.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t)
        offset = bytes.__basicsize__ - 1  # ob_sval: the byte array at the end of PyBytesObject
        probe = alloc(None, 16)
        view = memoryview((ctypes.c_char * 16).from_address(id(probe) + offset)).cast("B")
        view[:] = b"kmsenvelope-tst!"
        view.release()
        if probe != b"kmsenvelope-tst!":
            return False
    except Exception:  # any surprise means: do not use this path
        return False
    _state.update(alloc=alloc, offset=offset, array=ctypes.c_char)
    return True


def in_place_available() -> bool:
    """Whether :func:`new_bytes` builds results in place here (false under ``KMSENVELOPE_PORTABLE``)."""
    if "ok" not in _state:
        with _lock:
            if "ok" not in _state:
                _state["ok"] = _setup()
    return bool(_state["ok"])


def new_bytes(size: int) -> tuple[bytes, memoryview] | None:
    """A fresh ``bytes`` of ``size`` bytes and a writable view of its contents, or ``None``.

    ``None`` when the in-place path is unavailable (see :func:`in_place_available`) or ``size < 1``.
    The caller must fill the view completely and ``release()`` it before handing out the bytes.
    """
    if not in_place_available() or size <= 0:
        return None
    result = _state["alloc"](None, size)
    array = (_state["array"] * size).from_address(id(result) + _state["offset"])
    return result, memoryview(array).cast("B")
