"""Encrypt outside AWS with the public half of a KMS RSA key; decrypt inside AWS through KMS.

Run: .venv/bin/python examples/kms_rsa_offline_encrypt.py

Typical use: devices, partners or an on-premises job must send data that only a service in AWS can
read. They get the PEM public key of an asymmetric KMS key (`GetPublicKey`) and nothing else: no AWS
account, no credentials, no network access to KMS. The private key never leaves KMS, so decrypting
needs `kms:Decrypt` on that key.

Offline: `kmsenvelope.testing.local_aws()` plays KMS (RSA decryption included).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import kmsenvelope
from kmsenvelope import Envelope, KmsRsaKeyring
from kmsenvelope.errors import ContextMismatchError, NoUsableKeyError
from kmsenvelope.testing import local_aws


@contextlib.contextmanager
def no_aws_credentials() -> Iterator[None]:
    """Hide every place boto3 could find AWS credentials (and the EC2 metadata service)."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("AWS_"):
            del os.environ[name]
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def main() -> None:
    with local_aws() as aws:
        # Done once by an administrator in AWS: an RSA_2048 ENCRYPT_DECRYPT key; its public key (PEM)
        # is handed to whoever needs to encrypt. It is not secret.
        rsa_key = aws.create_rsa_key("us-east-1")
        public_pem = rsa_key.public_key_pem
        print(f"KMS RSA key {rsa_key.arn.rsplit('/', 1)[1]}: public key {len(public_pem)} B of PEM")

        # -- Outside AWS: no credentials anywhere, and no KMS request may be made.
        context = {"sender": "plant-7", "kind": "sensor-batch"}
        aws.reset()
        with no_aws_credentials():
            # Built exactly as the sender would: key ARN + public key, no client supplier.
            producer = Envelope(KmsRsaKeyring(rsa_key.arn, public_key=public_pem))
            ciphertext = producer.encrypt(b"temperature=21.5;pressure=1013", context)
            calls = kmsenvelope.stats().calls
            print(
                f"encrypted offline: {len(ciphertext)} B message; KMS calls made: {calls}, "
                f"requests received by KMS: {len(aws.requests())}"
            )

            # The public key can write but not read: decrypting needs KMS, hence credentials.
            try:
                producer.decrypt(ciphertext)
            except NoUsableKeyError as exc:
                print(f"  the sender cannot decrypt its own message: {exc.failures[0].reason}")
            else:
                raise SystemExit("decrypted without credentials")
        assert aws.requests() == ()

        header = producer.parse_header(ciphertext)
        edk = header.encrypted_data_keys[0]
        print(
            f"  data key wrapped locally: provider {edk.provider_id!r}, {len(edk.ciphertext)} B RSA-OAEP "
            f"ciphertext, suite {header.suite.name}"
        )

        # -- Inside AWS: the receiving service decrypts through KMS (no public key needed here).
        consumer = Envelope(KmsRsaKeyring(rsa_key.arn, client_supplier=aws.client_supplier()))
        plaintext = consumer.decrypt(ciphertext, {"sender": "plant-7"})
        assert plaintext == b"temperature=21.5;pressure=1013"
        decrypts = aws.requests("Decrypt")
        print(
            f"decrypted in AWS: {plaintext.decode()!r}; KMS received {len(decrypts)} Decrypt "
            f"({decrypts[0].params['EncryptionAlgorithm']}) in {decrypts[0].region}"
        )

        # Asymmetric KMS keys take no encryption context, so the keyring binds it itself (a SHA-384 of
        # the context is encrypted with the data key). The required-context check works as usual.
        try:
            consumer.decrypt(ciphertext, {"sender": "plant-9"})
        except ContextMismatchError:
            print("  a message from another sender is refused: ContextMismatchError")
        else:
            raise SystemExit("wrong sender accepted")


if __name__ == "__main__":
    main()
    print("OK")
