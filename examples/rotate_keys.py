"""Key rotation, two ways.

Run: .venv/bin/python examples/rotate_keys.py

(a) Hierarchical keyring: rotate a branch key with `KeyStore.version_key`. New messages use the new
    version; old messages still decrypt, since every version stays in the key store. Nothing stored
    has to be rewritten.
(b) Moving stored values to a *different* KMS key (a compromised or retired key, a move to a
    multi-Region key): deploy a reader that accepts both keys, re-encrypt every value under the new key,
    then disable the old one. (For SQL tables, `kmsenvelope.sql.reencrypt` does this loop online and
    resumably; see docs/sql.md.)

AWS KMS's own automatic rotation of a symmetric key needs neither: the key ARN stays the same and KMS
keeps every backing key version, so existing ciphertexts keep decrypting with no change here.

Offline: `kmsenvelope.testing.local_aws()` is the KMS and the DynamoDB table of the key store.
"""

from __future__ import annotations

import uuid

import kmsenvelope
from kmsenvelope import Envelope, HierarchicalKeyring, KeyStore, KmsKeyring, MultiKeyring
from kmsenvelope.aws import accounting
from kmsenvelope.errors import NoUsableKeyError
from kmsenvelope.testing import LocalAws, local_aws

REGION = "us-east-1"


def branch_key_version(envelope: Envelope, message: bytes) -> str:
    """The branch key version a message was wrapped under, read from its header without any key.

    A hierarchical EDK is salt (16) | IV (12) | branch key version (16) | ... (docs/format.md).
    """
    edk = envelope.parse_header(message).encrypted_data_keys[0]
    return str(uuid.UUID(bytes=bytes(edk.ciphertext[28:44])))


def hierarchical(aws: LocalAws) -> None:
    supplier = aws.client_supplier()
    # The key store is a DynamoDB table of branch keys, each wrapped by one KMS key.
    store = KeyStore(
        "branch-keys",
        aws.create_key(REGION),
        ddb_client=aws.client("dynamodb", REGION),
        client_supplier=supplier,
    )
    store.create_table()
    branch_key_id = store.create_key()
    keyring = HierarchicalKeyring(store, branch_key_id=branch_key_id, ttl_seconds=600)
    envelope = Envelope(keyring)

    accounting.reset()
    old = [envelope.encrypt(f"invoice {n}".encode(), {"tenant": "acme"}) for n in range(100)]
    v1 = branch_key_version(envelope, old[0])
    print(
        f"(a) 100 messages under branch key version {v1[:8]}; "
        f"KMS calls: {kmsenvelope.stats().calls} (the branch key is cached for ttl_seconds)"
    )

    v2 = store.version_key(branch_key_id)
    # This process still holds version 1 in its cache; others pick up v2 within ttl_seconds.
    # clear_cache() applies the rotation here at once.
    stale = branch_key_version(envelope, envelope.encrypt(b"written just after rotating", {"tenant": "acme"}))
    keyring.clear_cache()
    new = envelope.encrypt(b"invoice 100", {"tenant": "acme"})
    print(
        f"    version_key -> {v2[:8]}; next message (cached key) uses {stale[:8]}, "
        f"after clear_cache() {branch_key_version(envelope, new)[:8]}"
    )
    assert stale == v1 and branch_key_version(envelope, new) == v2

    # A fresh reader (another process) decrypts both: it fetches each version once, then caches it.
    reader = Envelope(HierarchicalKeyring(store, branch_key_id=branch_key_id))
    accounting.reset()
    aws.reset()
    plaintexts = [reader.decrypt(message, {"tenant": "acme"}) for message in old]
    assert plaintexts == [f"invoice {n}".encode() for n in range(100)]
    assert reader.decrypt(new, {"tenant": "acme"}) == b"invoice 100"
    fetched = sorted(
        r.params["Key"]["type"]["S"].split(":")[-1][:8] for r in aws.requests("GetItem", service="dynamodb")
    )
    print(
        f"    reader decrypted 101 messages of both versions with {kmsenvelope.stats().calls} KMS Decrypt "
        f"calls; key store items fetched: versions {fetched}"
    )


def new_kms_key(aws: LocalAws) -> None:
    supplier = aws.client_supplier()
    old_key, new_key = aws.create_key(REGION), aws.create_key(REGION)
    old_ring = KmsKeyring(old_key, client_supplier=supplier)
    new_ring = KmsKeyring(new_key, client_supplier=supplier)

    # Stored values (a dict stands in for a database), encrypted under the old key.
    database = {
        f"user-{n}": Envelope(old_ring).encrypt(f"ssn-{n:04d}".encode(), {"record": f"user-{n}"})
        for n in range(5)
    }
    backup = dict(database)  # an old backup: it will only ever decrypt with the old key

    # Step 1: deploy readers (and writers) that accept both keys. New writes get the new key as generator
    # (and the old one as well, so not-yet-upgraded readers can still read them).
    transitional = Envelope(MultiKeyring(generator=new_ring, children=[old_ring]))
    database["user-5"] = transitional.encrypt(b"ssn-0005", {"record": "user-5"})

    # Step 2: re-encrypt what is not yet under the new key alone. Deciding needs only the header (no key
    # operation), so an interrupted run simply starts over and skips what is done.
    final = Envelope(new_ring)

    def reencrypt_all() -> int:
        rewritten = 0
        for record_id, message in database.items():
            key_arns = {edk.provider_info.decode() for edk in final.parse_header(message).encrypted_data_keys}
            if key_arns == {new_key}:
                continue
            result = transitional.decrypt_with_header(message, {"record": record_id})
            # Keep the stored context: it is what readers will require.
            database[record_id] = final.encrypt(result.plaintext, result.encryption_context)
            rewritten += 1
        return rewritten

    first, second = reencrypt_all(), reencrypt_all()
    print(
        f"(b) re-encrypted {first} of {len(database)} values to the new KMS key; "
        f"a second run rewrote {second}"
    )
    assert (first, second) == (6, 0)

    # Step 3: disable (later: schedule deletion of) the old key. Everything current still reads.
    aws.disable_key(old_key)
    values = {record_id: final.decrypt(m, {"record": record_id}) for record_id, m in database.items()}
    print(f"    old key disabled; all {len(values)} values read with the new key only")
    # Backups and other copies were not re-encrypted: keep the old key disabled, not deleted, until
    # they expire. (Re-enabling it makes them readable again; deleting it would lose them.)
    try:
        transitional.decrypt(backup["user-0"])
    except NoUsableKeyError as exc:
        print(f"    a backup taken before re-encryption now fails: {exc.failures[-1].reason.split(': ')[-1]}")
    else:
        raise SystemExit("the backup decrypted with a disabled key")


if __name__ == "__main__":
    with local_aws() as local:
        hierarchical(local)
        new_kms_key(local)
    print("OK")
