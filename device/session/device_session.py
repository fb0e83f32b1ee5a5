"""A device session: handshake, streaming, keepalive, command replies, counters.

The session owns a link. It greets the device (Hello -> DeviceInfo), starts the stream,
sends a keepalive every ``KEEPALIVE_S`` of device time (on the link's time base, which the
session and everything above it share: ``session.timebase``), matches Ack/Nack/
TareResult to the commands that caused them, unwraps device time and counts sequence gaps.
Batches come out of ``batches()`` as ``SampleBatch`` objects with device and host times side
by side.

Calibration: the session only hands out the *initial* calibration (``calibration``: the one
stored at pairing, else the factory one from DeviceInfo) and never changes it. The force
pipeline (``dsp.pipeline.ForcePipeline``) owns the calibration in use from there on: whoever
calls ``tare()`` hands the offset it returns to ``pipeline.apply_device_tare``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import numpy as np

from device.errors import (
    DeviceDataError,
    DeviceRefusedError,
    DeviceTimeoutError,
    LinkClosedError,
    MassagectlError,
    UsageError,
)
from device.links.base import Link
from device.screening.gate import ScreeningRefused, ScreeningResult, ensure_screened
from device.timebase import TimeBase
from dsp.calibration import Calibration
from dsp.clock import DeviceClock
from firmware_bridge.messages import (
    MAX_SAMPLES_PER_BATCH,
    PATTERNS_VERSION,
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
    PatternDefine,
    PlayPattern,
    SetLimit,
    SetStream,
    Status,
    StatusFlags,
    Stop,
    Tare,
    TareResult,
    Vibrate,
)

#: The debug log (``--log FILE``): links, commands sent, replies, faults.
log = logging.getLogger("massagectl.session")
HANDSHAKE_TIMEOUT_S = 2.0
#: The whole budget of one command (loop seconds): COMMAND_ATTEMPTS sends of the same message
#: (same seq), each waited on for COMMAND_TIMEOUT_S / COMMAND_ATTEMPTS. A version 2 device
#: answers a repeat with its first reply and acts once, so a lost Ack costs one retry.
COMMAND_TIMEOUT_S = 1.0
COMMAND_ATTEMPTS = 5
#: A Stop is resent sooner, in the same 1 s budget: every 50 ms (20 attempts). Each lost
#: Stop or Ack cost 0.2 s of motor before; over a link losing 20 % of frames both ways a
#: Stop that needed a resend (a third of them) missed the 0.2 s budget.
STOP_ATTEMPTS = 20
#: A batch this many sequence numbers behind the newest one is late (reordered on the way)
#: or a duplicate: dropped and counted. Further behind, it counts as a (huge) forward gap.
REORDER_WINDOW = 16
DEFAULT_RATE_HZ = 1000
DEFAULT_SAMPLES_PER_BATCH = 10
#: A batch holds at most this much signal (or one sample): at slow rates the stale-stream
#: rule (3 batch periods) and the detection delay stay short.
MAX_BATCH_S = 0.02


def batch_size_for(rate_hz: int, asked: int = DEFAULT_SAMPLES_PER_BATCH) -> int:
    """Samples per batch at ``rate_hz``: ``asked``, at most max(1 sample, MAX_BATCH_S)."""
    return max(1, min(asked, int(MAX_BATCH_S * rate_hz + 1e-9)))


def rate_for(info: DeviceInfo, asked: int | None) -> int:
    """The stream rate: the one ``asked``, else DEFAULT_RATE_HZ brought into the rates the
    device offers (a sensor whose ADC runs only at 80 Hz streams at 80 Hz)."""
    if asked is not None:
        return asked
    return min(max(DEFAULT_RATE_HZ, info.rate_min_hz), info.rate_max_hz)


@dataclass(frozen=True)
class SampleBatch:
    """One ForceBatch as the device sent it: raw counts and their times. Newtons come from
    the force pipeline (``dsp.pipeline.ForcePipeline.on_batch``), the one place that converts."""

    seq: int
    #: sequence numbers missed right before this batch
    gap: int
    #: device time of each sample, seconds since the session's first sample (unwrapped)
    t_s: np.ndarray
    #: host receive time (time.monotonic, seconds)
    t_host_s: float
    rate_hz: int
    raw_counts: np.ndarray
    #: the device clock jumped right before this batch by this much (s, negative: back);
    #: ``t_s`` does not show it (it continues where the sequence puts it): 0.0 for none
    clock_jump_s: float = 0.0


@dataclass
class SessionCounters:
    batches: int = 0
    samples: int = 0
    seq_gaps: int = 0
    missed_batches: int = 0
    nacks: int = 0
    #: batches received twice (same seq): dropped
    duplicate_batches: int = 0
    #: batches that came after a newer one (reordered on the way): dropped, their data is
    #: part of a gap already counted
    late_batches: int = 0
    #: jumps of the device clock against the batch sequence (``dsp.clock.DeviceClock``)
    clock_jumps: int = 0
    #: commands sent (first attempts) and repeats of a command whose answer did not come
    commands_sent: int = 0
    commands_retried: int = 0
    #: commands that got no answer within their whole budget
    commands_unanswered: int = 0


def no_motor_message(info: DeviceInfo | None) -> str:
    model = (info.model if info is not None else "") or "this device"
    return (
        f"{model} has no motor: it measures force only (massagectl watches the pressure and "
        "raises the alarm, but cannot vibrate)"
    )


def check_device_info(info: DeviceInfo, url: object, *, uses_scale: bool = True) -> None:
    """Raise DeviceDataError for a DeviceInfo the host cannot work with: a calibration
    that is not finite (or 0 when the session converts with it: ``uses_scale``), or a
    rate range that is empty."""
    scale = info.cal_scale_counts_per_n
    if not math.isfinite(scale) or (uses_scale and scale == 0):
        raise DeviceDataError(
            f"{url}: the device reports a calibration scale of {scale!r} counts/N: it needs "
            "calibrating (massagectl pair) or servicing"
        )
    if not 1 <= info.rate_min_hz <= info.rate_max_hz:
        raise DeviceDataError(
            f"{url}: the device reports stream rates {info.rate_min_hz}-{info.rate_max_hz} Hz"
        )


def check_force_batch(batch: ForceBatch, url: object) -> None:
    """Raise DeviceDataError for a batch whose sample times cannot be known (rate 0)."""
    if batch.rate_hz <= 0:
        raise DeviceDataError(
            f"{url}: the device sent a force batch at {batch.rate_hz} Hz (seq {batch.seq}): "
            "its sample times cannot be known"
        )


def check_stream_options(
    rate_hz: int, samples_per_batch: int, info: DeviceInfo | None = None
) -> None:
    """Raise UsageError for a stream the protocol, or the device (its DeviceInfo), cannot do.
    Rate 0 would stop the stream: the session would wait for batches forever."""
    if not 1 <= samples_per_batch <= MAX_SAMPLES_PER_BATCH:
        raise UsageError(
            f"{samples_per_batch} samples per batch: must be 1-{MAX_SAMPLES_PER_BATCH}"
        )
    if rate_hz <= 0:
        raise UsageError(f"a stream rate of {rate_hz} Hz: must be positive")
    if info is not None and not info.rate_min_hz <= rate_hz <= info.rate_max_hz:
        raise UsageError(
            f"{info.model or 'the device'} streams at {info.rate_min_hz}-{info.rate_max_hz} Hz, "
            f"not {rate_hz} Hz"
        )


class DeviceSession:
    """Use as ``async with DeviceSession(link) as s: async for batch in s.batches(): ...``"""

    def __init__(
        self,
        link: Link,
        *,
        rate_hz: int | None = None,
        samples_per_batch: int | None = None,
        calibration: Calibration | None = None,
    ) -> None:
        check_stream_options(
            DEFAULT_RATE_HZ if rate_hz is None else rate_hz,
            DEFAULT_SAMPLES_PER_BATCH if samples_per_batch is None else samples_per_batch,
        )
        self.link = link
        #: None: the device's own (DEFAULT_RATE_HZ within its range), fixed at ``start()``
        self._rate_asked = rate_hz
        self.rate_hz = DEFAULT_RATE_HZ if rate_hz is None else rate_hz
        #: None: DEFAULT_SAMPLES_PER_BATCH, at most max(1 sample, MAX_BATCH_S) at the rate
        #: (fixed at ``start()``); a number asked for is kept (within the link's limit)
        self._batch_asked = samples_per_batch
        self.samples_per_batch = (
            DEFAULT_SAMPLES_PER_BATCH if samples_per_batch is None else samples_per_batch
        )
        #: The run's time base (from the link): speed, host timers, device time.
        self.timebase: TimeBase = link.timebase
        self.info: DeviceInfo | None = None
        self.status: Status | None = None
        self._calibration = calibration
        self.counters = SessionCounters()
        self.clock = DeviceClock()
        #: The screening that cleared this session for vibration (``clear_for_vibration``):
        #: without one, a Vibrate above 0 to a real device is refused here, below every face.
        self.screening: ScreeningResult | None = None
        self._vibration_cleared = link.is_simulated
        self._cmd_seq = 0
        self._pending: dict[int, asyncio.Future] = {}
        #: the limit (mN) the device acknowledged, while no Status has shown it tripped and
        #: no Nack(NO_LIMIT) said it was lost: the same SetLimit is not sent again
        self._limit_mn_acked: int | None = None
        self._batches: asyncio.Queue = asyncio.Queue()
        self._info_waiter: asyncio.Future[DeviceInfo] | None = None
        self._last_batch_seq: int | None = None
        #: the sequence numbers of the last batches handed out (to tell duplicates from late)
        self._recent_seqs: deque[int] = deque(maxlen=REORDER_WINDOW + 1)
        self._tasks: list[asyncio.Task] = []
        self._closed = False

    @property
    def calibration(self) -> Calibration | None:
        """The initial calibration: the one given (stored at pairing), else the device's
        factory one from DeviceInfo (None until ``start()``). It never changes during the
        session; the force pipeline built from it owns the calibration in use."""
        return self._calibration

    # ---- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> DeviceSession:
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def _link_send(self, msg: Message) -> None:
        """Every message this session sends goes here: the debug log (``--log``) gets each
        but the keepalives."""
        if not isinstance(msg, Keepalive):
            log.debug("%s send %s", self.link.url, msg)
        await self.link.send(msg)

    async def start(self) -> None:
        log.info("%s opening (%s link)", self.link.url, self.link.kind)
        await self.link.open()
        log.info("%s open", self.link.url)
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._read_loop(), name="session-reader"))
        self._info_waiter = loop.create_future()
        try:
            # a Hello the device refuses to take (e.g. it wants an encrypted link) must not
            # leave the link open behind a failed start
            await self.send(Hello(seq=self._next_seq()))
            self.info = await asyncio.wait_for(self._info_waiter, HANDSHAKE_TIMEOUT_S)
            if not PROTOCOL_VERSION <= self.info.protocol_version <= PATTERNS_VERSION:
                raise self._version_error(self.info.protocol_version)
        except TimeoutError:
            await self.close()
            if self.link.stats.last_wrong_version is not None:
                raise self._version_error(self.link.stats.last_wrong_version) from None
            raise DeviceTimeoutError(
                f"{self.link.url}: no answer to Hello within {HANDSHAKE_TIMEOUT_S:g} s "
                "(is this a massagectl device?)"
            ) from None
        except BaseException:
            await self.close()
            raise
        if self._calibration is None:
            self._calibration = Calibration(
                self.info.cal_scale_counts_per_n, self.info.cal_offset_counts
            )
        self._tasks.append(loop.create_task(self._keepalive_loop(), name="session-keepalive"))
        self.rate_hz = rate_for(self.info, self._rate_asked)
        if self._batch_asked is None:
            self.samples_per_batch = batch_size_for(self.rate_hz)
        self.samples_per_batch = min(self.samples_per_batch, self.link.max_samples_per_batch)
        try:
            check_stream_options(self.rate_hz, self.samples_per_batch, self.info)
            await self.command(
                SetStream(rate_hz=self.rate_hz, samples_per_batch=self.samples_per_batch)
            )
        except BaseException:
            # a device that cannot or will not stream as asked: no session, nothing left open
            await self.close()
            raise

    def _version_error(self, version: int) -> DeviceRefusedError:
        return DeviceRefusedError(
            f"{self.link.url}: the device speaks protocol version {version}; this massagectl "
            f"speaks versions {PROTOCOL_VERSION}-{PATTERNS_VERSION} only (update the device's "
            "firmware)",
            NackCode.BAD_VERSION,
        )

    async def close(self) -> None:
        """Stop the motor and the stream, then close the link. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        log.info("%s closing", self.link.url)
        try:
            for msg in (Stop(seq=self._next_seq()), SetStream(seq=self._next_seq())):
                try:
                    await self._link_send(msg)
                except MassagectlError:
                    # the link is gone or failing: the firmware's deadman stops the motor
                    break
        finally:
            # whatever happened above or to our tasks (a keepalive that died of a link
            # error), the tasks end and the link is closed: nothing leaks
            tasks, self._tasks = self._tasks, []
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(LinkClosedError(f"{self.link.url}: session closed"))
                    fut.exception()
            await self.link.close()

    # ---- commands -------------------------------------------------------------------------

    def _next_seq(self) -> int:
        seq = self._cmd_seq
        self._cmd_seq = (self._cmd_seq + 1) & 0xFFFF
        return seq

    def clear_for_vibration(self, screening: ScreeningResult | None) -> None:
        """Hand in the screening that allows vibration: a real device needs a passed screening
        by a person (``ensure_screened``; raises ``ScreeningRefused`` otherwise). A simulated
        device needs none, but a refused screening still refuses."""
        ensure_screened(screening, device_is_simulated=self.link.is_simulated)
        self.screening = screening
        self._vibration_cleared = True

    @property
    def vibration_cleared(self) -> bool:
        """A simulated device, or ``clear_for_vibration`` accepted a screening."""
        return self._vibration_cleared

    def _check_clearance(self, msg: Message) -> None:
        on = (isinstance(msg, Vibrate) and msg.intensity_permille > 0) or (
            isinstance(msg, PlayPattern) and msg.intensity_permille > 0 and msg.cap_permille > 0
        )
        if on and not self._vibration_cleared:
            raise ScreeningRefused(
                f"{self.link.url}: no vibration on a real device without a passed screening",
                "Answer the screening questions first",
            )

    async def send(self, msg: Message) -> None:
        """Send without waiting for an answer."""
        self._check_clearance(msg)
        await self._link_send(msg)

    async def command(self, msg: Message, timeout_s: float = COMMAND_TIMEOUT_S) -> Message:
        """Send ``msg`` with a fresh sequence number and wait for its Ack (or TareResult),
        sending the very same message again (same seq) up to COMMAND_ATTEMPTS times in
        ``timeout_s`` while no answer comes: the device answers a repeat with its first reply
        and acts once. A Nack raises DeviceRefusedError; no answer within the whole budget
        raises DeviceTimeoutError."""
        self._check_clearance(msg)
        msg = replace(msg, seq=self._next_seq())
        reply = await self._exchange(msg, timeout_s)
        if isinstance(reply, Nack):
            self.counters.nacks += 1
            code = NackCode(reply.code).name if reply.code in NackCode._value2member_map_ else "?"
            raise DeviceRefusedError(f"device refused {type(msg).__name__}: {code}", reply.code)
        return reply

    async def _exchange(self, msg: Message, timeout_s: float) -> Message:
        """Send ``msg`` (numbered already) until its answer comes, within ``timeout_s``."""
        reply = await self._answer(msg, timeout_s)
        if reply is None:
            raise DeviceTimeoutError(
                f"{self.link.url}: no answer to {type(msg).__name__} within {timeout_s:g} s "
                f"({COMMAND_ATTEMPTS} attempts)"
            )
        return reply

    async def _answer(
        self,
        msg: Message,
        timeout_s: float,
        *,
        fut: asyncio.Future[Message] | None = None,
        attempts: int = COMMAND_ATTEMPTS,
    ) -> Message | None:
        """The answer to ``msg``, sending it (again, with the same seq) up to ``attempts``
        times within ``timeout_s``; None when none came. ``fut``: the first attempt went out
        already, with this future waiting for its answer."""
        already_sent = fut is not None
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            self._pending[msg.seq] = fut
        attempt_s = timeout_s / attempts
        self.counters.commands_sent += 1
        try:
            for attempt in range(attempts):
                if attempt:
                    self.counters.commands_retried += 1
                if attempt or not already_sent:
                    await self._link_send(msg)
                done, _ = await asyncio.wait({fut}, timeout=attempt_s)
                if done:
                    return fut.result()
        finally:
            self._pending.pop(msg.seq, None)
        self.counters.commands_unanswered += 1
        return None

    async def stop_motor(self) -> None:
        """Stop goes straight out: no waiting on anything else. Its Ack is awaited in the
        background, and the same Stop sent again while it does not come; when no answer comes
        within the command budget the stream ends with that error (the run fails closed, and
        a link that is gone lets the firmware's deadman stop the motor)."""
        msg = Stop(seq=self._next_seq())
        # waited for before it goes out: an Ack that comes back at once (before the
        # confirmation below runs) is not lost, which cost every Stop a resend
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[msg.seq] = fut
        try:
            await self._link_send(msg)
        except BaseException:
            self._pending.pop(msg.seq, None)
            raise
        self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks.append(
            asyncio.get_running_loop().create_task(
                self._confirm_stop(msg, fut), name="session-stop"
            )
        )

    async def _confirm_stop(self, msg: Stop, fut: asyncio.Future[Message]) -> None:
        try:
            reply = await self._answer(msg, COMMAND_TIMEOUT_S, fut=fut, attempts=STOP_ATTEMPTS)
        except LinkClosedError:
            return  # the reader reports the lost link
        if reply is None:
            self._batches.put_nowait(
                LinkClosedError(
                    f"{self.link.url}: no answer to Stop within {COMMAND_TIMEOUT_S:g} s "
                    f"({STOP_ATTEMPTS} attempts)"
                )
            )

    async def vibrate(self, intensity_pct: float, frequency_hz: int = 0, **kw) -> None:
        """Vibrate at ``intensity_pct`` (0-100, clamped); a NaN or infinite one is refused."""
        if not math.isfinite(intensity_pct):
            raise UsageError(
                f"vibration intensity must be a finite percentage, got {intensity_pct}"
            )
        permille = round(max(0.0, min(100.0, intensity_pct)) * 10)
        if permille > 0 and not self.has_motor:
            raise UsageError(no_motor_message(self.info))
        await self.command(Vibrate(intensity_permille=permille, frequency_hz=frequency_hz, **kw))

    @property
    def plays_patterns(self) -> bool:
        """The device reports protocol version 3: it stores and plays patterns itself
        (PatternDefine, PlayPattern); a version 2 device gets streamed intensities."""
        return self.info is not None and self.info.protocol_version >= PATTERNS_VERSION

    async def define_pattern(
        self, pattern_id: int, steps: tuple[tuple[int, int], ...], loop_from: int = 0
    ) -> None:
        """Store a pattern on a version 3 device: steps of (level_permille, duration_ms)."""
        await self.command(PatternDefine(pattern_id=pattern_id, loop_from=loop_from, steps=steps))

    async def play_pattern(
        self, pattern_id: int, intensity_pct: float, cap_pct: float, frequency_hz: int = 0
    ) -> None:
        """Play stored pattern ``pattern_id``: each step at min(level * intensity, cap)."""
        for value in (intensity_pct, cap_pct):
            if not math.isfinite(value):
                raise UsageError(f"vibration intensity must be a finite percentage, got {value}")
        intensity = round(max(0.0, min(100.0, intensity_pct)) * 10)
        cap = round(max(0.0, min(100.0, cap_pct)) * 10)
        if intensity > 0 and cap > 0 and not self.has_motor:
            raise UsageError(no_motor_message(self.info))
        await self.command(
            PlayPattern(
                pattern_id=pattern_id,
                intensity_permille=intensity,
                cap_permille=cap,
                frequency_hz=frequency_hz,
            )
        )

    @property
    def has_motor(self) -> bool:
        """The device has a motor (DeviceInfo's motor_kind). A device without one (the force
        sensors of docs/devices.md) runs in monitor mode: no limit to set, nothing to stop."""
        return self.info is None or self.info.motor_kind != MotorKind.NONE

    async def set_limit(self, limit_n: float) -> None:
        """The firmware's hard limit; a device without a motor has no firmware limit (the host
        supervisor is all there is): nothing is sent."""
        if not self.has_motor:
            return
        limit_mn = max(0, round(limit_n * 1000))
        if limit_mn == self._limit_mn_acked:
            # the device holds this limit already and has not tripped it since (a trip is
            # cleared by a Stop or a SetLimit: then it is sent again)
            return
        self._limit_mn_acked = None
        await self.command(SetLimit(limit_mn=limit_mn))
        self._limit_mn_acked = limit_mn

    async def tare(self) -> int:
        """Zero the sensor on the device; returns the new offset (counts) the device
        reported. Nothing here changes: hand it to ``pipeline.apply_device_tare``."""
        reply = await self.command(Tare())
        assert isinstance(reply, TareResult)
        return reply.offset_counts

    # ---- receiving ------------------------------------------------------------------------

    async def batches(self) -> AsyncIterator[SampleBatch]:
        """Force batches as they arrive. Ends with LinkClosedError if the link dies."""
        while True:
            item = await self._batches.get()
            if isinstance(item, BaseException):
                raise item
            if item is None:
                return
            yield item

    async def _read_loop(self) -> None:
        try:
            async for msg in self.link:
                self._dispatch(msg)
        except (LinkClosedError, DeviceDataError) as exc:
            log.warning("%s link ended: %s: %s", self.link.url, type(exc).__name__, exc)
            # bad device data ends the stream like a lost link: the supervised loop stops
            # vibration and the run ends with the error
            self._batches.put_nowait(exc)
            if self._info_waiter is not None and not self._info_waiter.done():
                self._info_waiter.set_exception(exc)
            return
        self._batches.put_nowait(None)

    def _dispatch(self, msg: Message) -> None:
        if not isinstance(msg, ForceBatch | Status):
            log.debug("%s recv %s", self.link.url, msg)
        match msg:
            case ForceBatch():
                # Batches before our handshake (a stream an earlier host left running) are
                # not this session's.
                if self.info is not None:
                    check_force_batch(msg, self.link.url)
                    self._on_batch(msg)
            case Status():
                self.status = msg
                if msg.flags & StatusFlags.LIMIT_TRIPPED:
                    self._limit_mn_acked = None
            case Ack() | Nack() | TareResult():
                if isinstance(msg, Nack) and msg.code == NackCode.NO_LIMIT:
                    self._limit_mn_acked = None  # the device lost it (a reset)
                fut = self._pending.get(msg.cmd_seq)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
            case DeviceInfo():
                if self._info_waiter is not None and not self._info_waiter.done():
                    check_device_info(msg, self.link.url, uses_scale=self._calibration is None)
                    self._info_waiter.set_result(msg)

    def _on_batch(self, msg: ForceBatch) -> None:
        t_host_s = time.monotonic()
        gap = 0
        last = self._last_batch_seq
        if last is not None:
            behind = (last - msg.seq) & 0xFFFF
            if behind <= REORDER_WINDOW:
                # the newest seq again, or one from just before it: a duplicate, or a batch
                # that was overtaken on the way (its slot was counted as a gap): dropped
                if msg.seq in self._recent_seqs:
                    self.counters.duplicate_batches += 1
                else:
                    self.counters.late_batches += 1
                return
            gap = (msg.seq - last - 1) & 0xFFFF
            if gap:
                self.counters.seq_gaps += 1
                self.counters.missed_batches += gap
        self._last_batch_seq = msg.seq
        self._recent_seqs.append(msg.seq)
        raw = np.asarray(msg.samples, dtype=np.int64)
        jumps = len(self.clock.jumps)
        t_s = self.clock.batch_times_s(
            msg.t_us,
            msg.rate_hz,
            len(raw),
            batches_since_last=gap + 1,
            # the host's clock in device seconds (loop time x speed), the jump's witness
            t_host_s=self.timebase.now_s(),
        )
        clock_jump_s = 0.0
        if len(self.clock.jumps) > jumps:
            self.counters.clock_jumps += 1
            clock_jump_s = self.clock.jumps[-1].jump_s
        self.counters.batches += 1
        self.counters.samples += len(raw)
        self._batches.put_nowait(
            SampleBatch(
                seq=msg.seq,
                gap=gap,
                t_s=t_s,
                t_host_s=t_host_s,
                rate_hz=msg.rate_hz,
                raw_counts=raw,
                clock_jump_s=clock_jump_s,
            )
        )

    async def _keepalive_loop(self) -> None:
        """A Keepalive every KEEPALIVE_S of device time. If sending fails, the stream ends
        with that error (the supervised loop stops vibration): never a silent death."""
        period = self.timebase.keepalive_period_s
        try:
            while True:
                await asyncio.sleep(period)
                await self._link_send(Keepalive(seq=self._next_seq()))
        except LinkClosedError:
            return  # the reader reports the lost link
        except Exception as exc:  # noqa: BLE001 - a fault must reach the stream's reader
            err = LinkClosedError(f"{self.link.url}: keepalive failed: {exc}")
            err.__cause__ = exc
            self._batches.put_nowait(err)
