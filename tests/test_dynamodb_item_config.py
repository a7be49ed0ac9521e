"""TableConfig validation (``ddb-table-encryption-config.md`` and the reference item encryptor)."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

from kmsenvelope.aws.key_store import StaticBranchKeyStore
from kmsenvelope.dynamodb import DEFAULT_SUITE, SIGNING_SUITE, Action, ItemEncryptor, TableConfig
from kmsenvelope.errors import ConfigurationError
from kmsenvelope.keyrings.hierarchical import HierarchicalKeyring
from kmsenvelope.suites import Suite

KEYRING = HierarchicalKeyring(
    StaticBranchKeyStore("bk", str(uuid.uuid4()), os.urandom(32), os.urandom(32)), branch_key_id="bk"
)


def _config(**overrides: Any) -> TableConfig:
    args: dict[str, Any] = {
        "actions": {"pk": Action.SIGN_ONLY, "data": Action.ENCRYPT_AND_SIGN},
        "keyring": KEYRING,
    }
    args.update(overrides)
    table = args.pop("table", "table")
    partition = args.pop("partition", "pk")
    return TableConfig(table, partition, **args)


def test_valid_configurations() -> None:
    config = _config()
    assert config.version == 1 and config.key_action is Action.SIGN_ONLY
    assert config.effective_suite is DEFAULT_SUITE and not DEFAULT_SUITE.signing
    assert _config(suite=SIGNING_SUITE).effective_suite is SIGNING_SUITE
    v2 = _config(actions={"pk": "SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT", "x": "ENCRYPT_AND_SIGN"})
    assert v2.version == 2 and v2.actions["pk"] is Action.SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT
    with_sort = _config(sort_key="sk", actions={"pk": Action.SIGN_ONLY, "sk": Action.SIGN_ONLY})
    assert with_sort.sort_key == "sk"
    unsigned = _config(
        actions={"pk": Action.SIGN_ONLY, "a": Action.DO_NOTHING, "tmp_b": Action.DO_NOTHING},
        allowed_unsigned=["a"],
        allowed_unsigned_prefix="tmp_",
    )
    assert unsigned.allowed_unsigned_name("a") and unsigned.allowed_unsigned_name("tmp_x")
    assert unsigned.allowed_unsigned_name("aws_dbe_b_beacon")
    assert not unsigned.allowed_unsigned_name("pk")
    # The config is immutable, including its action map.
    with pytest.raises(TypeError):
        unsigned.actions["pk"] = Action.DO_NOTHING  # type: ignore[index]
    ItemEncryptor(config)


@pytest.mark.parametrize(
    "overrides",
    [
        {"table": ""},
        {"table": 5},
        {"partition": ""},
        {"partition": "p" * 256},
        {"sort_key": ""},
        {"sort_key": "pk"},
        # keys must be signed with the key action
        {"actions": {"data": Action.ENCRYPT_AND_SIGN}},
        {"actions": {"pk": Action.ENCRYPT_AND_SIGN}},
        {"actions": {"pk": Action.DO_NOTHING}, "allowed_unsigned": ["pk"]},
        {"sort_key": "sk", "actions": {"pk": Action.SIGN_ONLY}},
        {"sort_key": "sk", "actions": {"pk": Action.SIGN_ONLY, "sk": Action.ENCRYPT_AND_SIGN}},
        {"actions": {"pk": Action.SIGN_ONLY, "c": Action.SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT}},
        # DO_NOTHING only for allowed-unsigned attributes, and those only DO_NOTHING
        {"actions": {"pk": Action.SIGN_ONLY, "a": Action.DO_NOTHING}},
        {"actions": {"pk": Action.SIGN_ONLY, "a": Action.SIGN_ONLY}, "allowed_unsigned": ["a"]},
        {
            "actions": {"pk": Action.SIGN_ONLY, "tmp_a": Action.ENCRYPT_AND_SIGN},
            "allowed_unsigned_prefix": "tmp_",
        },
        {"actions": {"pk": Action.SIGN_ONLY}, "allowed_unsigned_prefix": "p"},
        # the SDK's namespace
        {"actions": {"pk": Action.SIGN_ONLY, "aws_dbe_head": Action.SIGN_ONLY}},
        {"actions": {"pk": Action.SIGN_ONLY, "aws_dbe_x": Action.DO_NOTHING}},
        # types
        {"actions": {"pk": "SIGN"}},
        {"actions": [("pk", Action.SIGN_ONLY)]},
        {"actions": {"pk": Action.SIGN_ONLY, "": Action.ENCRYPT_AND_SIGN}},
        {"keyring": object()},
        {"suite": Suite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY},
        {"allowed_unsigned": "abc"},
        {"allowed_unsigned": [5]},
        {"allowed_unsigned_prefix": 5},
        {"beacons": [{"name": "b"}]},
    ],
)
def test_invalid_configurations(overrides: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        _config(**overrides)


def test_item_encryptor_needs_a_table_config() -> None:
    with pytest.raises(ConfigurationError):
        ItemEncryptor({"table": "t"})  # type: ignore[arg-type]
