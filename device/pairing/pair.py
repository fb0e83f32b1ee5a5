"""Pairing a BLE device: connect, bond, read Device Information, tare, optionally a two-point
calibration against a known force, and remember it all in the known-devices file.

No printing here: ``say(text)`` tells the person what to do (the CLI prints it), so that a
test drives the same procedure with a scripted press from the simulated ball's scenario.

Tare: the ball must lie still with nothing on it; the device zeroes itself on the mean of
its last 64 samples and reports the new offset. The host checks that the window it saw
was quiet (``dsp.calibration.check_tare_window``) and within ``PAIR_TARE_MAX_SHIFT_N`` of
the factory zero (DeviceInfo) and of the stored one, and the zero the device reports
against the same bound (``dsp.calibration.zero_shift_n``); until both hold it tells the
person to let go and tries again, for a bounded time, then gives up storing nothing.

Nothing is written until the pairing succeeds: the new bond's keys are held in memory
(``device.ble.pending_bonds``) and written with the record in one write.

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
from typing import TYPE_CHECKING

import numpy as np

from device.ble.pending_bonds import HeldBonds, holding_bonds
from device.config.known_devices import KnownDevice, KnownDevices, StoredCalibration, now_iso
from device.errors import DeviceTimeoutError, UsageError
from device.links.ble import BleLink, BondResult
from device.links.drivers.base import SensorLink
from device.session.device_session import DeviceSession
from dsp.calibration import (
    PAIR_TARE_MAX_SHIFT_N,
    PLATEAU_S,
    Calibration,
    CalibrationError,
    ImplausibleScaleError,
    check_tare_window,
    plateau_mean,
    two_point_calibration,
    zero_shift_n,
)

if TYPE_CHECKING:
    from device.links.sensor_ble import SensorBleLink

#: The device zeroes on its last 64 samples; the host checks the same number it last saw.
TARE_WINDOW = 64
#: How long ``pair`` waits (device seconds) for the ball to lie still and unloaded.
DEFAULT_TARE_TIMEOUT_S = 30.0
#: While it waits, the same guidance is repeated this often (device seconds).
SAY_AGAIN_S = 5.0
DEFAULT_PRESS_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class WaitReading:
    """One look at the device during the guided wait for an unloaded, still device (the
    tare's wait; any force device that must be zeroed empty waits the same way): what it
    reads against its factory zero, whether that is good enough, and the time left."""

    #: "loaded" (over the bound), "moving" (not still), "zeroed" (pressed as it zeroed),
    #: "ready" (unloaded and still: zeroing now)
    state: str
    force_n: float
    #: device seconds left before the wait gives up
    left_s: float
    timeout_s: float


@dataclass
class PairResult:
    device: KnownDevice
    bond: BondResult
    offset_counts: int


async def pair_device(
    link: BleLink | SensorBleLink,
    *,
    known_force_n: float | None = None,
    press_timeout_s: float = DEFAULT_PRESS_TIMEOUT_S,
    tare_timeout_s: float = DEFAULT_TARE_TIMEOUT_S,
    say: Callable[[str], None] = lambda _text: None,
    store: KnownDevices | None = None,
    watch: Callable[[WaitReading], None] = lambda _reading: None,
) -> PairResult:
    """Pair the device behind ``link`` (not yet open) and store it; returns what was stored.
    Waits are in device time on the link's time base (``link.timebase``). ``watch`` gets a
    live reading and the time left at every look during the wait for the tare (a face shows
    it: a line rewritten on a terminal, a countdown line now and then without one)."""
    if known_force_n is not None and not known_force_n > 0:
        raise UsageError("--known-n must be a positive force in newtons")
    if not tare_timeout_s > 0:
        raise UsageError("--tare-timeout must be a positive number of seconds")
    store = store or KnownDevices()
    old = store.find(link.url.target)  # a corrupt file stops us before we touch the device
    # Nothing is written before the pairing succeeds: a new bond is held in memory until
    # then, and the stored keys are not used (a device that lost its half of the bond
    # would refuse them), so a failure leaves the file, and the old bond, as they were.
    with holding_bonds() as held:
        record, bond, offset = await _pair(
            link, old, store, held, known_force_n, press_timeout_s, tare_timeout_s, say, watch
        )
        store.put(record, host=held.host)
    return PairResult(store.find(record.address) or record, bond, offset)


async def _pair(
    link: BleLink | SensorBleLink,
    old: KnownDevice | None,
    store: KnownDevices,
    held: HeldBonds,
    known_force_n: float | None,
    press_timeout_s: float,
    tare_timeout_s: float,
    say: Callable[[str], None],
    watch: Callable[[WaitReading], None],
) -> tuple[KnownDevice, BondResult, int]:
    """Everything but the final write: the record to store, the bond, the device's zero."""
    if old is not None and old.bond is not None:
        say(f"{old.name}: a new bond replaces the stored one if pairing succeeds")
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
        window = RawWindow(session)
        device_cal = session.calibration
        assert device_cal is not None and session.info is not None
        known = (store.find(link.address) if link.address else None) or old
        references = _references(device_cal, known.calibration if known else None, say)
        offset = await wait_unloaded_and_tare(
            session, window, references, tare_timeout_s, say, watch
        )
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
        # Device Information strings: the ball's (a sensor's protocol has none we read)
        strings = link.device_info if isinstance(link, BleLink) else {}
        record = KnownDevice(
            name=link.name or link.address or link.url.target,
            address=link.address or link.url.target,
            model=strings.get("model", "") or info.model,
            serial_number=strings.get("serial_number", "") or info.serial_number,
            firmware=strings.get("firmware", "") or info.firmware,
            manufacturer=strings.get("manufacturer", ""),
            calibration=stored,
            bond_note="" if bond.bonded else bond.note,
            paired_at=now_iso(),
            backend=link.backend,
            kind=link.driver.kind if isinstance(link, SensorLink) else "ball",
        )
        if bond.bonded and bond.encrypted is None:
            record.bond = {"keys": None, "managed_by": "os", "backend": link.backend}
        elif bond.bonded:
            record.bond = held.get(record.address)  # the new keys, written with the record
    return record, bond, offset


def _references(
    device_cal: Calibration, stored: StoredCalibration | None, say: Callable[[str], None]
) -> list[Calibration]:
    """The zeros a new tare is checked against: the device's factory calibration
    (DeviceInfo) and the one stored at the last pairing, unless that one is itself beyond
    the bound from the factory zero (a record from before the bound existed): it is
    replaced, never a reason to refuse every later pairing."""
    references = [device_cal]
    if stored is not None:
        shift_n = zero_shift_n(stored.offset_counts, references)
        if shift_n <= PAIR_TARE_MAX_SHIFT_N:
            references.append(stored.to_calibration())
        else:
            say(
                f"the stored zero is {shift_n:.1f} N off the device's factory zero: it is "
                "not trusted and will be replaced"
            )
    return references


async def wait_unloaded_and_tare(
    session: DeviceSession,
    window: RawWindow,
    references: list[Calibration],
    timeout_s: float,
    say: Callable[[str], None],
    watch: Callable[[WaitReading], None] = lambda _reading: None,
) -> int:
    """Zero the device once its last samples are still and within PAIR_TARE_MAX_SHIFT_N of
    every reference zero, and check the zero it reports against the same bound; until
    then guide the person (let go, keep still) and keep trying, for ``timeout_s`` device
    seconds. Returns the device's new zero; raises UsageError (nothing stored) on time."""
    said: tuple[str, float] | None = None
    problem = "no samples arrived"

    def guide(key: str, text: str) -> None:
        nonlocal said
        if said is None or said[0] != key or window.t_s - said[1] >= SAY_AGAIN_S:
            say(text)
            said = (key, window.t_s)

    bound = f"{PAIR_TARE_MAX_SHIFT_N:g} N"
    started_s = session.timebase.now_s()

    def show(state: str, force_n: float) -> None:
        left_s = max(0.0, timeout_s - (session.timebase.now_s() - started_s))
        watch(WaitReading(state, force_n, left_s, timeout_s))

    try:
        async with session.timebase.timeout(timeout_s):
            while True:
                await window.collect_fresh(TARE_WINDOW)
                raw = window.raw(TARE_WINDOW)
                mean_n = float(np.mean(references[0].to_newtons(raw)))
                try:
                    load_n = max((check_tare_window(raw, ref) for ref in references), key=abs)
                except CalibrationError as exc:
                    problem = f"it kept moving ({exc})"
                    show("moving", mean_n)
                    guide("moving", "Keep the ball still: let it lie with nothing on it.")
                    continue
                if abs(load_n) > PAIR_TARE_MAX_SHIFT_N:
                    show("loaded", load_n)
                    problem = (
                        f"it read {load_n:.1f} N, more than {bound} from its factory zero "
                        "(if nothing was on it, its sensor has drifted that far)"
                    )
                    guide(
                        "loaded",
                        f"The ball reads {load_n:.1f} N: let go of the ball and take "
                        f"everything off it (waiting up to {timeout_s:g} s).",
                    )
                    continue
                show("ready", load_n)
                offset = await session.tare()
                shift_n = zero_shift_n(offset, references)
                if shift_n > PAIR_TARE_MAX_SHIFT_N:
                    # pressed between the window and the Tare: zero again once let go
                    problem = f"it was pressed as it zeroed ({shift_n:.1f} N off)"
                    show("zeroed", shift_n)
                    guide(
                        "zeroed",
                        f"The ball was pressed as it zeroed ({shift_n:.1f} N off): let go of "
                        "the ball; zeroing again.",
                    )
                    continue
                return offset
    except TimeoutError:
        raise UsageError(
            f"no true zero within {timeout_s:g} s: {problem}; let go of the ball, take "
            "everything off it and pair again (nothing was stored)"
        ) from None


def _security_text(bond: BondResult) -> str:
    if bond.encrypted is None:
        return bond.note or "encryption state unknown"
    return "link encrypted" if bond.encrypted else "link NOT encrypted"


class RawWindow:
    """The session's batches as they come, raw counts and device time kept for a while."""

    def __init__(self, session: DeviceSession) -> None:
        self.session = session
        self._batches = session.batches()
        self._raw: deque[np.ndarray] = deque()
        self._t: deque[np.ndarray] = deque()
        self.t_s = 0.0

    async def _next(self) -> int:
        batch = await anext(self._batches)
        self._raw.append(batch.raw_counts)
        self._t.append(batch.t_s)
        self.t_s = float(batch.t_s[-1])
        while sum(len(r) for r in self._raw) > 4 * 2000:
            self._raw.popleft()
            self._t.popleft()
        return len(batch.raw_counts)

    async def collect_fresh(self, n: int) -> None:
        """Wait for ``n`` samples more than there are now."""
        got = 0
        while got < n:
            got += await self._next()

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
