"""Standard beacon styles (``searchable-encryption/beacons.md#beacon-style-initialization``).

* :class:`PartOnly`: the beacon is never stored and cannot be queried by itself; it only exists as
  an encrypted part of compound beacons (and must be used by one).
* :class:`Shared`: the beacon is computed with the HMAC key of standard beacon ``other`` (same length,
  ``other`` not itself shared), so equal values of two attributes get equal beacons.
* :class:`AsSet`: the attribute is a set (SS, NS or BS); the beacon is stored as a string set of the
  beacons of its members and can be searched with ``contains(name, :member)``. It cannot be a part of
  a compound beacon.
* :class:`SharedSet`: both :class:`Shared` and :class:`AsSet`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigurationError

__all__ = ["AsSet", "BeaconStyle", "PartOnly", "Shared", "SharedSet", "check_style", "is_set", "shared_with"]


@dataclass(frozen=True)
class PartOnly:
    """Only usable as an encrypted part of a compound beacon; not stored or queried on its own."""


@dataclass(frozen=True)
class Shared:
    """Use the HMAC key of standard beacon ``other``."""

    other: str


@dataclass(frozen=True)
class AsSet:
    """The attribute is a set; store a string set of its members' beacons."""


@dataclass(frozen=True)
class SharedSet:
    """:class:`AsSet` with the HMAC key of standard beacon ``other``."""

    other: str


BeaconStyle = PartOnly | Shared | AsSet | SharedSet


def check_style(style: object, owner: str) -> None:
    """Refuse anything but ``None`` or one style object."""
    if style is None:
        return
    if not isinstance(style, (PartOnly, Shared, AsSet, SharedSet)):
        raise ConfigurationError(
            f"beacon {owner!r}: style must be PartOnly(), Shared(other), AsSet() or SharedSet(other)"
        )
    if isinstance(style, (Shared, SharedSet)) and (not isinstance(style.other, str) or not style.other):
        raise ConfigurationError(f"beacon {owner!r}: the shared beacon name must be a non-empty string")


def shared_with(style: BeaconStyle | None) -> str | None:
    """The beacon whose key a Shared or SharedSet beacon uses."""
    return style.other if isinstance(style, (Shared, SharedSet)) else None


def is_set(style: BeaconStyle | None) -> bool:
    """Whether the beacon is AsSet or SharedSet."""
    return isinstance(style, (AsSet, SharedSet))
