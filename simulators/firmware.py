"""The simulated firmware of a sensor device (ball or handheld): what a real device does with
each command and how it streams, in simulated time. No I/O: an endpoint feeds it messages and
sends what it returns (``simulators.runtime``).

Behaviour (docs/protocol.md, "Device behaviour"):
- Hello -> DeviceInfo; a protocol version it does not speak -> Nack(BAD_VERSION).
- SetStream -> streams ForceBatch at the set rate of the device's own clock, which drifts
  (ppm) against simulator time (samples are 1/rate apart in device time, as on a board);
  ForceBatch ``seq`` counts batches; every other device message has its own counter.
- Vibrate/Stop/SetLimit/Tare are range-checked: a bad value gets Nack(OUT_OF_RANGE), an unknown
  type Nack(UNKNOWN_TYPE), never a crash. Only a command the firmware accepts (answered with
  Ack, DeviceInfo or TareResult, or a Keepalive) feeds the deadman: a refused, undecodable or
  repeated one does not.
- No limit, no vibration (version 2): a Vibrate above zero before any SetLimit gets
  Nack(NO_LIMIT). SetLimit 0 is refused (OUT_OF_RANGE); a limit over the firmware's own
  ceiling (``FirmwareConfig.limit_max_mn``, reported in DeviceInfo) is clamped to it.
- SetLimit: when the force the firmware reads (against its own zero) passes the limit, the
  motor is cut on that very sample and LIMIT_TRIPPED is set; Vibrate is refused until the
  force is back under the limit and the host has sent Stop or a new SetLimit.
- Repeated commands (version 2): a command with the seq and the bytes of one of the last
  REPLY_CACHE commands is a retry: the firmware sends the same reply again and does not act
  (a Vibrate is not restarted, a Tare not retaken). Hello forgets the cache (a new host
  numbers from 0 again).
- Keepalive deadman: no accepted command for 500 ms while the motor runs -> motor off,
  KEEPALIVE_LOST.
- Tare: the mean of the last 64 raw samples becomes the zero; TareResult reports it. The
  zero is a working value: DeviceInfo keeps reporting the factory calibration.
- Patterns (version 3): PatternDefine stores a pattern (refused for the one playing; not
  remembered for repeats and no sign of life for the deadman);
  PlayPattern plays one from its first step, looping from its ``loop_from`` step, each step
  at min(level * intensity / 1000, cap), on the device's own clock; it passes the same
  gates as a Vibrate and ends as a Vibrate does (Stop, deadman, hard limit, another
  Vibrate or PlayPattern). A playing pattern counts as the motor running, even in a step
  at 0. ``FirmwareConfig.protocol_version = 2`` gives a version 2 device (no patterns).
- Injected device faults (the scenario's ``[[fault]]`` tables, ``simulators.faults``): a
  saturated or stuck sensor, a low battery, a brown-out (dead for ``ms``, then a device that
  rebooted: no stream, no limit), a motor slow to stop, keepalives ignored, a clock jump.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

from firmware_bridge.messages import (
    HEADER,
    MAX_PATTERN_STEPS,
    MAX_PATTERNS,
    MAX_SAMPLES_PER_BATCH,
    MESSAGE_TYPES,
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
    Waveform,
    encode_message,
    pattern_output_permille,
)
from simulators.faults import DeviceFaults
from simulators.physics import BallPhysics
from simulators.scenario import Scenario

DEADMAN_S = 0.5
STATUS_PERIOD_S = 0.25
TARE_WINDOW = 64
#: How many recent commands the firmware remembers to answer a retry (same seq, same bytes).
REPLY_CACHE = 64
#: The simulated devices' own absolute ceiling for SetLimit (millinewtons): 150 N, above
#: every zone's ceiling (120 N at most).
LIMIT_MAX_MN = 150_000


def undecodable_code(payload: bytes) -> NackCode:
    """The Nack code for a frame whose CRC was right but whose message did not decode:
    BAD_VERSION for another protocol version, BAD_LENGTH for a known type, else
    UNKNOWN_TYPE."""
    version, mtype, _seq = HEADER.unpack_from(payload)
    if version != PROTOCOL_VERSION:
        return NackCode.BAD_VERSION
    return NackCode.BAD_LENGTH if mtype in MESSAGE_TYPES else NackCode.UNKNOWN_TYPE


@dataclass(frozen=True)
class FirmwareConfig:
    """What kind of device this firmware runs on (reported in DeviceInfo)."""

    model: str = "MBALL-1"
    firmware: str = "1.2.0"
    serial_number: str = "SIM-BALL-0001"
    rate_min_hz: int = 10
    rate_max_hz: int = 2000
    motor_kind: MotorKind = MotorKind.ERM
    motor_freq_min_hz: int = 20
    motor_freq_max_hz: int = 250
    limit_max_mn: int = LIMIT_MAX_MN
    #: what DeviceInfo reports: 3 plays patterns, 2 is a version 2 device (the types of
    #: version 3 get Nack(UNKNOWN_TYPE))
    protocol_version: int = PATTERNS_VERSION


BALL = FirmwareConfig()
#: The handheld massager: percussive (20-60 Hz) or vibration (100-200 Hz) heads, a force
#: sensor in its head.
HANDHELD = FirmwareConfig(
    model="MHAND-1",
    firmware="0.9.4",
    serial_number="SIM-HAND-0001",
    rate_min_hz=10,
    rate_max_hz=1000,
    motor_kind=MotorKind.PERCUSSIVE,
    motor_freq_min_hz=20,
    motor_freq_max_hz=200,
)


@dataclass
class SimEvent:
    """Something the firmware did, in simulator time (for logs and tests)."""

    t_s: float
    name: str
    detail: dict = field(default_factory=dict)

    def line(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.detail.items())
        return f"EVENT t_s={self.t_s:.4f} {self.name} {extra}".rstrip()


class EventLog:
    """What a simulated firmware did: ``events`` (the whole log, in simulator time) and
    ``take_events()`` (those since the last call)."""

    def __init__(self) -> None:
        self.events: list[SimEvent] = []
        self._events_taken = 0

    def _event(self, t_s: float, name: str, **detail) -> None:
        self.events.append(SimEvent(t_s, name, detail))

    def take_events(self) -> list[SimEvent]:
        """Events since the last call (``events`` keeps the whole log)."""
        new = self.events[self._events_taken :]
        self._events_taken = len(self.events)
        return new


class Firmware(EventLog):
    """One simulated device. Drive it with ``handle(msg, t_s)`` and ``advance(t_s)``."""

    def __init__(self, scenario: Scenario, config: FirmwareConfig = BALL) -> None:
        super().__init__()
        self.scenario = scenario
        self.config = config
        self.physics = BallPhysics(scenario)
        self.faults = DeviceFaults(scenario.faults)
        if self.faults.specs:
            brake_s = scenario.motor.brake_s
            self.physics.brake_s = lambda t_s: self.faults.brake_s(t_s, brake_s)
        self.t_s = 0.0
        self.zero_counts = scenario.sensor.offset_counts
        self.scale = scenario.sensor.scale_counts_per_n
        self.rate_hz = 0
        self.samples_per_batch = 0
        self.integrating_adc = False
        self.limit_mn = 0
        self.flags = 0
        self.last_command_s = 0.0
        #: The keepalive deadman in simulator seconds (a time-compressed run may stretch it:
        #: see ``simulators.runtime``).
        self.deadman_s = DEADMAN_S
        self.motor_until_s: float | None = None
        self.true_force_n = 0.0
        self._batch_seq = 0
        self._other_seq = 0
        self._batch: list[int] = []
        self._batch_t_us = 0
        self._next_sample_s: float | None = None
        self._recent_raw: deque[int] = deque(maxlen=TARE_WINDOW)
        self._next_status_s = 0.0
        self._last_status: tuple | None = None
        self._out: list[Message] = []
        self.commands_received = 0
        self.stops_received = 0
        #: retries recognised (same seq and bytes as a recent command): answered, not acted on
        self.duplicates_received = 0
        #: seq -> (the command's bytes, the replies it got)
        self._replies: OrderedDict[int, tuple[bytes, list[Message]]] = OrderedDict()
        #: version 3: id -> (loop_from, steps of (level_permille, duration_ms))
        self.patterns: dict[int, tuple[int, tuple[tuple[int, int], ...]]] = {}
        #: the pattern playing: (id, intensity_permille, cap_permille, started, device s)
        self._playing: tuple[int, int, int, float] | None = None

    # ---- clock ----------------------------------------------------------------------------

    @property
    def _clock_rate(self) -> float:
        """Device seconds per simulator second (the drift)."""
        return 1.0 + self.scenario.clock.drift_ppm * 1e-6

    def device_us(self, t_s: float) -> int:
        """Device clock at simulator time ``t_s``: drifts by ``drift_ppm`` and wraps at 2^32."""
        c = self.scenario.clock
        us = c.start_us + round(t_s * 1e6 * (1.0 + c.drift_ppm * 1e-6))
        return (us + self.faults.clock_offset_us(t_s)) & 0xFFFFFFFF

    # ---- motor ----------------------------------------------------------------------------

    @property
    def motor_on(self) -> bool:
        """The motor runs, or a pattern plays (even in a step at 0)."""
        return self.physics.motor.drive > 0.0 or self._playing is not None

    @property
    def pattern_playing(self) -> int | None:
        return self._playing[0] if self._playing is not None else None

    def _motor_off(self, t_s: float, why: str) -> None:
        if self.motor_on:
            self.physics.motor.drive = 0.0
            self.motor_until_s = None
            self._playing = None
            self._event(t_s, "motor_off", cause=why)

    def _pattern_step(self, t_s: float) -> None:
        """Set the motor to the playing pattern's step at ``t_s`` (device time since start)."""
        if self._playing is None:
            return
        pid, intensity, cap, start_s = self._playing
        loop_from, steps = self.patterns[pid]
        elapsed_ms = int((t_s - start_s) * self._clock_rate * 1000.0 + 1e-6)
        total_ms = sum(d for _, d in steps)
        if elapsed_ms >= total_ms:
            loop_ms = sum(d for _, d in steps[loop_from:])
            head_ms = total_ms - loop_ms
            elapsed_ms = head_ms + (elapsed_ms - total_ms) % loop_ms
        level = steps[-1][0]
        for step_level, duration_ms in steps:
            if elapsed_ms < duration_ms:
                level = step_level
                break
            elapsed_ms -= duration_ms
        self.physics.motor.drive = pattern_output_permille(level, intensity, cap) / 1000.0

    # ---- commands -------------------------------------------------------------------------

    def _other(self, cls, **kw) -> Message:
        msg = cls(seq=self._other_seq, **kw)
        self._other_seq = (self._other_seq + 1) & 0xFFFF
        return msg

    def nack_undecodable(self, seq: int, mtype: int, code: NackCode) -> list[Message]:
        """Answer to a command whose CRC was right but whose body was not a valid message."""
        return [self._other(Nack, cmd_seq=seq, cmd_type=mtype, code=int(code))]

    def handle(self, msg: Message, t_s: float) -> list[Message]:
        """Process one command at simulator time ``t_s``. Returns what the device sends: the
        batches and status it produced up to ``t_s``, then the replies."""
        produced = self.advance(t_s)
        if self._dead(t_s):
            return produced  # what it sent before it died; the command is lost
        self.commands_received += 1
        if msg.TYPE >= 0x80:
            return produced + self._nack(msg, NackCode.UNKNOWN_TYPE)
        key = encode_message(msg)
        cached = self._replies.get(msg.seq)
        if cached is not None and cached[0] == key and not isinstance(msg, Hello | PatternDefine):
            # A retry: the host did not get our reply. Same answer, no second action, and no
            # keepalive either (a relay replaying old frames must not keep the motor on).
            self.duplicates_received += 1
            self._event(t_s, "duplicate", type=msg.TYPE, seq=msg.seq)
            return produced + list(cached[1])
        if isinstance(msg, Hello):
            self._replies.clear()
        replies = self._handle(msg, t_s)
        # a PatternDefine is not remembered for repeats, so it is no sign of life either: a
        # relay replaying one cannot keep a motor running
        ignored = (isinstance(msg, Keepalive) and self.faults.keepalive_ignored(t_s)) or isinstance(
            msg, PatternDefine
        )
        if not ignored and not any(isinstance(r, Nack) for r in replies):
            # accepted: only now does it count as a sign of life
            self.last_command_s = t_s
            self.flags &= ~StatusFlags.KEEPALIVE_LOST
        if isinstance(msg, PatternDefine):
            # not remembered (up to 244 bytes; the C core keeps short commands only): a
            # repeat stores the same steps again, which changes nothing
            return produced + replies
        self._replies[msg.seq] = (key, replies)
        self._replies.move_to_end(msg.seq)
        while len(self._replies) > REPLY_CACHE:
            self._replies.popitem(last=False)
        return produced + replies

    def _nack(self, msg: Message, code: NackCode) -> list[Message]:
        self._event(self.t_s, "nack", type=msg.TYPE, code=code.name)
        return [self._other(Nack, cmd_seq=msg.seq, cmd_type=msg.TYPE, code=int(code))]

    def _ack(self, msg: Message) -> list[Message]:
        return [self._other(Ack, cmd_seq=msg.seq, cmd_type=msg.TYPE)]

    def _handle(self, msg: Message, t_s: float) -> list[Message]:
        match msg:
            case Hello():
                if msg.protocol_version != PROTOCOL_VERSION:
                    return self._nack(msg, NackCode.BAD_VERSION)
                c = self.config
                if self._playing is not None:
                    self._motor_off(t_s, "stop")  # the table it plays is forgotten
                self.patterns.clear()
                return [
                    self._other(
                        DeviceInfo,
                        model=c.model,
                        firmware=c.firmware,
                        serial_number=c.serial_number,
                        protocol_version=c.protocol_version,
                        rate_min_hz=c.rate_min_hz,
                        rate_max_hz=c.rate_max_hz,
                        motor_kind=int(c.motor_kind),
                        motor_freq_min_hz=c.motor_freq_min_hz,
                        motor_freq_max_hz=c.motor_freq_max_hz,
                        cal_scale_counts_per_n=self.scale,
                        # the factory zero, not the working one a Tare moved
                        cal_offset_counts=self.scenario.sensor.offset_counts,
                        limit_max_mn=c.limit_max_mn,
                    )
                ]
            case SetStream():
                c = self.config
                if msg.rate_hz != 0 and not (
                    c.rate_min_hz <= msg.rate_hz <= c.rate_max_hz
                    and 1 <= msg.samples_per_batch <= MAX_SAMPLES_PER_BATCH
                ):
                    return self._nack(msg, NackCode.OUT_OF_RANGE)
                self._set_stream(msg.rate_hz, msg.samples_per_batch, t_s)
                return self._ack(msg)
            case Vibrate():
                c = self.config
                hz = msg.frequency_hz or self.scenario.motor.default_hz
                if (
                    not 0 <= msg.intensity_permille <= 1000
                    or not c.motor_freq_min_hz <= hz <= c.motor_freq_max_hz
                    or msg.waveform not in {int(w) for w in Waveform}
                    or c.motor_kind == MotorKind.NONE
                ):
                    return self._nack(msg, NackCode.OUT_OF_RANGE)
                if msg.intensity_permille > 0 and self.limit_mn <= 0:
                    return self._nack(msg, NackCode.NO_LIMIT)
                if self.flags & StatusFlags.LIMIT_TRIPPED and msg.intensity_permille > 0:
                    return self._nack(msg, NackCode.LIMIT_TRIPPED)
                m = self.physics.motor
                m.commanded_hz = float(hz)
                self._playing = None
                m.drive = msg.intensity_permille / 1000.0
                self.motor_until_s = t_s + msg.duration_ms / 1000.0 if msg.duration_ms else None
                self._event(t_s, "vibrate", permille=msg.intensity_permille, hz=hz)
                if m.drive == 0.0:
                    self._event(t_s, "motor_off", cause="vibrate_zero")
                return self._ack(msg)
            case PatternDefine() if self.config.protocol_version >= PATTERNS_VERSION:
                n = len(msg.steps)
                if (
                    not 0 <= msg.pattern_id < MAX_PATTERNS
                    or not 1 <= n <= MAX_PATTERN_STEPS
                    or not 0 <= msg.loop_from < n
                    or any(not 0 <= lv <= 1000 or d < 1 for lv, d in msg.steps)
                ):
                    return self._nack(msg, NackCode.OUT_OF_RANGE)
                if self.pattern_playing == msg.pattern_id:
                    return self._nack(msg, NackCode.NOT_READY)
                self.patterns[msg.pattern_id] = (msg.loop_from, tuple(msg.steps))
                self._event(t_s, "pattern_define", id=msg.pattern_id, steps=n)
                return self._ack(msg)
            case PlayPattern() if self.config.protocol_version >= PATTERNS_VERSION:
                c = self.config
                hz = msg.frequency_hz or self.scenario.motor.default_hz
                if (
                    not 0 <= msg.pattern_id < MAX_PATTERNS
                    or not 0 <= msg.intensity_permille <= 1000
                    or not 0 <= msg.cap_permille <= 1000
                    or not c.motor_freq_min_hz <= hz <= c.motor_freq_max_hz
                    or c.motor_kind == MotorKind.NONE
                ):
                    return self._nack(msg, NackCode.OUT_OF_RANGE)
                on = msg.intensity_permille > 0 and msg.cap_permille > 0
                if on and msg.pattern_id not in self.patterns:
                    return self._nack(msg, NackCode.NOT_READY)
                if on and self.limit_mn <= 0:
                    return self._nack(msg, NackCode.NO_LIMIT)
                if on and self.flags & StatusFlags.LIMIT_TRIPPED:
                    return self._nack(msg, NackCode.LIMIT_TRIPPED)
                if not on:
                    self._motor_off(t_s, "vibrate_zero")
                else:
                    self.physics.motor.commanded_hz = float(hz)
                    self.motor_until_s = None
                    self._playing = (msg.pattern_id, msg.intensity_permille, msg.cap_permille, t_s)
                    self._pattern_step(t_s)
                    # as the C core reports it: the motor commanded, at its first step
                    permille = round(self.physics.motor.drive * 1000)
                    self._event(t_s, "vibrate", permille=permille, hz=hz, pattern=msg.pattern_id)
                return self._ack(msg)
            case Stop():
                self.stops_received += 1
                self._motor_off(t_s, "stop")
                self._event(t_s, "stop_received")
                self._clear_limit_if_safe()
                return self._ack(msg)
            case Keepalive():
                return []
            case SetLimit():
                if msg.limit_mn <= 0:
                    return self._nack(msg, NackCode.OUT_OF_RANGE)
                self.limit_mn = min(msg.limit_mn, self.config.limit_max_mn)
                self._event(t_s, "set_limit", limit_mn=self.limit_mn)
                self._clear_limit_if_safe()
                return self._ack(msg)
            case Tare():
                if not self._recent_raw:
                    return self._nack(msg, NackCode.NOT_READY)
                self.zero_counts = round(sum(self._recent_raw) / len(self._recent_raw))
                self._event(t_s, "tare", offset_counts=self.zero_counts)
                return [self._other(TareResult, cmd_seq=msg.seq, offset_counts=self.zero_counts)]
        return self._nack(msg, NackCode.UNKNOWN_TYPE)

    def _clear_limit_if_safe(self) -> None:
        if self.flags & StatusFlags.LIMIT_TRIPPED and not self._over_limit(self._last_raw()):
            self.flags &= ~StatusFlags.LIMIT_TRIPPED

    def _last_raw(self) -> int:
        return self._recent_raw[-1] if self._recent_raw else self.zero_counts

    def _over_limit(self, raw: int) -> bool:
        if self.limit_mn <= 0:
            return False
        return (raw - self.zero_counts) / self.scale * 1000.0 > self.limit_mn

    def _set_stream(self, rate_hz: int, per_batch: int, t_s: float) -> None:
        self.rate_hz = rate_hz
        self.samples_per_batch = per_batch
        #: the scenario's ADC at this rate: a mean over each conversion period, or not
        self.integrating_adc = self.scenario.adc.integrates_at(rate_hz)
        self._batch = []
        self._next_sample_s = t_s if rate_hz else None

    # ---- time -----------------------------------------------------------------------------

    def advance(self, t_s: float) -> list[Message]:
        """Run the device up to simulator time ``t_s``; returns messages it sends meanwhile."""
        if self.rate_hz:
            # the device samples on its own clock (its timer, as the C core does): one
            # period of device time is a little less simulator time when that clock is fast
            period = 1.0 / self.rate_hz / self._clock_rate
            while self.rate_hz and self._next_sample_s is not None and self._next_sample_s <= t_s:
                self._sample(self._next_sample_s, period)
                self._next_sample_s += period
        else:
            self._idle_to(t_s)
        self._tick(t_s)
        out, self._out = self._out, []
        return out

    def _idle_to(self, t_s: float) -> None:
        """No streaming: still run physics and the watchdogs, at 1 kHz."""
        step = 0.001 / self._clock_rate
        while self.t_s + step <= t_s:
            self._sample(self.t_s + step, step, emit=False)

    def _dead(self, t_s: float) -> bool:
        """A brown-out: the device resets when it begins (motor, stream, limit, counters and
        the reply cache gone) and is dead (no output, no input) until it ends."""
        if self.faults.reboot_due(t_s):
            self._motor_off(t_s, "brownout")
            self._event(t_s, "brownout")
            self.rate_hz = self.samples_per_batch = self.limit_mn = self.flags = 0
            self._batch = []
            self._batch_seq = self._other_seq = 0
            self._replies.clear()
            self._last_status = None
            self.zero_counts = self.scenario.sensor.offset_counts
        return self.faults.browned_out(t_s) is not None

    def _sample(self, t_s: float, dt_s: float, emit: bool = True) -> None:
        self.t_s = t_s
        if self._dead(t_s):
            self.physics.step(t_s, dt_s)
            return
        self._watchdogs(t_s)
        integrating = emit and self.integrating_adc
        self.true_force_n, raw = self.physics.step(t_s, dt_s, integrating=integrating)
        raw = self.faults.raw(t_s, raw)
        self._recent_raw.append(raw)
        if self._over_limit(raw) and not self.flags & StatusFlags.LIMIT_TRIPPED:
            self.flags |= StatusFlags.LIMIT_TRIPPED
            self._event(
                t_s, "limit_tripped", force_n=round((raw - self.zero_counts) / self.scale, 3)
            )
            self._motor_off(t_s, "limit")
        if not emit:
            return
        if not self._batch:
            self._batch_t_us = self.device_us(t_s)
        self._batch.append(raw)
        if len(self._batch) >= self.samples_per_batch:
            self._out.append(
                ForceBatch(self._batch_seq, self._batch_t_us, self.rate_hz, tuple(self._batch))
            )
            self._batch_seq = (self._batch_seq + 1) & 0xFFFF
            self._batch = []

    def _watchdogs(self, t_s: float) -> None:
        self._pattern_step(t_s)
        if self.motor_on and t_s - self.last_command_s >= self.deadman_s:
            self.flags |= StatusFlags.KEEPALIVE_LOST
            self._event(t_s, "deadman", last_command_s=round(self.last_command_s, 4))
            self._motor_off(t_s, "deadman")
        if self.motor_until_s is not None and t_s >= self.motor_until_s:
            self._motor_off(t_s, "duration")

    def _tick(self, t_s: float) -> None:
        self.t_s = max(self.t_s, t_s)
        if self._dead(t_s):
            return
        flags = self.flags | (StatusFlags.MOTOR_ON if self.motor_on else 0)
        motor_permille = round(self.physics.motor.drive * 1000)
        state = (flags, motor_permille)
        if t_s >= self._next_status_s or state != self._last_status:
            self._last_status = state
            self._next_status_s = t_s + STATUS_PERIOD_S
            self._out.append(
                self._other(
                    Status,
                    battery_pct=round(self.faults.battery_pct(t_s, self.physics.battery_pct)),
                    motor_permille=motor_permille,
                    flags=flags,
                )
            )
