"""A force sensor that speaks its own protocol, behind our link contract.

``SensorDriver`` (one per device kind) is pure decoding and encoding: which characteristics
to subscribe, which bytes start, stop and tare, and what a notification (or advertisement)
means: raw values and, where the device has them, device times. A value that does not decode
(a bad length, an unknown kind) is counted in ``stats``, never raised.

``SensorLink`` is the adapter: it answers the session's protocol v2 messages as a firmware
of this device would (Hello -> a DeviceInfo that says "no motor", SetStream -> the device's
start or stop, Tare -> the device's tare or the host's), and hands each notification's
samples on as ``ForceBatch`` messages (raw counts, device or host time). So the session,
the pipeline, the supervisor and the recorder work unchanged; the calibration (raw per
newton) is the driver's and the pipeline alone converts. A transport subclass (BLE, or the
in-process simulator) moves the bytes.
"""

from __future__ import annotations

import asyncio
import math
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field

from device.errors import LinkClosedError
from device.links.base import Link
from firmware_bridge.messages import (
    MAX_SAMPLES_PER_BATCH,
    PROTOCOL_VERSION,
    Ack,
    DeviceInfo,
    ForceBatch,
    Hello,
    Keepalive,
    Message,
    MotorKind,
    Nack,
    NackCode,
    SetLimit,
    SetStream,
    Status,
    Stop,
    Tare,
    TareResult,
    Vibrate,
)

G = 9.80665
LB_KG = 0.45359237
RAW_MIN, RAW_MAX = -(2**31), 2**31 - 1
#: how many of the latest raw values a host tare averages
HOST_TARE_SAMPLES = 16
#: how long a device tare may take to show in the stream (seconds of the time base)
TARE_SETTLE_S = 0.5


@dataclass
class DriverStats:
    notifications: int = 0
    samples: int = 0
    #: values whose length does not fit their layout
    bad_lengths: int = 0
    #: notifications of a kind the driver does not know
    unknown_kinds: int = 0
    #: values that are not numbers (NaN, inf)
    bad_values: int = 0
    low_power_warnings: int = 0
    #: device-time steps between samples that went backwards or jumped (counted, not fatal)
    errors: list[str] = field(default_factory=list)

    def error(self, what: str) -> None:
        if len(self.errors) < 20:
            self.errors.append(what)


@dataclass(frozen=True)
class Samples:
    """Raw values (counts, i32) and, when the device stamps them, each one's device time
    (µs, u32). ``None``: host time."""

    raw: tuple[int, ...]
    t_us: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Reply:
    """A command response that is not samples (firmware version, battery)."""

    what: str
    value: object


class SensorDriver(ABC):
    kind: str = "?"
    model: str = "?"
    #: the rate the device streams at (Hz, nominal; the stream's own times show the real one)
    rate_hz: int = 80
    #: raw counts per newton, and the raw value at zero force (the calibration)
    scale_counts_per_n: float = 1.0
    offset_counts: int = 0
    #: the unit of the raw value, in words (docs, scan)
    raw_unit: str = "?"
    #: "device" when samples carry the device's time stamps, "host" otherwise
    time_source: str = "host"
    #: the device has its own tare command (else the host tares)
    device_tare: bool = False
    #: GATT: characteristics to subscribe (empty for an advertising-only device)
    notify_uuids: tuple[str, ...] = ()
    service_uuid: str | None = None
    #: an advertising-only device: this long (time-base seconds) without a value is a lost link
    lost_after_s: float | None = None

    def __init__(self) -> None:
        self.stats = DriverStats()
        self.battery_pct: int | None = None
        self.firmware: str = ""

    def start_writes(self) -> list[tuple[str, bytes]]:
        return []

    def stop_writes(self) -> list[tuple[str, bytes]]:
        return []

    def tare_writes(self) -> list[tuple[str, bytes]]:
        return []

    def info_writes(self) -> list[tuple[str, bytes]]:
        """Writes asking for battery and firmware (answers come as ``Reply``)."""
        return []

    @abstractmethod
    def decode(self, char: str, data: bytes) -> list[Samples | Reply]:
        """What one notification (or advertisement) carries; never raises on bad bytes."""


def _i32(value: float) -> int:
    return int(min(max(round(value), RAW_MIN), RAW_MAX))


class SensorLink(Link):
    """The adapter (module docstring). Subclasses move the bytes: ``_connect``, ``_write``
    (char, bytes), ``_disconnect``, and call ``_on_value(char, data)`` for each
    notification or advertisement."""

    def __init__(self, url, driver: SensorDriver, *, timebase=None) -> None:
        super().__init__(url, timebase=timebase)
        self.driver = driver
        self.max_samples_per_batch = MAX_SAMPLES_PER_BATCH
        self._dev_seq = 0
        self._batch_seq = 0
        self._streaming = False
        self._recent_raw: deque[int] = deque(maxlen=HOST_TARE_SAMPLES)
        self._last_host_t_us: int | None = None
        self._new_samples = asyncio.Event()
        #: the rate measured from the stream's own times (device or host), Hz
        self.measured_rate_hz: float | None = None
        self._rate_window: deque[float] = deque(maxlen=81)
        self._watchdog: asyncio.Task | None = None
        self._last_value_s = 0.0

    # ---- transport (subclasses) -------------------------------------------------------------

    @abstractmethod
    async def _connect(self) -> None: ...

    @abstractmethod
    async def _write(self, char: str, data: bytes) -> None: ...

    @abstractmethod
    async def _disconnect(self) -> None: ...

    def _now_s(self) -> float:
        """Host receive time on the run's time base (seconds)."""
        return self.timebase.now_s()

    async def _open(self) -> None:
        await self._connect()
        for char, data in self.driver.info_writes():
            await self._write(char, data)
        if self.driver.lost_after_s is not None:
            self._last_value_s = self._now_s()
            self._watchdog = asyncio.get_running_loop().create_task(
                self._watch(self.driver.lost_after_s), name="sensor-watchdog"
            )

    async def _watch(self, lost_after_s: float) -> None:
        while True:
            await asyncio.sleep(min(1.0, lost_after_s / 10) / self.timebase.speed)
            if self._now_s() - self._last_value_s > lost_after_s:
                self.lost(f"no advertisement for {lost_after_s:g} s (the scale is off or away)")
                return

    async def _close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
        await self._disconnect()

    # ---- our protocol in --------------------------------------------------------------------

    def _reply(self, cls, **kw) -> None:
        seq = self._dev_seq
        self._dev_seq = (self._dev_seq + 1) & 0xFFFF
        self._deliver(cls(seq=seq, **kw))

    def device_info(self) -> DeviceInfo:
        d = self.driver
        return DeviceInfo(
            model=d.model[:16],
            firmware=(d.firmware or "?")[:8],
            serial_number=(getattr(self, "name", "") or d.kind)[:16],
            protocol_version=PROTOCOL_VERSION,
            rate_min_hz=d.rate_hz,
            rate_max_hz=d.rate_hz,
            motor_kind=MotorKind.NONE,
            cal_scale_counts_per_n=d.scale_counts_per_n,
            cal_offset_counts=d.offset_counts,
            limit_max_mn=0,
        )

    async def _send(self, msg: Message) -> None:
        if isinstance(msg, Keepalive):
            return
        if isinstance(msg, Hello):
            self._reply(DeviceInfo, **_fields(self.device_info()))
            if self.driver.battery_pct is not None:
                self._reply(Status, battery_pct=self.driver.battery_pct)
        elif isinstance(msg, SetStream):
            writes = self.driver.start_writes() if msg.rate_hz else self.driver.stop_writes()
            self._streaming = bool(msg.rate_hz)
            await self._write_all(writes)
            self._reply(Ack, cmd_seq=msg.seq, cmd_type=msg.TYPE)
        elif isinstance(msg, Stop):
            # no motor: nothing to stop, and nothing pretends otherwise (the host sends none)
            self._reply(Ack, cmd_seq=msg.seq, cmd_type=msg.TYPE)
        elif isinstance(msg, Vibrate):
            if msg.intensity_permille == 0:
                self._reply(Ack, cmd_seq=msg.seq, cmd_type=msg.TYPE)
            else:
                self._reply(Nack, cmd_seq=msg.seq, cmd_type=msg.TYPE, code=NackCode.OUT_OF_RANGE)
        elif isinstance(msg, SetLimit):
            # no firmware to enforce a limit: refused rather than pretended
            self._reply(Nack, cmd_seq=msg.seq, cmd_type=msg.TYPE, code=NackCode.UNKNOWN_TYPE)
        elif isinstance(msg, Tare):
            await self._tare(msg)
        else:
            self._reply(Nack, cmd_seq=msg.seq, cmd_type=msg.TYPE, code=NackCode.UNKNOWN_TYPE)

    async def _write_all(self, writes: list[tuple[str, bytes]]) -> None:
        for char, data in writes:
            await self._write(char, data)

    async def _tare(self, msg: Tare) -> None:
        if not self._streaming or not self._recent_raw:
            self._reply(Nack, cmd_seq=msg.seq, cmd_type=msg.TYPE, code=NackCode.NOT_READY)
            return
        if self.driver.device_tare:
            # the device zeroes its own output: the raw values read the offset at rest again
            await self._write_all(self.driver.tare_writes())
            await self._wait_samples(2)
            offset = self.driver.offset_counts
        else:
            offset = round(sum(self._recent_raw) / len(self._recent_raw))
        self._reply(TareResult, cmd_seq=msg.seq, offset_counts=offset)

    async def _wait_samples(self, n: int) -> None:
        loop_deadline = self._now_s() + TARE_SETTLE_S
        seen = 0
        while seen < n and self._now_s() < loop_deadline:
            self._new_samples.clear()
            try:
                await asyncio.wait_for(self._new_samples.wait(), 0.2)
            except TimeoutError:
                continue
            seen += 1

    # ---- the device's values in -----------------------------------------------------------

    def _on_value(self, char: str, data: bytes) -> None:
        self._last_value_s = self._now_s()
        try:
            items = self.driver.decode(char, bytes(data))
        except Exception as exc:  # noqa: BLE001 - a driver bug must not kill the link
            self.driver.stats.error(f"{type(exc).__name__}: {exc}")
            self.stats.bad_frames += 1
            return
        for item in items:
            if isinstance(item, Reply):
                if item.what == "battery_pct":
                    self._reply(Status, battery_pct=int(item.value))  # type: ignore[call-overload]
                elif item.what == "low_power":
                    self._reply(Status, battery_pct=min(self.driver.battery_pct or 5, 5))
                continue
            if self._streaming:
                self._batches_from(item)

    def _batches_from(self, s: Samples) -> None:
        now = self._now_s()
        rate = self.driver.rate_hz
        raw = [_i32(v) for v in s.raw]
        if not raw:
            return
        self._recent_raw.extend(raw)
        if s.t_us is not None:
            times = list(s.t_us)
        else:
            # host time: the last sample arrived now, the others one period apart before it,
            # never before the previous batch's last sample
            period_us = 1e6 / rate
            end_us = round(now * 1e6)
            start = end_us - round(period_us * (len(raw) - 1))
            if self._last_host_t_us is not None:
                start = max(start, self._last_host_t_us + round(period_us))
            times = [start + round(i * period_us) for i in range(len(raw))]
            self._last_host_t_us = times[-1]
            times = [t % 2**32 for t in times]
        for t in times:
            self._rate_window.append(t / 1e6)
        if len(self._rate_window) >= 9:
            span = (self._rate_window[-1] - self._rate_window[0]) % 2**32
            if span > 0:
                self.measured_rate_hz = (len(self._rate_window) - 1) / span
        # one ForceBatch per run of samples; the device's own stamps when it has them
        for i in range(0, len(raw), MAX_SAMPLES_PER_BATCH):
            chunk = raw[i : i + MAX_SAMPLES_PER_BATCH]
            seq = self._batch_seq
            self._batch_seq = (self._batch_seq + 1) & 0xFFFF
            self._deliver(
                ForceBatch(seq=seq, t_us=times[i] % 2**32, rate_hz=rate, samples=tuple(chunk))
            )
        self.driver.stats.samples += len(raw)
        self._new_samples.set()

    def lost(self, why: str) -> None:
        self._fail(LinkClosedError(f"{self.url}: {why}"))


def _fields(msg: Message) -> dict:
    from dataclasses import fields

    return {f.name: getattr(msg, f.name) for f in fields(msg) if f.name != "seq"}


def finite(x: float) -> bool:
    return math.isfinite(x)
