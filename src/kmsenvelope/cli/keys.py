"""Key files written by ``kmsenvelope keygen`` and the keyrings ``--key`` builds from them or from KMS.

A key file is one JSON object (format ``kmsenvelope-key/1``)::

    {"format": "kmsenvelope-key/1", "type": "raw-aes", "namespace": "kmsenvelope", "name": "backup",
     "bits": 256, "material": "<base64 key>", "created": "2026-01-01T00:00:00Z"}

``type`` is ``raw-aes`` (``material`` = base64 key), ``raw-rsa-private`` or ``raw-rsa-public``
(``material`` = PEM, plus ``padding``, e.g. ``OAEP-SHA256``). ``namespace`` and ``name`` are the raw
keyring's key namespace and name: they are written into every message, and a message decrypts only with
a key file carrying the same pair. Files are created with mode 0600 and never overwritten without ``force``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from ..materials.protocols import Keyring
from .exits import CliError, ExitCode

__all__ = [
    "FORMAT",
    "KeyFile",
    "KmsOptions",
    "build_keyring",
    "describe_keys",
    "generate_aes",
    "generate_rsa",
    "load_key_file",
    "looks_like_kms_key",
    "write_key_file",
]

FORMAT = "kmsenvelope-key/1"
DEFAULT_NAMESPACE = "kmsenvelope"
_TYPES = ("raw-aes", "raw-rsa-private", "raw-rsa-public")
_KEY_ID = re.compile(r"^(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")
_MAX_KEY_FILE = 1 << 20


@dataclass(frozen=True)
class KeyFile:
    """The parsed content of one key file. ``material`` is secret for private types: never print it."""

    type: str
    namespace: str
    name: str
    material: str
    bits: int
    padding: str | None = None
    created: str | None = None

    @property
    def can_decrypt(self) -> bool:
        """False for a public-key-only file."""
        return self.type != "raw-rsa-public"

    def to_json(self) -> str:
        """The file's JSON text."""
        doc: dict[str, Any] = {
            "format": FORMAT,
            "type": self.type,
            "namespace": self.namespace,
            "name": self.name,
        }
        doc["bits"] = self.bits
        if self.padding is not None:
            doc["padding"] = self.padding
        doc["created"] = self.created
        doc["material"] = self.material
        return json.dumps(doc, indent=2) + "\n"

    def keyring(self) -> Keyring:
        """The raw keyring this key file describes."""
        from ..keyrings.raw_aes import RawAesKeyring
        from ..keyrings.raw_rsa import RawRsaKeyring

        if self.type == "raw-aes":
            try:
                key = base64.b64decode(self.material, validate=True)
            except (binascii.Error, ValueError):
                raise ConfigurationError("key file material is not valid base64") from None
            return RawAesKeyring(self.namespace, self.name, key)
        pem = self.material.encode("ascii", "replace")
        padding = self.padding or "OAEP-SHA256"
        if self.type == "raw-rsa-private":
            return RawRsaKeyring(self.namespace, self.name, private_key=pem, padding=padding)
        return RawRsaKeyring(self.namespace, self.name, public_key=pem, padding=padding)

    def __repr__(self) -> str:
        return (
            f"KeyFile(type={self.type!r}, namespace={self.namespace!r}, name={self.name!r}, bits={self.bits})"
        )


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def generate_aes(namespace: str, name: str, bits: int = 256) -> KeyFile:
    """A new random AES wrapping key."""
    if bits not in (128, 192, 256):
        raise ConfigurationError("AES key size must be 128, 192 or 256 bits")
    material = base64.b64encode(secrets.token_bytes(bits // 8)).decode("ascii")
    return KeyFile("raw-aes", namespace, name, material, bits, created=_now())


def generate_rsa(
    namespace: str, name: str, bits: int = 3072, padding: str = "OAEP-SHA256"
) -> tuple[KeyFile, KeyFile]:
    """A new RSA key pair as (private key file, public key file)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from ..keyrings.raw_rsa import PADDINGS

    if bits not in (2048, 3072, 4096):
        raise ConfigurationError("RSA key size must be 2048, 3072 or 4096 bits")
    if padding not in PADDINGS:
        raise ConfigurationError(f"unknown RSA padding {padding!r}; choose one of {', '.join(PADDINGS)}")
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
    created = _now()
    return (
        KeyFile("raw-rsa-private", namespace, name, private_pem, bits, padding, created),
        KeyFile("raw-rsa-public", namespace, name, public_pem, bits, padding, created),
    )


def write_key_file(path: str | os.PathLike[str], key: KeyFile, *, force: bool = False) -> None:
    """Write ``key`` with mode 0600; an existing file is replaced only with ``force`` (atomically)."""
    target = Path(path)
    data = key.to_json().encode("utf-8")
    if not force:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            _write_all(fd, data)
        except BaseException:
            os.close(fd)
            target.unlink(missing_ok=True)
            raise
        os.close(fd)
        return
    fd, tmp = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".", prefix=f".{target.name}.")
    try:
        os.fchmod(fd, 0o600)
        _write_all(fd, data)
        os.close(fd)
        fd = -1
        os.replace(tmp, target)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def load_key_file(path: str | os.PathLike[str]) -> KeyFile:
    """Read and validate a key file (:class:`CliError` with ``KEY_CONFIG`` if it is not one)."""
    with open(path, "rb") as handle:
        raw = handle.read(_MAX_KEY_FILE + 1)
    where = os.fspath(path)
    if len(raw) > _MAX_KEY_FILE:
        raise CliError(f"{where} is not a kmsenvelope key file (too large)", ExitCode.KEY_CONFIG)
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise CliError(f"{where} is not a kmsenvelope key file (not JSON)", ExitCode.KEY_CONFIG) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CliError(f"{where} is not a kmsenvelope key file (format is not {FORMAT})", ExitCode.KEY_CONFIG)
    return _parse_doc(doc, where)


def _parse_doc(doc: Mapping[str, Any], where: str) -> KeyFile:
    def field(name: str, kind: type, required: bool = True) -> Any:
        value = doc.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, kind) or isinstance(value, bool):
            raise CliError(f"key file {where}: field {name!r} is missing or invalid", ExitCode.KEY_CONFIG)
        return value

    key_type = field("type", str)
    if key_type not in _TYPES:
        raise CliError(f"key file {where}: unknown key type {key_type!r}", ExitCode.KEY_CONFIG)
    return KeyFile(
        type=key_type,
        namespace=field("namespace", str),
        name=field("name", str),
        material=field("material", str),
        bits=field("bits", int),
        padding=field("padding", str, required=False),
        created=field("created", str, required=False),
    )


def looks_like_kms_key(value: str) -> bool:
    """True for a KMS key ARN, alias ARN, ``alias/...`` name, key id or ``mrk-`` id."""
    if value.startswith("arn:"):
        return ":kms:" in value
    return value.startswith("alias/") or bool(_KEY_ID.match(value))


@dataclass(frozen=True)
class KmsOptions:
    """How to reach AWS KMS: the ``--region``, ``--profile`` and ``--endpoint-url`` options."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None

    def client_supplier(self) -> Any:
        """A :class:`kmsenvelope.aws.ClientSupplier` for these options (imports boto3)."""
        import boto3.session

        from ..aws.clients import ClientSupplier

        session = boto3.session.Session(profile_name=self.profile, region_name=self.region)
        return ClientSupplier(session=session, endpoint_url=self.endpoint_url)

    def default_region(self, supplier: Any) -> str | None:
        """``--region``, else the profile's or environment's region."""
        if self.region:
            return self.region
        region = getattr(supplier, "default_region", None)
        return region if isinstance(region, str) and region else None


def _kms_keyring(key_id: str, supplier: Any) -> Keyring:
    from ..keyrings.kms import KmsKeyring

    return KmsKeyring(key_id, client_supplier=supplier)


def build_keyring(
    keys: Sequence[str],
    kms: KmsOptions,
    *,
    decrypting: bool,
    discovery: bool = False,
    discovery_accounts: Sequence[str] = (),
    discovery_partition: str = "aws",
) -> Keyring:
    """The keyring for ``--key`` values (key files or KMS identifiers), plus KMS discovery if asked.

    Several keys make a multi-keyring: on encrypt the first generates the data key and each key wraps
    it; on decrypt any one of them may unwrap it.
    """
    keyrings: list[Keyring] = []
    supplier: Any = None

    def get_supplier() -> Any:
        nonlocal supplier
        if supplier is None:
            supplier = kms.client_supplier()
        return supplier

    for value in keys:
        if os.path.exists(value):
            key_file = load_key_file(value)
            if decrypting and not key_file.can_decrypt:
                raise CliError(
                    f"{value} holds only a public key; decrypting needs the private key file",
                    ExitCode.KEY_CONFIG,
                )
            keyrings.append(key_file.keyring())
        elif looks_like_kms_key(value):
            if decrypting and not value.startswith("arn:"):
                raise CliError(
                    f"decrypting with AWS KMS needs a key ARN, not {value!r} (or use --discovery)",
                    ExitCode.KEY_CONFIG,
                )
            if not value.startswith("arn:") and kms.default_region(get_supplier()) is None:
                raise CliError(
                    f"KMS key {value!r} has no region: pass --region or use a key ARN", ExitCode.USAGE
                )
            keyrings.append(_kms_keyring(value, get_supplier()))
        else:
            raise CliError(f"key file not found: {value}", ExitCode.FILE)
    if discovery:
        keyrings.append(_discovery_keyring(kms, get_supplier(), discovery_accounts, discovery_partition))
    elif discovery_accounts:
        raise CliError("--discovery-account needs --discovery", ExitCode.USAGE)
    if not keyrings:
        raise CliError("no key given: use --key (or --discovery to decrypt)", ExitCode.USAGE)
    if len(keyrings) == 1:
        return keyrings[0]
    from ..keyrings.multi import MultiKeyring

    if decrypting:
        return MultiKeyring(children=keyrings)
    return MultiKeyring(generator=keyrings[0], children=keyrings[1:])


def _discovery_keyring(kms: KmsOptions, supplier: Any, accounts: Sequence[str], partition: str) -> Keyring:
    from ..aws.arn import DiscoveryFilter
    from ..keyrings.kms_discovery import KmsDiscoveryKeyring

    region = kms.default_region(supplier)
    if region is None:
        raise CliError(
            "--discovery needs a region: pass --region or configure one for the profile", ExitCode.USAGE
        )
    discovery_filter = DiscoveryFilter(partition, tuple(accounts)) if accounts else None
    return KmsDiscoveryKeyring(region, discovery_filter=discovery_filter, client_supplier=supplier)


def describe_keys(keys: Sequence[str]) -> list[tuple[str, str | None]]:
    """``(name, namespace)`` of each key file and ``(identifier, None)`` of each KMS key, for messages."""
    described: list[tuple[str, str | None]] = []
    for value in keys:
        if os.path.exists(value):
            key_file = load_key_file(value)
            described.append((key_file.name, key_file.namespace))
        else:
            described.append((value, None))
    return described
