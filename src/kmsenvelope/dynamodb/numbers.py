"""DynamoDB number normalization (``ddb-attribute-serialization.md#number``).

Numbers are serialized in the form DynamoDB stores them: plain decimal notation, no exponent, no
leading zeros before the point, no trailing zeros after it, no ``+``, and ``0`` for every zero. The
checks match DynamoDB's: at most 38 significant digits, magnitude between 1E-130 and 9.99...E+125.
"""

from __future__ import annotations

import re

from ..errors import MalformedInputError

__all__ = ["normalize_number"]

_NUMBER = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?")
_MAX_DIGITS = 38
_MIN_EXPONENT = -130  # of the most significant digit
_MAX_EXPONENT = 125


def normalize_number(text: str) -> str:
    """The normalized form of a DynamoDB number string; :class:`MalformedInputError` if it is not one."""
    # Fast path: up to 38 ASCII digits without a leading zero are already normalized and in range.
    if (
        type(text) is str
        and 0 < len(text) <= _MAX_DIGITS
        and text.isascii()
        and text.isdigit()
        and text[0] != "0"
    ):
        return text
    match = _NUMBER.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise MalformedInputError("invalid DynamoDB number")
    sign, whole, fraction, exponent = match.groups()
    fraction = fraction or ""
    if not whole and not fraction:
        raise MalformedInputError("invalid DynamoDB number: no digits")
    digits = (whole + fraction).lstrip("0")
    if not digits:
        return "0"
    # Position of the decimal point relative to the start of the significant digits.
    point = len(whole) - (len(whole + fraction) - len(digits))
    digits = digits.rstrip("0")
    if len(digits) > _MAX_DIGITS:
        raise MalformedInputError("DynamoDB numbers have at most 38 significant digits")
    if exponent:
        if len(exponent.lstrip("+-").lstrip("0")) > 6:
            raise MalformedInputError("DynamoDB number out of range")
        point += int(exponent)
    if not _MIN_EXPONENT <= point - 1 <= _MAX_EXPONENT:
        raise MalformedInputError("DynamoDB number out of range")
    if point <= 0:
        out = "0." + "0" * -point + digits
    elif point >= len(digits):
        out = digits + "0" * (point - len(digits))
    else:
        out = digits[:point] + "." + digits[point:]
    return "-" + out if sign == "-" else out
