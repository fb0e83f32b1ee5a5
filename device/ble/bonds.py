"""Bonding for the Bumble backend: the host's BLE identity and a Bumble key store that keeps
bonding keys with the device's record in ``known-devices.json`` (``device.config.known_devices``).

Pairing is LE Secure Connections, bonding, Just Works (no MITM protection: the ball has no
display and no buttons, so there is nothing to compare a passkey on; the host says so in the
record: ``authenticated: false``). Bumble's controller does the LE encryption; Bumble's
Security Manager calls the key store when pairing completes, and the client looks up the
keys on every later connect to encrypt the link before anything else is read.

A bond is made between two addresses, so the host keeps one identity (a static random
address and an IRK) in the known-devices file from its first bond on; until then a fresh
one is used per process, and nothing is written for a host that never bonds.
"""

from __future__ import annotations

import secrets
from typing import Any

from bumble.hci import Address
from bumble.keys import KeyStore, PairingKeys
from bumble.pairing import PairingConfig, PairingDelegate

from device.ble import pending_bonds
from device.config.known_devices import HostIdentity, KnownDevices, normalize_address

_session_identity: HostIdentity | None = None


def host_identity() -> HostIdentity:
    """The host's identity: the stored one, else one fresh identity for this process."""
    global _session_identity
    stored = KnownDevices().host_identity()
    if stored is not None:
        return stored
    if _session_identity is None:
        _session_identity = HostIdentity(
            str(Address.generate_static_address()).split("/")[0], secrets.token_bytes(16).hex()
        )
    return _session_identity


def pairing_config(_connection: Any = None) -> PairingConfig:
    """LE Secure Connections, bonding, Just Works (see the module docstring)."""
    return PairingConfig(
        sc=True,
        mitm=False,
        bonding=True,
        delegate=PairingDelegate(io_capability=PairingDelegate.NO_OUTPUT_NO_INPUT),
    )


class KnownDevicesKeyStore(KeyStore):
    """Bumble's key store interface on the known-devices file (address -> PairingKeys).
    While ``massagectl pair`` runs (``pending_bonds.holding_bonds``) it works on the
    pairing's bonds in memory instead, and shows none of the stored ones."""

    def __init__(self, identity: HostIdentity, backend: str, store: KnownDevices | None = None):
        self.identity = identity
        self.backend = backend
        self.store = store or KnownDevices()

    async def update(self, name: str, keys: PairingKeys) -> None:
        ltk = keys.ltk or keys.ltk_central or keys.ltk_peripheral
        bond = {
            "keys": keys.to_dict(),
            "authenticated": bool(ltk and ltk.authenticated),
            "secure_connections": keys.ltk is not None,
            "backend": self.backend,
            "host_address": self.identity.address,
        }
        held = pending_bonds.held()
        if held is not None:
            held.put(name, bond, self.identity)
            return
        self.store.set_bond(name, bond, self.identity)

    async def get(self, name: str) -> PairingKeys | None:
        held = pending_bonds.held()
        if held is not None:
            bond = held.get(name)
            keys = bond["keys"] if bond else None
        else:
            keys = self.store.bond_keys(name)
        return PairingKeys.from_dict(keys) if keys else None

    async def get_all(self) -> list[tuple[str, PairingKeys]]:
        held = pending_bonds.held()
        if held is not None:
            return [(a, PairingKeys.from_dict(b["keys"])) for a, b in held.bonds.items()]
        out = []
        for address in self.store.bonded_addresses():
            keys = self.store.bond_keys(address)
            if keys:
                out.append((address, PairingKeys.from_dict(keys)))
        return out

    async def delete(self, name: str) -> None:
        held = pending_bonds.held()
        if held is not None:
            held.discard(name)
            return
        self.store.delete_bond(normalize_address(name))
