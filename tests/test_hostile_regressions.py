"""Regression tests for bugs found while hardening (issue 8), now fixed.

Each test states the hostile input, the expected behaviour and where the bug was.
"""

from __future__ import annotations

import io
import sys

import tomllib
from packaging.requirements import Requirement

from kmsenvelope import Envelope, RawAesKeyring
from kmsenvelope.cli.inspect import inspect_source
from kmsenvelope.errors import KmsEnvelopeError, MalformedInputError, PolicyError
from kmsenvelope.message.header import DecryptLimits, parse_header
from tests.conftest import REPO_ROOT

KEY = RawAesKeyring("open-bugs", "aes", bytes(32))


def test_inspect_deeply_nested_json_is_malformed_input() -> None:
    """src/kmsenvelope/cli/inspect.py, _dbesdk_item(): ``json.loads`` raises RecursionError (not a
    ValueError) for JSON nested ~1000 deep; it escapes ``inspect_source`` and the CLI reports an
    internal error (exit 1) instead of invalid input (exit 6).

    Input: ``b'{"a":' + b'[' * 100_000``. Expected: MalformedInputError. Actual: RecursionError.
    Fix: catch RecursionError next to ValueError in _dbesdk_item (or bound the nesting first).
    """
    data = b'{"a":' + b"[" * 100_000
    try:
        inspect_source(io.BytesIO(data))
    except MalformedInputError:
        return
    except Exception as exc:  # the bug
        raise AssertionError(f"{type(exc).__name__} escaped inspect_source") from exc
    raise AssertionError("no error for invalid JSON")


def _header_with_a_60000_byte_provider_id() -> bytes:
    """A real v2 message whose only EDK has a 60,000-byte provider id (the header tag is stale)."""
    message = Envelope(KEY).encrypt(b"x")
    header = parse_header(message, DecryptLimits())
    start = 1 + 2 + 32 + 2
    end = (
        start
        + 2
        + sum(
            6 + len(e.provider_id) + len(e.provider_info) + len(e.ciphertext)
            for e in header.encrypted_data_keys
        )
    )
    edk = (60_000).to_bytes(2, "big") + b"p" * 60_000 + b"\x00\x00" + b"\x00\x00"
    return message[:start] + b"\x00\x01" + edk + message[end:]


def test_header_over_the_size_limit_is_a_policy_error_for_every_input_type() -> None:
    """src/kmsenvelope/message/header.py, parse_header(): for non-``bytes`` input it parses growing
    prefixes (4 KiB, 32 KiB, ...) and gives up with TruncatedInputError once the prefix exceeds
    ``max_header_size``; ``_parse_edks`` checks the size limit only after each complete EDK. So a header
    that crosses the limit inside one EDK field larger than the last prefix raises TruncatedInputError
    (a MalformedInputError) for bytearray and memoryview -- accepted input types of
    ``decrypt_with_header``, ``decrypt_into`` and ``Envelope.parse_header`` -- but PolicyError for bytes
    and from ``decrypt_stream``. The CLI maps the two to different exit codes (6 vs 8).
    (Before 63c33a2 every header crossing the limit inside its EDKs did this; 63c33a2 narrowed it.)

    Input: one EDK with a 60,000-byte provider id, DecryptLimits(max_header_size=4096).
    Expected: PolicyError everywhere. Actual: TruncatedInputError for bytearray/memoryview input.
    Fix: in ``_parse_edks``, check ``_check_header_size(pos, limits)`` right after each field length is
    read, before the ``pos > end`` truncation check.
    """
    message = _header_with_a_60000_byte_provider_id()
    limits = DecryptLimits(max_header_size=4096)
    envelope = Envelope(KEY, limits=limits)
    outcomes = {}
    for label, call in {
        "parse_header(bytes)": lambda: parse_header(message, limits),
        "parse_header(bytearray)": lambda: parse_header(bytearray(message), limits),
        "parse_header(memoryview)": lambda: parse_header(memoryview(message), limits),
        "decrypt_with_header(bytes)": lambda: envelope.decrypt_with_header(message),
        "decrypt_with_header(bytearray)": lambda: envelope.decrypt_with_header(bytearray(message)),
        "decrypt_into(memoryview)": lambda: envelope.decrypt_into(memoryview(message), bytearray()),
        "decrypt_stream": lambda: envelope.decrypt_stream(io.BytesIO(message), io.BytesIO()),
    }.items():
        try:
            call()
        except KmsEnvelopeError as exc:
            outcomes[label] = type(exc).__name__
    assert outcomes == dict.fromkeys(outcomes, PolicyError.__name__), outcomes


def _floor(name: str, extra: str | None = None) -> str:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    (requirement,) = [Requirement(s) for s in specs if Requirement(s).name == name]
    (floor,) = [s.version for s in requirement.specifier if s.operator == ">="]
    return floor


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_cryptography_floor_provides_aesgcm_encrypt_into() -> None:
    """pyproject.toml ``dependencies``: ``cryptography>=43.0.1``, but primitives/aead.py calls
    ``AESGCM.encrypt_into`` / ``decrypt_into``, which first appear in cryptography 47.0.0. With 43.0.1
    to 46.x installed, streaming, encrypt_into, decrypt_into and one-shot encrypts that take the in-place
    path fail with AttributeError (checked in a venv: 43.0.1, 44.0.0, 44.0.3, 45.0.0, 46.0.0 lack them;
    47.0.0 passes 422 tests of the suite with boto3/botocore 1.34.0). Fix: ``cryptography>=47.0.0``.
    """
    assert _version(_floor("cryptography")) >= (47, 0, 0), _floor("cryptography")


def test_moto_floor_supports_the_testing_patches() -> None:
    """pyproject.toml ``[testing]``: ``moto[server]>=5.0.9,<6``, but testing/moto_patches.py imports
    ``moto.kms.exceptions.InvalidKeyUsageException`` (absent before 5.0.27), and with 5.0.27 ... 5.1.22
    the patched server answers HTTP 500 to some Decrypt calls (10 of 36 tests of test_kms_accounting,
    test_testing_moto_patches and test_kms_keyring fail). 5.2.0 passes them and 119 KMS/testing tests.
    Fix: ``moto[server]>=5.2.0,<6``.
    """
    assert _version(_floor("moto", "testing")) >= (5, 2, 0), _floor("moto", "testing")


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run with pytest")


def test_streaming_enforces_max_message_size() -> None:
    """message/stream.py ignored DecryptLimits.max_message_size, which one-shot decrypt enforces."""
    writer = Envelope(KEY, frame_length=64)
    message = writer.encrypt(bytes(1000))
    reader = Envelope(KEY, limits=DecryptLimits(max_message_size=len(message) - 1))
    sink = io.BytesIO()
    try:
        reader.decrypt_stream(io.BytesIO(message), sink)
    except PolicyError:
        pass
    else:
        raise AssertionError("an oversized stream was accepted")
    roomy = Envelope(KEY, limits=DecryptLimits(max_message_size=len(message)))
    out = io.BytesIO()
    roomy.decrypt_stream(io.BytesIO(message), out)
    assert out.getvalue() == bytes(1000)
