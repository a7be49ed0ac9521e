"""LegacyConfig, LegacyPolicy, PlaintextPolicy and their TableConfig checks (no network)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from kmsenvelope.dynamodb import Action, LegacyConfig, LegacyPolicy, PlaintextPolicy, TableConfig
from kmsenvelope.errors import ConfigurationError

from ._dynamodb_env import KEYRING, config, create_table, unique
from ._legacy_env import LEGACY_ACTIONS, static_provider, wrapped_provider

FORBID = LegacyPolicy.FORBID_LEGACY_ENCRYPT_ALLOW_LEGACY_DECRYPT


def test_policy_values_and_their_meaning() -> None:
    assert [p.name for p in PlaintextPolicy] == [
        "FORCE_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ",
        "FORBID_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ",
        "FORBID_PLAINTEXT_WRITE_FORBID_PLAINTEXT_READ",
    ]
    assert [p.name for p in LegacyPolicy] == [
        "FORCE_LEGACY_ENCRYPT_ALLOW_LEGACY_DECRYPT",
        "FORBID_LEGACY_ENCRYPT_ALLOW_LEGACY_DECRYPT",
        "FORBID_LEGACY_ENCRYPT_FORBID_LEGACY_DECRYPT",
    ]
    assert [(p.forces_write, p.allows_read) for p in PlaintextPolicy] == [
        (True, True),
        (False, True),
        (False, False),
    ]
    assert [(p.forces_encrypt, p.allows_decrypt) for p in LegacyPolicy] == [
        (True, True),
        (False, True),
        (False, False),
    ]


def test_defaults_are_unset() -> None:
    plain = config("t")
    assert plain.legacy is None and plain.plaintext_policy is None


def test_legacy_config_fields_and_names() -> None:
    materials = static_provider()
    legacy = LegacyConfig(
        materials,
        {"dept": "SIGN_ONLY", "note": Action.DO_NOTHING},
        "FORBID_LEGACY_ENCRYPT_ALLOW_LEGACY_DECRYPT",
    )
    assert legacy.policy is FORBID and legacy.provider is materials
    assert dict(legacy.actions) == {"dept": Action.SIGN_ONLY, "note": Action.DO_NOTHING}
    assert legacy.material_description_attribute == "*amzn-ddb-map-desc*"
    assert legacy.signature_attribute == "*amzn-ddb-map-sig*"
    with pytest.raises(TypeError):
        legacy.actions["x"] = Action.SIGN_ONLY  # type: ignore[index]
    custom = LegacyConfig(materials, {}, FORBID, material_description_attribute="d", signature_attribute="s")
    assert (custom.material_description_attribute, custom.signature_attribute) == ("d", "s")
    assert "Static" in repr(legacy) and "key" not in repr(legacy).lower().replace("keys", "")


def test_provider_of_the_legacy_encrypted_client_table_and_resource(local_aws: Any) -> None:
    from dynamodb_encryption_sdk.encrypted.client import EncryptedClient
    from dynamodb_encryption_sdk.encrypted.resource import EncryptedResource
    from dynamodb_encryption_sdk.encrypted.table import EncryptedTable

    materials = wrapped_provider()
    name = unique("wrappers")
    create_table(local_aws, name)
    boto = local_aws.session.resource(
        "dynamodb", region_name="us-east-1", endpoint_url=local_aws.endpoint_url
    )
    wrappers = [
        EncryptedClient(client=local_aws.client("dynamodb", "us-east-1"), materials_provider=materials),
        EncryptedTable(table=boto.Table(name), materials_provider=materials),
        EncryptedResource(resource=boto, materials_provider=materials),
    ]
    for wrapper in wrappers:
        assert LegacyConfig(wrapper, LEGACY_ACTIONS, FORBID).provider is materials


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((object(), {}, FORBID), {}, "materials provider"),
        (("provider", {}, FORBID), {}, "materials provider"),
        ((None, {}, "NOT_A_POLICY"), {}, "LegacyPolicy"),
        ((None, {"x": Action.SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT}, FORBID), {}, "SIGN_AND_INCLUDE"),
        ((None, {"x": "BOGUS"}, FORBID), {}, "BOGUS"),
        ((None, {"*amzn-ddb-map-sig*": Action.SIGN_ONLY}, FORBID), {}, "own attribute"),
        ((None, {"aws_dbe_x": Action.SIGN_ONLY}, FORBID), {}, "aws_dbe_"),
        ((None, ["x"], FORBID), {}, "map attribute names"),
        ((None, {}, FORBID), {"signature_attribute": "*amzn-ddb-map-desc*"}, "must differ"),
        ((None, {}, FORBID), {"material_description_attribute": ""}, "non-empty"),
        ((None, {}, FORBID), {"signature_attribute": "aws_dbe_sig"}, "aws_dbe_"),
    ],
)
def test_legacy_config_refusals(args: tuple[Any, ...], kwargs: dict[str, Any], message: str) -> None:
    if args[0] is None:
        args = (static_provider(), *args[1:])
    with pytest.raises(ConfigurationError, match=message):
        LegacyConfig(*args, **kwargs)


def test_legacy_and_plaintext_policy_together_are_refused() -> None:
    legacy = LegacyConfig(static_provider(), LEGACY_ACTIONS, FORBID)
    with pytest.raises(ConfigurationError, match="both a legacy config and a plaintext policy"):
        config(
            "t", legacy=legacy, plaintext_policy=PlaintextPolicy.FORBID_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ
        )


def test_table_config_checks() -> None:
    with pytest.raises(ConfigurationError, match="LegacyConfig"):
        config("t", legacy={"policy": FORBID})
    with pytest.raises(ConfigurationError, match="PlaintextPolicy"):
        config("t", plaintext_policy="ALLOW_EVERYTHING")
    assert (
        config("t", plaintext_policy="FORBID_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ").plaintext_policy
        is PlaintextPolicy.FORBID_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ
    )
    encrypted_key = LegacyConfig(static_provider(), {"sk": Action.ENCRYPT_AND_SIGN}, FORBID)
    with pytest.raises(ConfigurationError, match="'sk' cannot be ENCRYPT_AND_SIGN"):
        config("t", legacy=encrypted_key)


def test_missing_legacy_library_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    materials = static_provider()
    monkeypatch.setitem(sys.modules, "dynamodb_encryption_sdk", None)  # what an absent package looks like
    with pytest.raises(ConfigurationError, match=r"pip install 'kmsenvelope\[legacy\]'"):
        LegacyConfig(materials, LEGACY_ACTIONS, FORBID)
    # Tables without a legacy config never need it.
    assert TableConfig("t", "pk", actions={"pk": Action.SIGN_ONLY}, keyring=KEYRING).legacy is None


def test_importing_the_package_does_not_import_the_legacy_library() -> None:
    code = (
        "import sys, kmsenvelope, kmsenvelope.dynamodb as d; "
        "d.LegacyConfig; d.PlaintextPolicy; d.ItemEncryptor; "
        "print(any(m.startswith('dynamodb_encryption_sdk') for m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
