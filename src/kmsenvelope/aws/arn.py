"""AWS KMS key identifiers: ARN parsing, multi-Region key detection and MRK matching.

Sources (ESDK specification, ``framework/aws-kms``): ``aws-kms-key-arn.md`` and
``aws-kms-mrk-match-for-decrypt.md``. Also the discovery filter used by discovery keyrings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..errors import ConfigurationError

__all__ = [
    "DiscoveryFilter",
    "KmsArn",
    "is_mrk",
    "is_valid_identifier",
    "mrk_match",
    "parse_arn",
    "validate_identifier",
]

_RESOURCE_TYPES = ("key", "alias")


@dataclass(frozen=True)
class KmsArn:
    """A parsed AWS KMS ARN: ``arn:<partition>:kms:<region>:<account>:<resource_type>/<resource_id>``."""

    partition: str
    service: str
    region: str
    account: str
    resource_type: str
    resource_id: str

    @property
    def is_mrk(self) -> bool:
        """True for a multi-Region *key* ARN; an alias is never an MRK, even if named ``mrk-...``."""
        return self.resource_type == "key" and self.resource_id.startswith("mrk-")

    @property
    def account_id(self) -> str:
        """Alias of :attr:`account`."""
        return self.account

    @property
    def resource(self) -> str:
        """The resource section, ``<resource_type>/<resource_id>``."""
        return f"{self.resource_type}/{self.resource_id}"

    def with_region(self, region: str) -> KmsArn:
        """The same ARN in another region (how a replica of a multi-Region key is addressed)."""
        return replace(self, region=region)

    def __str__(self) -> str:
        return (
            f"arn:{self.partition}:{self.service}:{self.region}:{self.account}:"
            f"{self.resource_type}/{self.resource_id}"
        )


def parse_arn(value: str) -> KmsArn:
    """Parse a valid AWS KMS ARN or raise :class:`ConfigurationError` saying which rule it breaks."""
    if not isinstance(value, str):
        raise ConfigurationError("AWS KMS ARN must be a str")
    parts = value.split(":")
    if len(parts) != 6:
        raise ConfigurationError(f"malformed AWS KMS ARN {value!r}: expected 6 ':'-separated parts")
    prefix, partition, service, region, account, resource = parts
    if prefix != "arn":
        raise ConfigurationError(f"malformed AWS KMS ARN {value!r}: must start with 'arn'")
    if not partition:
        raise ConfigurationError(f"malformed AWS KMS ARN {value!r}: empty partition")
    if service != "kms":
        raise ConfigurationError(f"malformed AWS KMS ARN {value!r}: service must be 'kms'")
    if not region:
        raise ConfigurationError(f"malformed AWS KMS ARN {value!r}: empty region")
    if not account:
        raise ConfigurationError(f"malformed AWS KMS ARN {value!r}: empty account")
    resource_type, sep, resource_id = resource.partition("/")
    if not sep:
        raise ConfigurationError(f"malformed AWS KMS ARN {value!r}: resource must be '<type>/<id>'")
    if resource_type not in _RESOURCE_TYPES:
        raise ConfigurationError(f"malformed AWS KMS ARN {value!r}: resource type must be 'key' or 'alias'")
    if not resource_id:
        raise ConfigurationError(f"malformed AWS KMS ARN {value!r}: empty resource id")
    return KmsArn(partition, service, region, account, resource_type, resource_id)


def is_valid_identifier(value: str) -> bool:
    """True for any valid AWS KMS identifier: key ARN, alias ARN, ``alias/...`` or a bare key id."""
    try:
        validate_identifier(value)
    except ConfigurationError:
        return False
    return True


def validate_identifier(value: str) -> str:
    """Return ``value`` if it is a valid AWS KMS identifier, else raise :class:`ConfigurationError`."""
    if not isinstance(value, str) or not value:
        raise ConfigurationError("AWS KMS key identifier must be a non-empty str")
    if value.startswith("arn:"):
        parse_arn(value)
    elif value.startswith("alias/"):
        if len(value) == len("alias/"):
            raise ConfigurationError(f"malformed AWS KMS alias {value!r}")
    elif ":" in value or "/" in value:
        # A bare key id never contains these; a string that does is a mistyped ARN or alias.
        raise ConfigurationError(f"malformed AWS KMS key identifier {value!r}")
    return value


def is_alias(value: str) -> bool:
    """True for an alias name or alias ARN."""
    if value.startswith("arn:"):
        return parse_arn(value).resource_type == "alias"
    return value.startswith("alias/")


def is_mrk(identifier: str | KmsArn) -> bool:
    """Whether an AWS KMS identifier names a multi-Region key (``aws-kms-key-arn.md``).

    ARNs are parsed (a malformed ARN raises :class:`ConfigurationError`); aliases are never MRKs;
    a bare key id is an MRK if it starts with ``mrk-``.
    """
    if isinstance(identifier, KmsArn):
        return identifier.is_mrk
    if identifier.startswith("arn:"):
        return parse_arn(identifier).is_mrk
    if identifier.startswith("alias/"):
        return False
    return identifier.startswith("mrk-")


def mrk_match(configured: str, message: str) -> bool:
    """AWS KMS MRK Match for Decrypt (``aws-kms-mrk-match-for-decrypt.md``).

    Identical identifiers match. Otherwise both must be multi-Region key ARNs that agree on
    everything but the region. A bare ``mrk-`` key id only ever matches itself: without an ARN
    there is no partition or account to compare.
    """
    if configured == message:
        return True
    if not is_mrk(configured) or not is_mrk(message):
        return False
    if not (configured.startswith("arn:") and message.startswith("arn:")):
        return False
    a, b = parse_arn(configured), parse_arn(message)
    return (a.partition, a.service, a.account, a.resource_type, a.resource_id) == (
        b.partition,
        b.service,
        b.account,
        b.resource_type,
        b.resource_id,
    )


@dataclass(frozen=True)
class DiscoveryFilter:
    """Limits a discovery keyring to keys of one partition and a set of accounts."""

    partition: str
    account_ids: Sequence[str]

    def __post_init__(self) -> None:
        if not isinstance(self.partition, str) or not self.partition:
            raise ConfigurationError("discovery filter needs a non-empty partition")
        if isinstance(self.account_ids, str):
            raise ConfigurationError("discovery filter account_ids must be a sequence of str, not a str")
        accounts = tuple(self.account_ids)
        if not accounts:
            raise ConfigurationError("discovery filter needs at least one account id")
        for account in accounts:
            if not isinstance(account, str) or not account:
                raise ConfigurationError("discovery filter account ids must be non-empty str")
        object.__setattr__(self, "account_ids", accounts)

    def accepts(self, arn: KmsArn) -> bool:
        """True if ``arn`` is in this filter's partition and one of its accounts."""
        return arn.partition == self.partition and arn.account in self.account_ids

    def rejection(self, arn: KmsArn) -> str | None:
        """Why ``arn`` is filtered out, or None if it is accepted."""
        if arn.partition != self.partition:
            return f"partition {arn.partition!r} is not the discovery filter's {self.partition!r}"
        if arn.account not in self.account_ids:
            return f"account {arn.account} is not in the discovery filter"
        return None
