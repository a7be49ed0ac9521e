"""Configuration secrets kept encrypted in environment variables and files, decrypted at start-up.

Run: .venv/bin/python examples/secrets_in_env.py

At deploy time, a pipeline with permission to encrypt under a KMS key seals each secret into an AWS
Encryption SDK message bound to {app, env, secret name} and puts it, base64-encoded, in an environment
variable (or, binary, in a file). The plaintext is never written to the deployment config, the
container definition or the disk. At start-up, the application (which needs only `kms:Decrypt`)
decrypts each one and *requires* that context, so:

* a value sealed for another application or environment (staging vs prod) is refused;
* two variables swapped by mistake (or on purpose) are refused, since the secret name is bound;
* any edited byte is refused (authenticated encryption).

A KMS key policy can also require the context (condition `kms:EncryptionContext:env`), so the staging
role cannot decrypt prod secrets even by calling KMS directly. The same values can be sealed from a
shell: `kmsenvelope encrypt --key <key ARN> --context app=billing --context env=prod
--context secret=DB_PASSWORD --base64` (docs/cli.md).

Offline: `kmsenvelope.testing.local_aws()` plays KMS.
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from kmsenvelope import Envelope, KmsKeyring
from kmsenvelope.errors import KmsEnvelopeError
from kmsenvelope.testing import local_aws

APP = "billing"


class SecretError(Exception):
    """A configuration secret is missing or not valid for this app; the message names it, never its value."""


def secret_context(env: str, name: str) -> dict[str, str]:
    return {"app": APP, "env": env, "secret": name}


# -- deploy time ---------------------------------------------------------------------------------


def seal(envelope: Envelope, env: str, name: str, value: bytes) -> bytes:
    return envelope.encrypt(value, secret_context(env, name))


# -- start-up ------------------------------------------------------------------------------------


def load_secret(
    envelope: Envelope, env: str, name: str, environ: Mapping[str, str], secrets_dir: Path
) -> bytes:
    """``<NAME>_ENC`` (base64) from the environment, else the file ``<secrets_dir>/<NAME>.enc``."""
    encoded = environ.get(f"{name}_ENC")
    try:
        if encoded is not None:
            message = base64.b64decode(encoded, validate=True)
        elif (secrets_dir / f"{name}.enc").is_file():
            message = (secrets_dir / f"{name}.enc").read_bytes()
        else:
            raise SecretError(f"{name}: neither {name}_ENC nor {secrets_dir / (name + '.enc')} is set")
        return envelope.decrypt(message, secret_context(env, name))
    except binascii.Error:
        raise SecretError(f"{name}: {name}_ENC is not base64") from None
    except KmsEnvelopeError as exc:
        # The library's messages hold no key material or plaintext, so they are safe to log.
        raise SecretError(f"{name}: refused ({type(exc).__name__}: {exc})") from None


def main() -> None:
    with local_aws() as aws, tempfile.TemporaryDirectory() as tmp:
        envelope = Envelope(KmsKeyring(aws.create_key("us-east-1"), client_supplier=aws.client_supplier()))
        secrets_dir = Path(tmp)

        # Deploy pipeline: the database password goes into an environment variable, the API token
        # into a file (e.g. a mounted volume), both sealed for billing/prod.
        db_password, api_token = b"correct horse battery staple", b"tok_live_51Hx9qT2eZvKYlo2C"
        environ = dict(os.environ)  # the environment the deployment gives the application's process
        sealed = seal(envelope, "prod", "DB_PASSWORD", db_password)
        environ["DB_PASSWORD_ENC"] = base64.b64encode(sealed).decode()
        token_file = secrets_dir / "API_TOKEN.enc"
        token_file.write_bytes(seal(envelope, "prod", "API_TOKEN", api_token))
        token_file.chmod(0o600)
        assert db_password.decode() not in environ["DB_PASSWORD_ENC"]
        print(
            f"sealed DB_PASSWORD into DB_PASSWORD_ENC ({len(environ['DB_PASSWORD_ENC'])} base64 chars) "
            f"and API_TOKEN into {token_file.name} ({token_file.stat().st_size} B)"
        )

        # Application start-up in prod.
        loaded = {
            name: load_secret(envelope, "prod", name, environ, secrets_dir)
            for name in ("DB_PASSWORD", "API_TOKEN")
        }
        assert loaded == {"DB_PASSWORD": db_password, "API_TOKEN": api_token}
        # Never print or log the values themselves.
        print("prod start-up: " + ", ".join(f"{name} ok ({len(value)} B)" for name, value in loaded.items()))

        # What must fail, and fail with a clear message.
        value = environ["DB_PASSWORD_ENC"]
        at = len(value) - 8  # inside the last frame's authentication tag
        tampered = value[:at] + ("A" if value[at] != "A" else "B") + value[at + 1 :]
        cases = {
            "one base64 character changed": ("prod", "DB_PASSWORD", {**environ, "DB_PASSWORD_ENC": tampered}),
            "staging app given the prod value": ("staging", "DB_PASSWORD", environ),
            "API_TOKEN_ENC set to the DB password": (
                "prod",
                "API_TOKEN",
                {**environ, "API_TOKEN_ENC": environ["DB_PASSWORD_ENC"]},
            ),
            "not base64": ("prod", "DB_PASSWORD", {**environ, "DB_PASSWORD_ENC": "p@ssw0rd"}),
            "missing": ("prod", "SMTP_PASSWORD", environ),
        }
        for label, (env, name, variables) in cases.items():
            try:
                load_secret(envelope, env, name, variables, secrets_dir)
            except SecretError as exc:
                print(f"  {label}: {exc}")
            else:
                raise SystemExit(f"{label}: accepted")


if __name__ == "__main__":
    main()
    print("OK")
