"""Quick start: encrypt and decrypt with a key you hold, then with AWS KMS (a local one).

Run: .venv/bin/python examples/quickstart.py

Everything runs offline: the KMS part talks to `kmsenvelope.testing.local_aws()`, a moto server on
127.0.0.1, through real boto3 clients. In production you would drop the `client_supplier=` argument and
use a real key ARN.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import kmsenvelope
from kmsenvelope import Envelope, KmsKeyring, RawAesKeyring
from kmsenvelope.errors import ContextMismatchError
from kmsenvelope.testing import local_aws

# The encryption context is authenticated with every message and stored in its header (so it is not
# secret). Decrypting with a *required* context checks that the message was written for this purpose.
CONTEXT = {"tenant": "acme", "purpose": "quickstart"}


def raw_aes() -> None:
    # A raw AES keyring wraps each message's fresh data key with a 256-bit key you manage yourself.
    # The namespace and name are written into the message; a reader needs a key with the same pair.
    envelope = Envelope(RawAesKeyring("examples", "quickstart-2024", os.urandom(32)))

    plaintext = b"card 4111 1111 1111 1111"
    ciphertext = envelope.encrypt(plaintext, CONTEXT)
    print(f"raw AES: {len(plaintext)} B plaintext -> {len(ciphertext)} B message")

    # Pass only the pairs you insist on; the message may carry more.
    assert envelope.decrypt(ciphertext, {"tenant": "acme"}) == plaintext

    # decrypt_with_header also returns what the header says: suite, message id, full context.
    result = envelope.decrypt_with_header(ciphertext)
    header = result.header
    print(f"  suite {header.suite.name}, message id {header.message_id.hex()[:16]}...")
    print(f"  context {dict(result.encryption_context)}, {len(header.encrypted_data_keys)} data key(s)")

    # A message written for another tenant must not be accepted as this tenant's data.
    try:
        envelope.decrypt(ciphertext, {"tenant": "globex"})
    except ContextMismatchError as exc:
        print(f"  wrong required context refused: ContextMismatchError: {exc}")
    else:
        raise SystemExit("a wrong required context was accepted")

    # Streaming: memory stays bounded by the frame length (64 KiB by default), whatever the file size.
    with tempfile.TemporaryDirectory() as tmp:
        source, sealed, restored = Path(tmp, "data.bin"), Path(tmp, "data.bin.enc"), Path(tmp, "data.out")
        source.write_bytes(os.urandom(1_000_000))
        file_context = {**CONTEXT, "file": "data.bin"}
        with source.open("rb") as src, sealed.open("wb") as dst:
            envelope.encrypt_stream(src, dst, file_context)
        with sealed.open("rb") as src, restored.open("wb") as dst:
            envelope.decrypt_stream(src, dst, {"file": "data.bin"})
        same = hashlib.sha256(source.read_bytes()).digest() == hashlib.sha256(restored.read_bytes()).digest()
        assert same
        frames = -(-source.stat().st_size // envelope.frame_length)
        print(
            f"  streamed {source.stat().st_size} B -> {sealed.stat().st_size} B "
            f"({frames} frames of {envelope.frame_length} B), decrypted copy identical: {same}"
        )


def kms() -> None:
    with local_aws() as aws:
        key_arn = aws.create_key("us-east-1")
        # The KMS keyring asks KMS for a data key (GenerateDataKey) per message and for its plaintext
        # again (Decrypt) on every read. KMS sees the encryption context too: it can go in key policies
        # and shows up in CloudTrail.
        envelope = Envelope(KmsKeyring(key_arn, client_supplier=aws.client_supplier()))

        ciphertext = envelope.encrypt(b"card 4111 1111 1111 1111", CONTEXT)
        plaintext = envelope.decrypt(ciphertext, {"tenant": "acme"})
        assert plaintext == b"card 4111 1111 1111 1111"
        print(f"AWS KMS: {len(plaintext)} B plaintext -> {len(ciphertext)} B message")

        # Two views of the KMS traffic: what the library asked for, and what reached the server.
        stats = kmsenvelope.stats()
        print(f"  kmsenvelope.stats(): {dict(stats.by_operation)} in {dict(stats.by_region)}")
        generate = aws.requests("GenerateDataKey")[0]
        print(f"  KMS received GenerateDataKey with EncryptionContext={generate.params['EncryptionContext']}")

        try:
            envelope.decrypt(ciphertext, {"tenant": "globex"})
        except ContextMismatchError:
            # Refused from the header alone: no Decrypt request was spent on it.
            decrypts = len(aws.requests("Decrypt"))
            print(f"  wrong required context refused; Decrypt requests so far: {decrypts}")
        else:
            raise SystemExit("a wrong required context was accepted")


if __name__ == "__main__":
    raw_aes()
    kms()
    print("OK")
