"""Pairing a BLE device: connect, bond, read Device Information, tare, optionally a two-point
calibration against a known force, and remember it all in the known-devices file.

No printing here: ``say(text)`` tells the person what to do (the CLI prints it), so that a
test drives the same procedure with a scripted press from the simulated ball's scenario.

Tare: the ball must lie still with nothing on it; the device zeroes itself on the mean of
its last 64 samples and reports the new offset. The host checks the window it saw was
quiet and unloaded (``dsp.calibration.check_tare_window``) and refuses a tare made while
the ball moved or was pressed.

Two-point (``known_force_n``): the person (or a scenario) presses a known force and holds
it; the host waits for a steady plateau (``PLATEAU_S`` of samples whose spread is small)
clearly above zero (``dsp.calibration.plateau_mean``), then takes its mean counts: scale =
(loaded - zero) / known force (``dsp.calibration.two_point_calibration``). The maths and
their thresholds live in ``dsp``; this module streams, waits and words the answers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from device.config.known_devices import KnownDevice, KnownDevices, StoredCalibration, now_iso
from device.errors import DeviceTimeoutError, UsageError
from device.links.ble import BleLink, BondResult
from device.session.device_session import DeviceSession
from dsp.calibration import (
    PAIR_TARE_MAX_LOAD_N,
    PLATEAU_S,
    Calibration,
    CalibrationError,
    ImplausibleScaleError,
    check_tare_window,
    plateau_mean,
    two_point_calibration,
)

#: Stream the device this long before the tare, so its 64-sample window is full and the
#: host has seen the same window (seconds of device time).
TARE_SETTLE_S = 0.3
DEFAULT_PRESS_TIMEOUT_S = 60.0


@dataclass
class PairResult:
    device: KnownDevice
    bond: BondResult
    offset_counts: int


async def pair_device(
    link: BleLink,
    *,
    known_force_n: float | None = None,
    press_timeout_s: float = DEFAULT_PRESS_TIMEOUT_S,
    say: Callable[[str], None] = lambda _text: None,
    store: KnownDevices | None = None,
) -> PairResult:
    """Pair the device behind ``link`` (not yet open) and store it; returns what was stored.
    Waits are in device time on the link's time base (``link.timebase``)."""
    if known_force_n is not None and not known_force_n > 0:
        raise UsageError("--known-n must be a positive force in newtons")
    store = store or KnownDevices()
    old = store.find(link.url.target)  # a corrupt file stops us before we touch the device
    if old is not None and old.bond is not None:
        # pairing makes a new bond: the old keys must not be tried first (a device that
        # was reset would refuse them and the connect would fail)
        store.delete_bond(old.address)
        say(f"{old.name}: replacing its old bond")
    await link.open()
    try:
        bond = await link.pair()
    except BaseException:
        await link.close()
        raise
    if bond.bonded:
        say(f"bonded with {link.address} ({_security_text(bond)})")
    else:
        say(f"not bonded: {bond.note}; the device is remembered without keys")
    async with DeviceSession(link) as session:
        window = _RawWindow(session)
        say("Tare: let the ball lie still with nothing on it.")
        await window.collect_s(TARE_SETTLE_S)
        device_cal = session.calibration
        assert device_cal is not None and session.info is not None
        try:
            loaded_n = check_tare_window(window.raw(64), device_cal)
        except CalibrationError as exc:
            raise UsageError(
                f"the ball was not still for the tare ({exc}); let it lie unloaded and pair again"
            ) from None
        if abs(loaded_n) > PAIR_TARE_MAX_LOAD_N:
            raise UsageError(
                f"the ball seems loaded ({loaded_n:.1f} N by its own calibration): take "
                "everything off it for the tare and pair again"
            )
        offset = await session.tare()
        say(f"tare: zero at {offset} counts")
        stored = StoredCalibration(device_cal.scale_counts_per_n, float(offset), "tare", now_iso())
        if known_force_n is not None:
            say(
                f"Now press {known_force_n:g} N on the ball (a known weight) and hold it still "
                f"for {PLATEAU_S:g} s; waiting up to {press_timeout_s:g} s."
            )
            loaded = await window.plateau(
                device_cal.with_offset(offset), known_force_n, press_timeout_s
            )
            try:
                two = two_point_calibration(
                    offset,
                    loaded,
                    known_force_n,
                    device_scale_counts_per_n=device_cal.scale_counts_per_n,
                )
            except ImplausibleScaleError as exc:
                raise UsageError(
                    f"{exc}: was the force really {known_force_n:g} N? Pair again."
                ) from None
            ratio = two.scale_counts_per_n / device_cal.scale_counts_per_n
            stored = StoredCalibration(
                two.scale_counts_per_n, float(offset), "two_point", now_iso(), known_force_n
            )
            say(f"two-point: {two.scale_counts_per_n:.2f} counts/N ({ratio:.3f} x the device's)")
            say("Release the ball.")
        info = session.info
        record = KnownDevice(
            name=link.name or link.address or link.url.target,
            address=link.address or link.url.target,
            model=link.device_info.get("model", "") or info.model,
            serial_number=link.device_info.get("serial_number", "") or info.serial_number,
            firmware=link.device_info.get("firmware", "") or info.firmware,
            manufacturer=link.device_info.get("manufacturer", ""),
            calibration=stored,
            bond_note="" if bond.bonded else bond.note,
            paired_at=now_iso(),
            backend=link.backend,
        )
        if bond.bonded and bond.encrypted is None:
            record.bond = {"keys": None, "managed_by": "os", "backend": link.backend}
    store.put(record)
    return PairResult(store.find(record.address) or record, bond, offset)


def _security_text(bond: BondResult) -> str:
    if bond.encrypted is None:
        return bond.note or "encryption state unknown"
    return "link encrypted" if bond.encrypted else "link NOT encrypted"


class _RawWindow:
    """The session's batches as they come, raw counts and device time kept for a while."""

    def __init__(self, session: DeviceSession) -> None:
        self.session = session
        self._batches = session.batches()
        self._raw: deque[np.ndarray] = deque()
        self._t: deque[np.ndarray] = deque()
        self.t_s = 0.0

    async def _next(self) -> None:
        batch = await anext(self._batches)
        self._raw.append(batch.raw_counts)
        self._t.append(batch.t_s)
        self.t_s = float(batch.t_s[-1])
        while sum(len(r) for r in self._raw) > 4 * 2000:
            self._raw.popleft()
            self._t.popleft()

    async def collect_s(self, duration_s: float) -> None:
        start = None
        while start is None or self.t_s - start < duration_s:
            await self._next()
            start = start if start is not None else float(self._t[-1][0])

    def raw(self, n: int) -> np.ndarray:
        return np.concatenate(self._raw)[-n:]

    async def plateau(
        self, calibration: Calibration, known_force_n: float, timeout_s: float
    ) -> float:
        """Mean raw counts of the first steady press near ``known_force_n`` (newtons by
        ``calibration``: the device's scale and the zero just tared)."""
        try:
            async with self.session.timebase.timeout(timeout_s):
                while True:
                    await self._next()
                    loaded = plateau_mean(
                        np.concatenate(self._t),
                        np.concatenate(self._raw),
                        calibration,
                        known_force_n,
                    )
                    if loaded is not None:
                        return loaded
        except TimeoutError:
            raise DeviceTimeoutError(
                f"no steady press of about {known_force_n:g} N within {timeout_s:g} s; "
                "pair again and hold the force still"
            ) from None
