"""Reading a message's header before decrypting, and errors that say what to do instead.

The header is read (and parsed, nothing verified) before any key is used, so the CLI can say "this looks
like base64", "not an AWS Encryption SDK message", "legacy suite: pass --commitment-policy ..." or
"encrypted for key 'backup'; you gave 'k2'" rather than what the parser or the keyring saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, BinaryIO

from ..errors import KmsEnvelopeError, MalformedInputError
from ..message.header import DecryptLimits, MessageHeader
from ..suites import CommitmentPolicy
from .exits import CliError, ExitCode
from .inspect import _looks_base64, describe_edk, read_header
from .options import POLICY_FLAG

__all__ = ["Replay", "explain_wrong_key", "peek_header"]


class Replay:
    """Reads from ``src``, keeping every byte until :meth:`replay` hands them back once, in order."""

    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        self._kept = bytearray()
        self._recording = True
        self._pending = b""

    @property
    def kept(self) -> bytes:
        """The bytes read while recording."""
        return bytes(self._kept)

    def replay(self) -> None:
        """Stop recording; the next reads return the recorded bytes, then the rest of ``src``."""
        self._recording = False
        self._pending = bytes(self._kept)
        self._kept = bytearray()

    def read(self, n: int = -1) -> bytes:
        if self._pending:
            if n < 0:
                data, self._pending = self._pending + self._src.read(), b""
            else:
                data, self._pending = self._pending[:n], self._pending[n:]
            return data
        data = self._src.read(n)
        if self._recording:
            self._kept += data
        return data

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)


def peek_header(src: Replay, limits: DecryptLimits, *, encoded: bool) -> MessageHeader:
    """Parse the header at the start of ``src``, then rewind it; bad input gets a helpful error."""
    try:
        header = read_header(src, limits)
    except MalformedInputError as exc:
        raise _explain_bad_input(src.kept, encoded, exc) from None
    src.replay()
    return header


def _explain_bad_input(head: bytes, encoded: bool, exc: MalformedInputError) -> Exception:
    if not head:
        return CliError("the input is empty: not an AWS Encryption SDK message", ExitCode.INVALID_INPUT)
    if encoded:
        return exc
    if head[:1] not in (b"\x01", b"\x02"):
        if _looks_base64(head):
            return CliError("this looks like base64: add --base64", ExitCode.INVALID_INPUT)
        return CliError(
            "not an AWS Encryption SDK message (it starts with neither format version 1 nor 2)",
            ExitCode.INVALID_INPUT,
        )
    return exc


def check_policy(header: MessageHeader, policy: CommitmentPolicy) -> None:
    """Refuse a legacy-suite message under a policy that requires commitment, naming the CLI flag."""
    if policy.decrypt_requires_commitment and not header.suite.committing:
        raise CliError(
            f"the message uses the legacy suite 0x{header.suite.id:04X} ({header.suite.name}) without key "
            f"commitment; to read it anyway, pass {POLICY_FLAG} require-encrypt-allow-decrypt "
            "(or --allow-uncommitted)",
            ExitCode.POLICY,
        )


def check_unsigned(header: MessageHeader) -> None:
    """``--decrypt-unsigned``: refuse a signed message before any key is used."""
    if header.suite.signing:
        raise CliError(
            f"--decrypt-unsigned: the message is signed (suite 0x{header.suite.id:04X}); "
            "decrypt it without --decrypt-unsigned",
            ExitCode.POLICY,
        )


def _edk_words(edk: dict[str, Any]) -> str:
    if edk.get("key_arn"):
        return f"KMS key {edk['key_arn']}"
    if edk.get("branch_key_id"):
        return f"branch key {edk['branch_key_id']!r}"
    name = edk.get("key_name")
    if name is not None:
        return f"key {name!r} (namespace {edk.get('key_namespace')!r})"
    return f"a key of provider {edk.get('provider_id')!r}"


def explain_wrong_key(
    header: MessageHeader, given: Sequence[tuple[str, str | None]], original: KmsEnvelopeError
) -> CliError:
    """``encrypted for key 'backup' (namespace 'kmsenvelope'); you gave 'k2'``, plus the KMS error if any.

    ``given`` holds ``(name, namespace)`` of each key file and ``(key id, None)`` of each KMS key.
    """
    edks = [
        describe_edk(e.provider_id, e.provider_info, len(e.ciphertext)) for e in header.encrypted_data_keys
    ]
    wanted = " or ".join(dict.fromkeys(_edk_words(edk) for edk in edks)) or "no key at all"
    namespaces = {edk.get("key_namespace") for edk in edks}
    words = []
    for name, namespace in given:
        if namespace is None:
            words.append(name)
        else:
            words.append(f"{name!r}" + ("" if namespace in namespaces else f" (namespace {namespace!r})"))
    message = f"encrypted for {wanted}; you gave {', '.join(words) or 'no key'}"
    if any(edk.get("key_arn") for edk in edks) or any(ns is None for _, ns in given):
        message += f" ({original})"  # KMS says why (access denied, disabled key, ...)
    return CliError(message, ExitCode.NO_USABLE_KEY)
