"""The fault matrix: every fault the simulators inject x {idle, streaming, vibrating, a hold
near the neck}, through the whole supervised run (session, pipeline, supervisor, recording),
measured. Used by tests/test_fault_matrix.py (CI: a time-compressed short form; ``make
test-long``: whole) and docs/make_reliability.py (the table in docs/reliability.md).

Transport "serial": the ``sim://`` link, which speaks the serial framing (COBS + CRC) to the
simulated firmware in this process; the faults are ``[[fault]]`` entries of its scenario,
applied by the simulator (``simulators.faults``), on virtual time (tests/virtual_time.py).
Transport "ble": the ball as a GATT peripheral on Bumble's software radio, bleak on the host
side, in real time (time-compressed); the link faults a BLE link layer cannot produce
(corrupted or reordered frames, byte-level stalls: it checks, orders and retransmits) are n/a.

What is measured, per case, from the firmware's own log and the host's events:
- ``off_s``: from the fault to the motor's drive cut by the firmware (a Stop that arrived,
  its deadman, its limit, a brown-out); ``None`` when nothing vibrated or it never stopped;
- ``cause``: the first stop, fault or link loss the host published after the fault;
- ``outcome``: ``goes on`` (nothing latched), ``paused`` (latched: waits for a re-arm),
  ``ended`` (the link is gone: the run ends);
- ``recording_lag_s``: the newest sample the host had minus the newest one on disk, read as a
  crash would leave the folder, before the recording is finished;
- ``error``: anything that escaped the run (must be None: never a traceback).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from device.control.run import supervised_run
from device.control.vibration import get_pattern
from device.errors import MassagectlError
from device.recording.folder import read_recording
from dsp.events import Fault, LinkLost, Stop
from dsp.supervisor import FLATLINE_S, STALE_MIN_S
from dsp.zones import get_zone
from simulators.faults import FAULT_KINDS, FaultSpec
from simulators.firmware import DEADMAN_S
from simulators.scenario import PressPoint, Scenario, SensorConfig

#: One supervisor tick (device seconds).
TICK_S = 0.05
#: Stale stream at 1 kHz in batches of 10: max(150 ms, 3 batches) + one tick.
STALE_BUDGET_S = max(STALE_MIN_S, 3 * 0.010) + TICK_S
#: A link that is gone: the firmware's deadman.
LINK_BUDGET_S = DEADMAN_S
#: How much faster than real time the BLE cases run.
BLE_SPEED = 2.5
#: A slop for the firmware's sampling step and the loop's scheduling (device seconds).
SLOP_S = 0.005


@dataclass(frozen=True)
class State:
    name: str
    zone: str
    force_n: float
    vibration_pct: float
    record: bool = True


STATES = (
    State("idle", "upper_back", 0.0, 0.0),
    State("streaming", "upper_back", 20.0, 0.0),
    State("vibrating", "upper_back", 20.0, 40.0),
    State("neck hold", "neck_back", 6.0, 20.0),
)


@dataclass(frozen=True)
class Expect:
    """What a fault must do: ``cause`` named (None: nothing latches), ``outcome``, and the
    budget for vibration off (None: vibration is not the fault's business: it goes on)."""

    cause: str | None
    outcome: str
    budget_s: float | None
    words: str


def fault_for(kind: str, at_s: float) -> FaultSpec:
    """The fault of the matrix for ``kind``, starting at ``at_s``."""
    table = {
        "stall": FaultSpec("stall", at_s, ms=300.0),
        "disconnect": FaultSpec("disconnect", at_s),
        "corrupt": FaultSpec("corrupt", at_s, for_s=1.0, pct=20.0),
        "duplicate": FaultSpec("duplicate", at_s, pct=5.0),
        "reorder": FaultSpec("reorder", at_s, pct=1.0),
        "drop": FaultSpec("drop", at_s, for_s=1.0, pct=20.0),
        "saturation": FaultSpec("saturation", at_s),
        "flatline": FaultSpec("flatline", at_s),
        "battery_low": FaultSpec("battery_low", at_s, battery_pct=5.0),
        "brownout": FaultSpec("brownout", at_s, ms=300.0),
        "motor_slow_stop": FaultSpec("motor_slow_stop", at_s, brake_s=0.5),
        "keepalive_ignored": FaultSpec("keepalive_ignored", at_s),
        "clock_jump": FaultSpec("clock_jump", at_s, jump_s=-1.0),
    }
    return table[kind]


def describe_fault(spec: FaultSpec) -> str:
    match spec.kind:
        case "stall":
            return f"stall {spec.ms:g} ms, both ways"
        case "corrupt" | "drop":
            return f"{spec.kind} {spec.pct:g} % of frames, both ways, {spec.for_s:g} s"
        case "duplicate" | "reorder":
            return f"{spec.kind} {spec.pct:g} % of frames, both ways"
        case "battery_low":
            return f"battery at {spec.battery_pct:g} %"
        case "brownout":
            return f"brown-out, {spec.ms:g} ms dead, then a reset device"
        case "motor_slow_stop":
            return f"motor slow to stop (brake {spec.brake_s:g} s)"
        case "clock_jump":
            return f"device clock jumps {spec.jump_s:+g} s"
    return spec.kind.replace("_", " ")


def expect(kind: str, state: State, transport: str = "serial") -> Expect | None:
    """The expectation for a case; None: the transport cannot produce the fault (n/a)."""
    if transport == "ble" and kind in ("stall", "corrupt", "duplicate", "reorder", "drop"):
        return None
    vib = state.vibration_pct > 0
    stale = STALE_BUDGET_S if vib else None
    match kind:
        case "stall":
            if vib:
                return Expect("stale_stream", "paused", LINK_BUDGET_S, "stale stream stop")
            return Expect(None, "goes on", None, "nothing vibrates: the stream resumes")
        case "disconnect":
            return Expect("link_lost", "ended", LINK_BUDGET_S if vib else None, "link lost")
        case "corrupt":
            # lost batch frames are gaps too: whichever rule counts 3 first names it
            budget = LINK_BUDGET_S if vib else None
            return Expect("crc_burst|seq_gap", "paused", budget, "CRC burst or gap fault")
        case "drop":
            return Expect("seq_gap", "paused", stale, "sequence-gap fault")
        case "duplicate" | "reorder":
            return Expect(None, "goes on", None, "extra or late batches dropped, counted")
        case "saturation":
            # the firmware's own limit trips on the rail too: whichever the host hears first
            return Expect("saturation|firmware_limit", "paused", stale, "saturation fault")
        case "flatline":
            budget = FLATLINE_S + STALE_BUDGET_S if vib else None
            return Expect("flatline", "paused", budget, "flatline fault")
        case "battery_low":
            return Expect(None, "goes on", None, "battery level shown")
        case "brownout":
            # the motor loses power at once; the silent stream is a stale-stream fault
            return Expect("stale_stream", "paused", SLOP_S if vib else None, "stale stream")
        case "motor_slow_stop":
            if vib:
                # the host cannot see the motor's braking; its Stop (here: a person's, 0.2 s
                # after the fault) cuts the drive at once and the motor coasts down
                return Expect("user_stop", "paused", 0.2 + STALE_BUDGET_S, "drive cut at Stop")
            return Expect(None, "goes on", None, "nothing vibrates")
        case "keepalive_ignored":
            if vib:
                return Expect("keepalive_lost", "paused", LINK_BUDGET_S, "deadman, reported")
            return Expect(None, "goes on", None, "no motor, no deadman")
        case "clock_jump":
            return Expect(None, "goes on", None, "jump absorbed, counted")
    raise ValueError(kind)


@dataclass
class Result:
    kind: str
    state: str
    transport: str
    fault: str
    expected: Expect | None
    off_s: float | None = None
    vibrating_at_end: bool = False
    cause: str | None = None
    outcome: str = "goes on"
    detect_s: float | None = None
    recording_lag_s: float | None = None
    recording_complete: bool = False
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """What this case got wrong against its expectation ([] when it passed)."""
        e = self.expected
        if e is None:
            return []
        out = []
        if self.error is not None:
            out.append(f"error escaped: {self.error}")
        if (self.cause or "") not in (e.cause or "").split("|"):
            out.append(f"cause {self.cause!r}, expected {e.cause!r}")
        if self.outcome != e.outcome:
            out.append(f"outcome {self.outcome!r}, expected {e.outcome!r}")
        if e.budget_s is not None and (self.off_s is None or self.off_s > e.budget_s + SLOP_S):
            out.append(f"vibration off after {self.off_s}, budget {e.budget_s:.3f} s")
        if e.budget_s is None and e.cause is None and self.off_s is not None:
            out.append(f"vibration stopped after {self.off_s} s though nothing called for it")
        if self.recording_lag_s is None or self.recording_lag_s > 1.0:
            out.append(f"recording behind by {self.recording_lag_s} s (at most 1 s)")
        if not self.recording_complete:
            out.append("recording not completed")
        return out

    def measured(self) -> str:
        if self.expected is None:
            return "n/a"
        parts = [self.cause or "no stop", self.outcome]
        if self.off_s is not None:
            parts.append(f"off in {self.off_s * 1000:.0f} ms")
        elif self.vibrating_at_end:
            parts.append("vibration on")
        if self.recording_lag_s is not None:
            parts.append(f"recording {self.recording_lag_s:.2f} s behind")
        if self.error:
            parts.append(f"ERROR {self.error}")
        return ", ".join(parts)


def scenario_for(state: State, spec: FaultSpec) -> Scenario:
    press = (PressPoint(0.0, 0.0), PressPoint(0.1, state.force_n, ramp_s=0.2))
    return Scenario(
        name=f"matrix-{spec.kind}",
        press=press,
        seed=3,
        sensor=replace(SensorConfig(), drift_n_per_min=0.0),
        faults=(spec,),
    )


async def run_case(
    kind: str,
    state: State,
    *,
    at_s: float = 1.0,
    watch_s: float = 1.6,
    transport: str = "serial",
    url: str = "sim://ball",
    folder: Path | None = None,
    **link_options,
) -> Result:
    """One case on ``transport`` (serial: ``sim://`` in this process, on the running loop's
    time, virtual in tests)."""
    spec = fault_for(kind, at_s)
    result = Result(
        kind, state.name, transport, describe_fault(spec), expect(kind, state, transport)
    )
    if result.expected is None:
        return result
    scenario = scenario_for(state, spec)
    radio = None
    if transport == "serial":
        link_options["scenario"] = scenario
    else:
        radio, url = await _start_radio(scenario, spec, link_options)
    try:
        with contextlib.ExitStack() as stack:
            if folder is None:
                folder = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "rec"
            await _run(result, state, spec, scenario, url, folder, watch_s, link_options)
    finally:
        if radio is not None:
            await radio.stop()
    return result


async def _start_radio(scenario, spec, link_options):
    """The ball on Bumble's software radio for a BLE case (real time at ``speed``)."""
    from firmware_bridge import gatt
    from simulators.ble_radio import SoftwareRadio
    from simulators.devices import make_firmware
    from tests.helpers import person_screening

    speed = link_options.setdefault("speed", BLE_SPEED)
    radio = SoftwareRadio(make_firmware("ball", scenario), speed=speed, log=lambda _t: None)
    await radio.start()
    link_options.update(hci=radio.transport_spec, screening=person_screening())
    link_options["firmware"] = radio.firmware
    link_options["on_open"] = lambda: _retime(radio, spec, speed)
    return radio, f"ble://{gatt.SIM_BALL_ADDRESS}"


def _retime(radio, spec: FaultSpec, speed: float) -> FaultSpec:
    """The radio's clock started before the host connected (which takes a while): the
    fault starts ``spec.at_s`` after the run opened instead."""
    from simulators.faults import DeviceFaults

    fw = radio.firmware
    spec = replace(spec, at_s=round(fw.t_s + spec.at_s, 3))
    fw.faults = DeviceFaults((spec,))
    if spec.kind == "disconnect":
        loop = asyncio.get_running_loop()
        loop.call_later((spec.at_s - fw.t_s) / speed, radio.drop_ball_links)
    return spec


async def _run(result, state, spec, scenario, url, folder, watch_s, link_options) -> None:
    events = []
    last_host_t = [0.0]
    link_options = dict(link_options)
    firmware = link_options.pop("firmware", None)
    on_open = link_options.pop("on_open", None)
    try:
        async with supervised_run(
            url,
            zone=get_zone(state.zone),
            record_dir=folder,
            reconnect_timeout_s=0.0,
            **link_options,
        ) as run:
            link = run.session.link
            firmware = getattr(link, "firmware", None) or firmware
            if on_open is not None:
                spec = on_open()
            fw = firmware

            def fw_now() -> float:
                """Simulator seconds (the fault's clock; the host's t_s has its own origin)."""
                return fw.t_s if fw is not None else tb.now_s()

            tb = run.session.timebase
            run.live.add_listener(lambda e: events.append((fw_now(), e)))
            run.live.add_batch_listener(lambda b, _r: last_host_t.__setitem__(0, float(b.t_s[-1])))
            run.watch_step(state.name)
            if state.vibration_pct:
                run.live.play(get_pattern("constant"), state.vibration_pct)
            end_s = spec.at_s + watch_s
            if spec.kind == "motor_slow_stop" and state.vibration_pct:
                await asyncio.sleep(tb.loop_s(spec.at_s + 0.2 - fw_now()))
                await run.live.user_stop()
            with contextlib.suppress(TimeoutError):
                async with tb.timeout(end_s - fw_now()):
                    while not run.live.link_error and run.live.failure is None:
                        await run.live.changed.wait()
                        run.live.changed.clear()
            # the folder as a crash would leave it now, before the recording is finished
            await asyncio.sleep(0)
            if run.recorder is not None:
                snapshot = read_recording(folder)
                on_disk = float(snapshot.t_s[-1]) if snapshot.t_s.size else 0.0
                # in host seconds: what a crash of this process now would lose
                result.recording_lag_s = round(tb.loop_s(last_host_t[0] - on_disk), 4)
            if run.live.failure is not None:
                result.error = f"{type(run.live.failure).__name__}: {run.live.failure}"
            result.vibrating_at_end = bool(firmware is not None and firmware.motor_on)
            run.finish({"fault": spec.kind})
    except MassagectlError as exc:
        # a one-line error of our own is how a run ends on a fault it cannot survive
        if "\n" in str(exc):
            result.error = f"multi-line {type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - the matrix reports it: never a traceback
        result.error = f"{type(exc).__name__}: {exc}"
    with contextlib.suppress(MassagectlError, OSError):
        result.recording_complete = read_recording(folder).complete
    if firmware is not None and firmware.motor_on:
        # a run that ended left the device on its own: it runs on (its deadman with it)
        firmware.advance(min(firmware.t_s + 1.0, spec.at_s + watch_s))
    _measure(result, spec, events, firmware, spec.at_s + watch_s)


def _measure(result: Result, spec: FaultSpec, events, firmware, end_s: float) -> None:
    for t_s, e in events:
        if isinstance(e, Stop | Fault | LinkLost) and t_s >= spec.at_s - 0.02:
            result.cause = str(getattr(e, "cause", None) or "link_lost")
            result.detect_s = round(t_s - spec.at_s, 4)
            break
    lost = any(isinstance(e, LinkLost) for _t, e in events)
    latched = any(isinstance(e, Stop | Fault) for _t, e in events)
    result.outcome = "ended" if lost else "paused" if latched else "goes on"
    if firmware is not None:
        for e in firmware.events:
            if e.name == "motor_off" and spec.at_s <= e.t_s < end_s - 0.002:
                result.off_s = round(e.t_s - spec.at_s, 4)
                break


KINDS = FAULT_KINDS


#: The CI subset besides every fault while vibrating: the cases where another state shows
#: something vibrating does not (a silent stream, a sensor fault, a lost link at rest).
SHORT_EXTRA = {
    ("stall", "neck hold"),
    ("disconnect", "idle"),
    ("keepalive_ignored", "neck hold"),
    ("brownout", "streaming"),
    ("saturation", "streaming"),
    ("flatline", "neck hold"),
    ("drop", "idle"),
}


def short_form() -> list[tuple[str, State]]:
    """The CI subset: every fault while vibrating, and SHORT_EXTRA."""
    return [(k, s) for k, s in all_cases() if s.name == "vibrating" or (k, s.name) in SHORT_EXTRA]


def all_cases() -> list[tuple[str, State]]:
    return [(k, s) for k in KINDS for s in STATES]


def fmt_budget(e: Expect | None) -> str:
    if e is None:
        return "n/a"
    parts = [(e.cause or "no stop").replace("|", " or "), e.outcome]
    if e.budget_s is not None:
        parts.append(f"off within {e.budget_s * 1000:.0f} ms")
    return ", ".join(parts)
