"""The tagged value codec of encrypted SQL columns (no database needed)."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import subprocess
import sys
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from kmsenvelope.errors import MalformedInputError
from kmsenvelope.sql import codec

PARIS = ZoneInfo("Europe/Paris")

SAMPLES: list[tuple[Any, Any, int]] = [
    (str, "héllo \u2603", 0x01),
    (bytes, b"\x00\xffbin", 0x02),
    (int, -(2**70) + 3, 0x03),
    (int, 0, 0x03),
    (float, -0.0, 0x04),
    (float, math.inf, 0x04),
    (decimal.Decimal, decimal.Decimal("-1.2300E+5"), 0x05),
    (bool, False, 0x06),
    (dt.date, dt.date(1999, 12, 31), 0x07),
    (dt.datetime, dt.datetime(2024, 2, 29, 23, 59, 59, 123456), 0x08),
    (dt.datetime, dt.datetime(2024, 1, 1, 8, tzinfo=dt.timezone(dt.timedelta(hours=-3, minutes=-30))), 0x09),
    (dt.datetime, dt.datetime(2024, 10, 27, 2, 30, tzinfo=PARIS, fold=1), 0x0A),
    (uuid.UUID, uuid.UUID("12345678-1234-5678-1234-567812345678"), 0x0B),
    ("json", {"a": [1, 2.5, None, True, "x"]}, 0x0C),
    (dict, {"nested": {"k": "v"}}, 0x0C),
    (list, [1, "two"], 0x0C),
]


@pytest.mark.parametrize(("value_type", "value", "tag"), SAMPLES)
def test_round_trip_keeps_type_and_tag(value_type: Any, value: Any, tag: int) -> None:
    kind = codec.kind_of(value_type)
    encoded = codec.encode(kind, value)
    assert encoded[0] == tag
    decoded = codec.decode(kind, encoded)
    assert type(decoded) is type(value)
    if isinstance(value, float):
        assert math.copysign(1, decoded) == math.copysign(1, value) and decoded == value
    elif isinstance(value, decimal.Decimal):
        assert str(decoded) == str(value)
    else:
        assert decoded == value


def test_datetime_keeps_zone_offset_and_fold() -> None:
    kind = codec.Kind.DATETIME
    # 02:30 on the day Paris leaves summer time happens twice; fold=1 is the second (UTC+1).
    value = dt.datetime(2024, 10, 27, 2, 30, tzinfo=PARIS, fold=1)
    decoded = codec.decode(kind, codec.encode(kind, value))
    assert decoded.tzinfo == PARIS and decoded.utcoffset() == dt.timedelta(hours=1) and decoded.fold == 1
    fixed = dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=45)))
    assert codec.decode(kind, codec.encode(kind, fixed)).utcoffset() == dt.timedelta(hours=5, minutes=45)
    naive = codec.decode(kind, codec.encode(kind, dt.datetime(2020, 1, 1)))
    assert naive.tzinfo is None


@pytest.mark.parametrize(
    ("value_type", "wrong"),
    [
        (str, b"bytes"),
        (int, True),
        (int, 1.0),
        (float, 1),
        (bool, 1),
        (dt.date, dt.datetime(2020, 1, 1)),
        (dt.datetime, dt.date(2020, 1, 1)),
        (uuid.UUID, "12345678-1234-5678-1234-567812345678"),
        (decimal.Decimal, 1.5),
        (dict, [1]),
        (list, {"a": 1}),
        ("json", {"x": float("nan")}),
        ("json", {"x": object()}),
    ],
)
def test_wrong_python_type_is_refused(value_type: Any, wrong: Any) -> None:
    with pytest.raises(codec.ValueTypeError) as info:
        codec.encode(codec.kind_of(value_type), wrong)
    assert isinstance(info.value, MalformedInputError) and isinstance(info.value, TypeError)


BAD_BYTES = [
    (codec.Kind.STR, b""),
    (codec.Kind.BOOL, b"\x06\x02"),
    (codec.Kind.STR, b"\x01\xff"),
    (codec.Kind.UUID, b"\x0b\x00"),
    (codec.Kind.INT, b"\x00x"),
    (codec.Kind.INT, b"\x03"),
    (codec.Kind.JSON, b"\x0cNaN"),
    (codec.Kind.DATETIME, b"\x0a2020-01-01T00:00:00+00:00"),  # zoned tag without a zone
    (codec.Kind.DATETIME, b"\x092020-01-01T00:00:00"),  # aware tag without an offset
    (codec.Kind.DATETIME, b"\x0a2020-01-01T00:00:00+00:00[No/Such_Zone]"),
]


def test_decode_refuses_another_kinds_tag() -> None:
    with pytest.raises(MalformedInputError, match="tag 0x03"):
        codec.decode(codec.Kind.STR, codec.encode(codec.Kind.INT, 5))


@pytest.mark.parametrize(("kind", "data"), BAD_BYTES)
def test_decode_refuses_malformed_payloads(kind: codec.Kind, data: bytes) -> None:
    with pytest.raises(MalformedInputError):
        codec.decode(kind, data)


def test_null_tag() -> None:
    assert codec.encode(codec.Kind.INT, None) == b"\x00"
    assert codec.decode(codec.Kind.INT, b"\x00") is None


def test_unsupported_value_type() -> None:
    with pytest.raises(TypeError):
        codec.kind_of(complex)
    with pytest.raises(TypeError):
        codec.kind_of([])


def test_import_kmsenvelope_does_not_import_sqlalchemy() -> None:
    code = "import sys, kmsenvelope; kmsenvelope.Envelope; print('sqlalchemy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
