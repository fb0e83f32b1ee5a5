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
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import numpy as np

from device.errors import (
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
    Ack,
    DeviceInfo,
    ForceBatch,
    Hello,
    Keepalive,
    Message,
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

HANDSHAKE_TIMEOUT_S = 2.0
COMMAND_TIMEOUT_S = 1.0
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


@dataclass
class SessionCounters:
    batches: int = 0
    samples: int = 0
    seq_gaps: int = 0
    missed_batches: int = 0
    nacks: int = 0


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
        self._batches: asyncio.Queue = asyncio.Queue()
        self._info_waiter: asyncio.Future[DeviceInfo] | None = None
        self._last_batch_seq: int | None = None
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

    async def start(self) -> None:
        await self.link.open()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._read_loop(), name="session-reader"))
        self._info_waiter = loop.create_future()
        try:
            # a Hello the device refuses to take (e.g. it wants an encrypted link) must not
            # leave the link open behind a failed start
            await self.send(Hello(seq=self._next_seq()))
            self.info = await asyncio.wait_for(self._info_waiter, HANDSHAKE_TIMEOUT_S)
        except TimeoutError:
            await self.close()
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

    async def close(self) -> None:
        """Stop the motor and the stream, then close the link. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            for msg in (Stop(seq=self._next_seq()), SetStream(seq=self._next_seq())):
                try:
                    await self.link.send(msg)
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
        if isinstance(msg, Vibrate) and msg.intensity_permille > 0 and not self._vibration_cleared:
            raise ScreeningRefused(
                f"{self.link.url}: no vibration on a real device without a passed screening",
                "Answer the screening questions first",
            )

    async def send(self, msg: Message) -> None:
        """Send without waiting for an answer."""
        self._check_clearance(msg)
        await self.link.send(msg)

    async def command(self, msg: Message, timeout_s: float = COMMAND_TIMEOUT_S) -> Message:
        """Send ``msg`` with a fresh sequence number and wait for its Ack (or TareResult).
        A Nack raises DeviceRefusedError; no answer raises DeviceTimeoutError."""
        self._check_clearance(msg)
        msg = replace(msg, seq=self._next_seq())
        fut = asyncio.get_running_loop().create_future()
        self._pending[msg.seq] = fut
        try:
            await self.link.send(msg)
            reply = await asyncio.wait_for(fut, timeout_s)
        except TimeoutError:
            raise DeviceTimeoutError(
                f"{self.link.url}: no answer to {type(msg).__name__} within {timeout_s:g} s"
            ) from None
        finally:
            self._pending.pop(msg.seq, None)
        if isinstance(reply, Nack):
            self.counters.nacks += 1
            code = NackCode(reply.code).name if reply.code in NackCode._value2member_map_ else "?"
            raise DeviceRefusedError(f"device refused {type(msg).__name__}: {code}", reply.code)
        return reply

    async def stop_motor(self) -> None:
        """Stop goes straight out: no waiting on anything else."""
        await self.link.send(Stop(seq=self._next_seq()))

    async def vibrate(self, intensity_pct: float, frequency_hz: int = 0, **kw) -> None:
        """Vibrate at ``intensity_pct`` (0-100, clamped); a NaN or infinite one is refused."""
        if not math.isfinite(intensity_pct):
            raise UsageError(
                f"vibration intensity must be a finite percentage, got {intensity_pct}"
            )
        permille = round(max(0.0, min(100.0, intensity_pct)) * 10)
        await self.command(Vibrate(intensity_permille=permille, frequency_hz=frequency_hz, **kw))

    async def set_limit(self, limit_n: float) -> None:
        await self.command(SetLimit(limit_mn=max(0, round(limit_n * 1000))))

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
        except LinkClosedError as exc:
            self._batches.put_nowait(exc)
            if self._info_waiter is not None and not self._info_waiter.done():
                self._info_waiter.set_exception(exc)
            return
        self._batches.put_nowait(None)

    def _dispatch(self, msg: Message) -> None:
        match msg:
            case ForceBatch():
                # Batches before our handshake (a stream an earlier host left running) are
                # not this session's.
                if self.info is not None:
                    self._on_batch(msg)
            case Status():
                self.status = msg
            case Ack() | Nack() | TareResult():
                fut = self._pending.get(msg.cmd_seq)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
            case DeviceInfo():
                if self._info_waiter is not None and not self._info_waiter.done():
                    self._info_waiter.set_result(msg)

    def _on_batch(self, msg: ForceBatch) -> None:
        t_host_s = time.monotonic()
        gap = 0
        if self._last_batch_seq is not None:
            gap = (msg.seq - self._last_batch_seq - 1) & 0xFFFF
            if gap:
                self.counters.seq_gaps += 1
                self.counters.missed_batches += gap
        self._last_batch_seq = msg.seq
        raw = np.asarray(msg.samples, dtype=np.int64)
        t_s = self.clock.batch_times_s(msg.t_us, msg.rate_hz, len(raw))
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
            )
        )

    async def _keepalive_loop(self) -> None:
        """A Keepalive every KEEPALIVE_S of device time. If sending fails, the stream ends
        with that error (the supervised loop stops vibration): never a silent death."""
        period = self.timebase.keepalive_period_s
        try:
            while True:
                await asyncio.sleep(period)
                await self.link.send(Keepalive(seq=self._next_seq()))
        except LinkClosedError:
            return  # the reader reports the lost link
        except Exception as exc:  # noqa: BLE001 - a fault must reach the stream's reader
            err = LinkClosedError(f"{self.link.url}: keepalive failed: {exc}")
            err.__cause__ = exc
            self._batches.put_nowait(err)
