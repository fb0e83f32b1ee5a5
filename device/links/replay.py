"""``replay://DIR``: a recording played back as a device.

The recording's device answers Hello with a DeviceInfo carrying the recorded device's
identity and the calibration the session used, and, once streaming is asked for, sends the
recorded raw counts as ForceBatch messages with their original batch sequence numbers and
device times. Every command is acknowledged and nothing moves: a replay has no motor.
``Tare`` is answered as the firmware answers it: the mean of the last ``TARE_WINDOW`` raw
samples played becomes the reported zero (the recorded zero before any was played); the
host hands it to its force pipeline like any device's.

Pace: ``speed`` (``?speed=K`` in the URL or the ``speed`` option; the option wins) plays K
times real time (default 1); ``speed=max`` plays as fast as the reader takes it. The link ends
(iteration stops, no error) after the last recorded batch. Batches are played as they were
recorded, whatever rate or batch size SetStream asks for.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from dataclasses import replace

import numpy as np

from device.errors import BadUrlError, LinkClosedError
from device.links.base import _CLOSED, Link
from device.recording.folder import Recording, read_recording
from firmware_bridge.messages import (
    MAX_SAMPLES_PER_BATCH,
    PROTOCOL_VERSION,
    Ack,
    DeviceInfo,
    ForceBatch,
    Hello,
    Keepalive,
    Message,
    SetStream,
    Tare,
    TareResult,
)

U32 = 1 << 32
#: Samples a Tare zeroes on, as the firmware's (simulators.firmware.TARE_WINDOW).
TARE_WINDOW = 64


def parse_speed(value: str | float | None, where: str) -> float:
    """A replay speed: a positive number, or "max" (returned as infinity)."""
    if value is None:
        return 1.0
    if isinstance(value, str) and value.strip().lower() == "max":
        return math.inf
    try:
        speed = float(value)
    except (TypeError, ValueError):
        speed = -1.0
    if not speed > 0:
        raise BadUrlError(f"{where}: speed must be a positive number or 'max', got {value!r}")
    return speed


def _first(*values):
    """The first value that is not None."""
    return next(v for v in values if v is not None)


class ReplayLink(Link):
    kind = "replay"
    max_samples_per_batch = MAX_SAMPLES_PER_BATCH

    def __init__(self, url, *, speed: float | str | None = None, timebase=None, **_options) -> None:
        super().__init__(url, timebase=timebase)
        #: playback pace (may be infinite: "max"); host timers follow ``self.timebase``
        self.speed = parse_speed(speed if speed is not None else url.params.get("speed"), str(url))
        self.recording: Recording | None = None
        self._seq = 0
        self._player: asyncio.Task | None = None
        self.batches_sent = 0
        self._recent_raw: deque[int] = deque(maxlen=TARE_WINDOW)

    async def _open(self) -> None:
        # Reading is synchronous (numpy); a long recording takes ~1 s per 500k samples.
        self.recording = read_recording(self.url.target)

    async def _send(self, msg: Message) -> None:
        match msg:
            case Hello():
                self._reply(self._device_info())
            case SetStream():
                self._stop_player()
                if msg.rate_hz:
                    self._player = asyncio.get_running_loop().create_task(
                        self._play(), name="replay-player"
                    )
                self._reply(Ack(cmd_seq=msg.seq, cmd_type=msg.TYPE))
            case Keepalive():
                pass
            case Tare():
                recent = self._recent_raw
                zero = sum(recent) / len(recent) if recent else self._calibration()[1]
                self._reply(TareResult(cmd_seq=msg.seq, offset_counts=round(zero)))
            case _:
                self._reply(Ack(cmd_seq=msg.seq, cmd_type=msg.TYPE))

    async def _close(self) -> None:
        self._stop_player(wait=True)
        if self._player is not None:
            try:
                await self._player
            except asyncio.CancelledError:
                pass
            self._player = None

    @property
    def _open_recording(self) -> Recording:
        """The recording being played (read by ``open()``)."""
        rec = self.recording
        if rec is None:
            raise LinkClosedError(f"{self.url}: replay link is not open")
        return rec

    # ---- device side ----------------------------------------------------------------------

    def _reply(self, msg: Message) -> None:
        if self.state.value == "closed":
            return
        self._deliver(replace(msg, seq=self._seq))
        self._seq = (self._seq + 1) & 0xFFFF

    def _calibration(self) -> tuple[float, float]:
        meta = self._open_recording.meta
        cal = meta.get("calibration") or {}
        dev = meta.get("device") or {}
        # read_recording checked the types; a field may be absent or null (written as NaN)
        scale = _first(cal.get("scale_counts_per_n"), dev.get("cal_scale_counts_per_n"), 1.0)
        offset = _first(cal.get("offset_counts"), dev.get("cal_offset_counts"), 0.0)
        return float(scale), float(offset)

    def _device_info(self) -> DeviceInfo:
        rec = self._open_recording
        dev = rec.meta.get("device") or {}
        scale, offset = self._calibration()
        rate = round(rec.rate_hz) or 1000
        return DeviceInfo(
            model=str(dev.get("model", "replay"))[:16],
            firmware=str(dev.get("firmware", "replay"))[:8],
            serial_number=str(dev.get("serial_number", ""))[:16],
            protocol_version=PROTOCOL_VERSION,
            rate_min_hz=int(dev.get("rate_min_hz", rate)),
            rate_max_hz=int(dev.get("rate_max_hz", rate)),
            motor_kind=0,
            motor_freq_min_hz=int(dev.get("motor_freq_min_hz", 0)),
            motor_freq_max_hz=int(dev.get("motor_freq_max_hz", 0)),
            cal_scale_counts_per_n=scale,
            cal_offset_counts=round(offset),
        )

    def _stop_player(self, wait: bool = False) -> None:
        if self._player is not None and not self._player.done():
            self._player.cancel()
        if not wait:
            self._player = None

    async def _play(self) -> None:
        """Send the recorded batches at their recorded pace (scaled), then end the link."""
        rec = self._open_recording
        bounds = rec.batch_bounds()
        rate_hz = round(rec.rate_hz) or 1000
        t_us = np.round(rec.t_s * 1e6).astype(np.int64) % U32
        t0_s = float(rec.t_s[0]) if rec.t_s.size else 0.0
        start_host_s = time.monotonic()
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            if math.isinf(self.speed):
                await asyncio.sleep(0)  # let the reader keep up
            else:
                due_s = start_host_s + (float(rec.t_s[b - 1]) - t0_s) / self.speed
                wait_s = due_s - time.monotonic()
                await asyncio.sleep(max(0.0, wait_s))
            for c in range(a, b, MAX_SAMPLES_PER_BATCH):
                d = min(b, c + MAX_SAMPLES_PER_BATCH)
                samples = tuple(rec.raw_counts[c:d].tolist())
                self._deliver(
                    ForceBatch(
                        seq=int(rec.seq[c]) & 0xFFFF,
                        t_us=int(t_us[c]),
                        rate_hz=rate_hz,
                        samples=samples,
                    )
                )
                self._recent_raw.extend(samples)
                self.batches_sent += 1
        self._inbox.put_nowait(_CLOSED)  # end of the recording: the stream ends cleanly
