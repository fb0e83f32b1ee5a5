"""Bonds made while ``massagectl pair`` runs are held here, in memory, and written with the
device's record only when the pairing succeeds (docs/pairing.md): a pairing that fails
(the ball was loaded, the known press never came, the link dropped) leaves the
known-devices file as it was, and the bond it had before stays good.

While a pairing holds bonds, the Bumble backend's key store (``device.ble.bonds``) gives no
stored keys either: a pairing always starts from an unencrypted link and makes a fresh
bond, so keys a device no longer has (it was reset, or ``sim ble`` restarted) can never
make ``pair`` fail. No Bumble here: ``device.pairing`` imports this whatever the backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from device.config.known_devices import HostIdentity, normalize_address


@dataclass
class HeldBonds:
    """Bonds made during one pairing: address -> bond dict (as stored in a record), and
    the host identity they were made with."""

    bonds: dict[str, dict[str, Any]] = field(default_factory=dict)
    host: HostIdentity | None = None

    def put(self, address: str, bond: dict[str, Any], host: HostIdentity | None) -> None:
        self.bonds[normalize_address(address)] = bond
        if host is not None:
            self.host = host

    def get(self, address: str) -> dict[str, Any] | None:
        return self.bonds.get(normalize_address(address))

    def discard(self, address: str) -> None:
        self.bonds.pop(normalize_address(address), None)


_held: HeldBonds | None = None


def held() -> HeldBonds | None:
    """The bonds of the pairing in progress in this process, or None."""
    return _held


@contextmanager
def holding_bonds() -> Iterator[HeldBonds]:
    """Hold every bond made inside the block in memory (and hide the stored ones)."""
    global _held
    if _held is not None:
        raise RuntimeError("one pairing at a time in a process")
    _held = HeldBonds()
    try:
        yield _held
    finally:
        _held = None
