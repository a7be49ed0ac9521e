"""Trees written by ``kmsenvelope encrypt -r`` decrypt with aws-encryption-sdk, and the reverse."""

from __future__ import annotations

import base64
from pathlib import Path

from kmsenvelope import CommitmentPolicy, Suite

from ._cli import cli, key_file
from ._esdk import esdk_aes_key, esdk_decrypt, esdk_encrypt

FILES = {"a.txt": b"alpha " * 300, "sub/b.bin": bytes(range(256)) * 40, "sub/deeper/c": b""}
POLICY = CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT


def test_cli_tree_decrypts_with_aws_encryption_sdk(tmp_path: Path) -> None:
    key, doc = key_file(tmp_path, "interop")
    master_key = esdk_aes_key(doc.namespace, doc.name, base64.b64decode(doc.material))
    for relative, data in FILES.items():
        (tmp_path / "plain" / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "plain" / relative).write_bytes(data)
    args = ("-k", key, "-c", "origin=cli", "--frame-length", "1024", "--suite", "0x0578")
    result = cli("encrypt", "-r", *args, tmp_path / "plain", "-o", tmp_path / "enc")
    assert result.returncode == 0, result.stderr
    for relative, data in FILES.items():
        message = (tmp_path / "enc" / f"{relative}.encrypted").read_bytes()
        plaintext, header = esdk_decrypt(POLICY, message, key_provider=master_key)
        assert plaintext == data
        assert header.encryption_context["origin"] == "cli"


def test_aws_encryption_sdk_tree_decrypts_with_cli(tmp_path: Path) -> None:
    key, doc = key_file(tmp_path, "interop")
    master_key = esdk_aes_key(doc.namespace, doc.name, base64.b64decode(doc.material))
    for relative, data in FILES.items():
        path = tmp_path / "enc" / f"{relative}.encrypted"
        path.parent.mkdir(parents=True, exist_ok=True)
        suite = Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384 if data else None
        path.write_bytes(
            esdk_encrypt(POLICY, data, suite=suite, context={"origin": "esdk"}, key_provider=master_key)
        )
    result = cli("decrypt", "-r", "-k", key, "-c", "origin=esdk", tmp_path / "enc", "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    for relative, data in FILES.items():
        assert (tmp_path / "out" / relative).read_bytes() == data
