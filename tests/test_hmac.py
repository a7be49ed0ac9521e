"""The library's one HMAC (``kmsenvelope.primitives.kdf``) against RFC 4231, ``hmac`` and ``cryptography``,
and the counter-mode KDF against ``cryptography``'s ``KBKDFHMAC``."""

from __future__ import annotations

import ast
import hmac
import os
import random
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.kdf.kbkdf import KBKDFHMAC, CounterLocation, Mode

from kmsenvelope.primitives.kdf import CounterKdf, Hmac, hmac_digest, kdf_counter_hmac

SRC = Path(__file__).resolve().parent.parent / "src" / "kmsenvelope"
_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}

# RFC 4231 section 4: (key, data, {hash: HMAC}). Test case 5's outputs are truncated to 128 bits.
_AA_131 = bytes([0xAA]) * 131
RFC4231 = [
    (
        bytes([0x0B]) * 20,
        b"Hi There",
        {
            "sha256": "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            "sha384": "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c"
            "faea9ea9076ede7f4af152e8b2fa9cb6",
            "sha512": "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
            "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
        },
    ),
    (
        b"Jefe",
        b"what do ya want for nothing?",
        {
            "sha256": "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            "sha384": "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e"
            "8e2240ca5e69e2c78b3239ecfab21649",
            "sha512": "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
            "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
        },
    ),
    (
        bytes([0xAA]) * 20,
        bytes([0xDD]) * 50,
        {
            "sha256": "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            "sha384": "88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b"
            "2a5ab39dc13814b94e3ab6e101a34f27",
            "sha512": "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39"
            "bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb",
        },
    ),
    (
        bytes(range(1, 26)),
        bytes([0xCD]) * 50,
        {
            "sha256": "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            "sha384": "3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e"
            "6801dd23c4a7d679ccf8a386c674cffb",
            "sha512": "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3db"
            "a91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd",
        },
    ),
    (
        bytes([0x0C]) * 20,
        b"Test With Truncation",
        {
            "sha256": "a3b6167473100ee06e0c796c2955552b",
            "sha384": "3abf34c3503b2a23a46efc619baef897",
            "sha512": "415fad6271580a531d4179bc891d87a6",
        },
    ),
    (
        _AA_131,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        {
            "sha256": "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            "sha384": "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c6"
            "0c2ef6ab4030fe8296248df163f44952",
            "sha512": "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352"
            "6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
        },
    ),
    (
        _AA_131,
        b"This is a test using a larger than block-size key and a larger than block-size data. "
        b"The key needs to be hashed before being used by the HMAC algorithm.",
        {
            "sha256": "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            "sha384": "6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5"
            "a678cc31e799176d3860e6110c46523e",
            "sha512": "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944"
            "b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58",
        },
    ),
]


@pytest.mark.parametrize("case", range(1, len(RFC4231) + 1))
@pytest.mark.parametrize("hash_name", ["sha256", "sha384", "sha512"])
def test_rfc4231(case: int, hash_name: str) -> None:
    key, data, expected = RFC4231[case - 1]
    want = expected[hash_name]
    assert hmac_digest(hash_name, key, data).hex()[: len(want)] == want
    keyed = Hmac(hash_name, key)
    assert keyed.digest(data).hex()[: len(want)] == want
    assert keyed.digest(data).hex()[: len(want)] == want  # the keyed states survive a use


@pytest.mark.parametrize("hash_name", ["sha256", "sha384", "sha512"])
def test_random_inputs_match_hmac_and_cryptography(hash_name: str) -> None:
    rng = random.Random(4231)
    lengths = [0, 1, 31, 32, 48, 63, 64, 65, 127, 128, 129, 200, 300]
    for key_length in lengths:
        key = rng.randbytes(key_length)
        keyed = Hmac(hash_name, key)
        for message_length in (0, 1, 55, 56, 64, 111, 112, 128, 1000):
            message = rng.randbytes(message_length)
            reference = crypto_hmac.HMAC(key, _HASHES[hash_name]())
            reference.update(message)
            expected = reference.finalize()
            assert hmac.digest(key, message, hash_name) == expected
            assert hmac_digest(hash_name, key, message) == expected
            assert keyed.digest(message) == expected


def test_unsupported_hash_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="md5"):
        Hmac("md5", b"key")
    with pytest.raises(ValueError):
        hmac_digest("sha1", b"key", b"data")


def test_repr_hides_the_key() -> None:
    key = bytes(range(32))
    assert key.hex() not in repr(Hmac("sha256", key)) and "hidden" in repr(Hmac("sha256", key))


def test_no_other_hmac_in_the_library() -> None:
    """HMAC is computed in primitives/kdf.py only: nowhere else calls ``hmac.new``/``hmac.digest`` or
    cryptography's HMAC, and nowhere else pads a key with the RFC 2104 constants."""
    offenders = []
    for path in SRC.rglob("*.py"):
        if path == SRC / "primitives" / "kdf.py":
            continue
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and (node.value.id, node.attr) in {("hmac", "new"), ("hmac", "digest"), ("hmac", "HMAC")}
            ):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitXor):
                operands = (node.left, node.right)
                if any(isinstance(o, ast.Constant) and o.value in (0x36, 0x5C) for o in operands):
                    offenders.append(f"{path.relative_to(SRC)}:{node.lineno} (ipad/opad)")
    assert offenders == []


# -- counter-mode KDF ---------------------------------------------------------------------------


def _kbkdf(hash_name: str, key: bytes, label: bytes, context: bytes, length: int) -> bytes:
    # NIST SP 800-108 counter mode as the MPL's KdfCtr lays it out: 32-bit counter before the fixed
    # input, fixed input = label || 0x00 || context || [L]_32 (cryptography inserts the 0x00 itself).
    return KBKDFHMAC(
        algorithm=_HASHES[hash_name](),
        mode=Mode.CounterMode,
        length=length,
        rlen=4,
        llen=4,
        location=CounterLocation.BeforeFixed,
        label=label,
        context=context,
        fixed=None,
    ).derive(key)


def test_counter_kdf_matches_kbkdfhmac_with_the_hierarchical_keyring_parameters() -> None:
    # The DB-ESDK / MPL hierarchical keyring: HMAC-SHA256, label "aws-kms-hierarchy", 16-byte salt, 32 bytes.
    for _ in range(200):
        key, salt = os.urandom(32), os.urandom(16)
        kdf = CounterKdf("sha256", key, b"aws-kms-hierarchy", 32)
        expected = _kbkdf("sha256", key, b"aws-kms-hierarchy", salt, 32)
        assert kdf.derive(salt) == expected
        assert kdf_counter_hmac("sha256", key, b"aws-kms-hierarchy", salt, 32) == expected


@pytest.mark.parametrize("hash_name", ["sha256", "sha384", "sha512"])
def test_counter_kdf_matches_kbkdfhmac_over_random_inputs(hash_name: str) -> None:
    rng = random.Random(800108)
    for _ in range(60):
        key = rng.randbytes(rng.choice([16, 32, 48, 64, 100, 200]))
        label = rng.randbytes(rng.randrange(0, 40))
        context = rng.randbytes(rng.randrange(1, 80))  # KBKDFHMAC requires a non-empty context or label
        length = rng.choice([1, 16, 31, 32, 33, 48, 64, 65, 100, 200])
        expected = _kbkdf(hash_name, key, label, context, length)
        assert CounterKdf(hash_name, key, label, length).derive(context) == expected
        assert kdf_counter_hmac(hash_name, key, label, context, length) == expected
        assert kdf_counter_hmac(hash_name, Hmac(hash_name, key), label, context, length) == expected
