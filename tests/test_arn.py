"""AWS KMS ARN parsing, MRK identification, MRK match for decrypt, and the discovery filter.

Cases follow ``aws-kms-key-arn.md`` and ``aws-kms-mrk-match-for-decrypt.md`` rule by rule.
"""

from __future__ import annotations

import dataclasses

import pytest

from kmsenvelope import DiscoveryFilter
from kmsenvelope.aws import KmsArn, is_mrk, mrk_match, parse_arn
from kmsenvelope.aws import arn as arn_module
from kmsenvelope.errors import ConfigurationError

KEY = "arn:aws:kms:us-east-1:2222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"
MRK_EAST = "arn:aws:kms:us-east-1:2222222222222:key/mrk-4321abcd12ab34cd56ef1234567890ab"
MRK_WEST = "arn:aws:kms:us-west-2:2222222222222:key/mrk-4321abcd12ab34cd56ef1234567890ab"
ALIAS = "arn:aws:kms:us-west-2:111122223333:alias/test-key"


def test_reexported_from_aws_package() -> None:
    assert arn_module.parse_arn is parse_arn
    import kmsenvelope

    assert kmsenvelope.DiscoveryFilter is DiscoveryFilter


def test_parse_key_arn() -> None:
    arn = parse_arn(KEY)
    resource_id = "1234abcd-12ab-34cd-56ef-1234567890ab"
    assert arn == KmsArn("aws", "kms", "us-east-1", "2222222222222", "key", resource_id)
    assert str(arn) == KEY
    assert not arn.is_mrk


def test_parse_alias_arn_and_resource_id_with_slashes() -> None:
    assert parse_arn(ALIAS).resource_type == "alias"
    # Only the first '/' splits type from id; later ones belong to the id.
    assert parse_arn("arn:aws:kms:us-east-1:1:alias/a/b/c").resource_id == "a/b/c"


def test_parsed_arn_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        parse_arn(KEY).region = "eu-west-1"  # type: ignore[misc]


def test_with_region_keeps_everything_else() -> None:
    assert str(parse_arn(MRK_EAST).with_region("us-west-2")) == MRK_WEST


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "aws:kms:us-east-1:1:key/k",  # 5 parts
        "arn:aws:kms:us-east-1:1:key/k:extra",  # 7 parts
        "nra:aws:kms:us-east-1:1:key/k",  # not 'arn'
        "arn::kms:us-east-1:1:key/k",  # empty partition
        "arn:aws:s3:us-east-1:1:key/k",  # service not kms
        "arn:aws:kms::1:key/k",  # empty region
        "arn:aws:kms:us-east-1::key/k",  # empty account
        "arn:aws:kms:us-east-1:1:",  # empty resource
        "arn:aws:kms:us-east-1:1:key",  # no '/'
        "arn:aws:kms:us-east-1:1:grant/k",  # bad resource type
        "arn:aws:kms:us-east-1:1:key/",  # empty resource id
    ],
)
def test_malformed_arns_are_rejected(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_arn(bad)


@pytest.mark.parametrize(
    ("identifier", "expected"),
    [
        (KEY, False),
        (MRK_EAST, True),
        (ALIAS, False),
        ("arn:aws:kms:us-east-1:1:alias/mrk-looks-like-one", False),  # an alias is never an MRK
        ("1234abcd-12ab-34cd-56ef-1234567890ab", False),
        ("mrk-4321abcd12ab34cd56ef1234567890ab", True),
        ("alias/mrk-test", False),
    ],
)
def test_is_mrk(identifier: str, expected: bool) -> None:
    assert is_mrk(identifier) is expected


def test_is_mrk_rejects_malformed_arn() -> None:
    with pytest.raises(ConfigurationError):
        is_mrk("arn:aws:kms:us-east-1:1:key/")


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (KEY, KEY, True),  # identical
        (ALIAS, ALIAS, True),
        (MRK_EAST, MRK_WEST, True),  # same MRK, other region
        (KEY, KEY.replace("us-east-1", "us-west-2"), False),  # single-region key never crosses regions
        (MRK_EAST, MRK_EAST.replace("2222222222222", "3333333333333"), False),  # account differs
        (MRK_EAST, MRK_WEST.replace("arn:aws:", "arn:aws-cn:"), False),  # partition differs
        (MRK_EAST, MRK_WEST.replace("mrk-4321", "mrk-9999"), False),  # resource differs
        (MRK_EAST, "mrk-4321abcd12ab34cd56ef1234567890ab", False),  # bare id has no partition/account
        (MRK_EAST, KEY, False),
    ],
)
def test_mrk_match(a: str, b: str, expected: bool) -> None:
    assert mrk_match(a, b) is expected
    assert mrk_match(b, a) is expected


def test_discovery_filter_validation() -> None:
    f = DiscoveryFilter("aws", ["111122223333"])
    assert f.account_ids == ("111122223333",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.partition = "aws-cn"  # type: ignore[misc]
    for partition, accounts in [("", ["1"]), ("aws", []), ("aws", [""]), ("aws", "111122223333")]:
        with pytest.raises(ConfigurationError):
            DiscoveryFilter(partition, accounts)


def test_discovery_filter_accepts_only_its_partition_and_accounts() -> None:
    f = DiscoveryFilter("aws", ["2222222222222"])
    assert f.accepts(parse_arn(MRK_EAST))
    assert not f.accepts(parse_arn(MRK_EAST.replace("arn:aws:", "arn:aws-cn:")))
    assert not f.accepts(parse_arn(MRK_EAST.replace("2222222222222", "3333333333333")))
    assert "partition" in (f.rejection(parse_arn(MRK_EAST.replace("arn:aws:", "arn:aws-cn:"))) or "")
    assert "account" in (f.rejection(parse_arn(MRK_EAST.replace("2222222222222", "3"))) or "")
