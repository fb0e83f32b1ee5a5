"""``massagectl vibrate``: play a vibration pattern by hand, with the supervisor watching."""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
import time

from device.control.vibration import PATTERN_NAMES, get_pattern
from device.errors import UsageError
from device.session.device_session import no_motor_message
from dsp.events import Event, Fault, LinkLost, LinkRestored, StepStarted, Stop, describe_cause
from dsp.zones import DEFAULT_ZONES, get_zone
from ui.commands.recordings import add_record_option, record_folder
from ui.link_notice import (
    COUNTDOWN_EVERY_S,
    LinkNotice,
    add_reconnect_option,
    check_reconnect_timeout,
)
from ui.session_setup import (
    add_lsl_options,
    check_lsl_options,
    open_run,
    prepare,
    zone_table,
)


def register(sub) -> None:
    p = sub.add_parser(
        "vibrate",
        help="play a vibration pattern by hand, supervised",
        description=(
            "Play a vibration pattern on a device while the safety supervisor watches the "
            "force live, with the same stop rules as a routine: the zone's limit, its "
            "vibration cap, rate of rise, stale stream and sensor faults. A stop ends it. "
            "A real device needs the screening questions answered first. Ctrl-C stops."
        ),
    )
    p.add_argument("url", metavar="URL", help="device URL, e.g. sim://ball")
    p.add_argument("pattern", choices=PATTERN_NAMES, help="vibration pattern")
    p.add_argument(
        "--intensity",
        type=float,
        default=30.0,
        metavar="PCT",
        help="intensity in percent (capped by the zone; default 30)",
    )
    p.add_argument(
        "--zone",
        default="neck_back",
        choices=sorted(DEFAULT_ZONES),
        help="where the device is held (default neck_back)",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds of device time (default 10)",
    )
    p.add_argument(
        "--hz",
        type=int,
        default=0,
        metavar="F",
        help="motor frequency (default: the device's usual one)",
    )
    p.add_argument("--screening", metavar="FILE", help="screening answers (TOML or JSON)")
    p.add_argument("--profile", metavar="FILE", help="zone profile that lowers limits")
    add_record_option(p)
    add_lsl_options(p)
    add_reconnect_option(p)
    p.add_argument(
        "--speed",
        type=float,
        default=None,
        metavar="K",
        help="simulation speed (sim:// only; default: the URL's ?speed=K, else 1)",
    )
    p.set_defaults(func=run)


async def run(args) -> int:
    args.record = record_folder(args.record, f"vibrate-{args.pattern}")
    if not math.isfinite(args.intensity) or not 0 < args.intensity <= 100:
        raise UsageError("--intensity must be between 0 and 100 %")
    if not math.isfinite(args.duration) or args.duration <= 0:
        raise UsageError("--duration must be a positive number of seconds")
    if not 0 <= args.hz <= 0xFFFF:
        raise UsageError("--hz must be 0 (the device's usual frequency) or a frequency in Hz")
    check_reconnect_timeout(args.reconnect_timeout)
    check_lsl_options(args)
    zone = get_zone(args.zone, zone_table(args.profile)[0])
    if zone.vibration_cap_pct <= 0:
        raise UsageError(f"no vibration is allowed on {zone.name} ({zone.meaning})")
    prepared = prepare(
        args.url,
        speed=args.speed,
        screening_file=args.screening,
        record_dir=args.record,
        profile_path=args.profile,
    )
    stops: list[Stop | Fault | LinkLost] = []
    notice = LinkNotice(args.reconnect_timeout)
    #: the link came back: vibration resumes once the supervisor allows a re-arm
    resume = False
    async with open_run(
        prepared,
        zone=zone,
        record_dir=args.record,
        motor_hz=args.hz,
        reconnect_timeout_s=args.reconnect_timeout,
        lsl=args.lsl,
        lsl_wait_s=args.lsl_wait,
        pattern=args.pattern,
    ) as run:
        live = run.live
        if not live.has_motor:
            raise UsageError(no_motor_message(run.session.info))

        def on_event(e: Event) -> None:
            nonlocal resume
            notice.on_event(e)
            if isinstance(e, LinkLost) and e.reconnecting:
                resume = False  # the motor is off; the session is getting the link back
            elif isinstance(e, LinkRestored):
                resume = True
            elif isinstance(e, Stop | Fault | LinkLost):
                stops.append(e)

        live.add_listener(on_event)
        live.emit(
            StepStarted(
                t_s=live.state.t_s,
                force_n=live.state.filtered_n,
                step="vibrate",
                step_kind="vibrate",
                zone=zone.name,
                limit_n=zone.limit_n,
                band_n=None,
                side="none",
                vibration_pct=args.intensity,
                pattern=args.pattern,
                motor_hz=live.motor_hz,
                hold_min_s=None,
                hold_max_s=None,
                release_s=None,
            )
        )
        capped = min(args.intensity, zone.vibration_cap_pct)
        if capped < args.intensity:
            print(f"intensity capped at {capped:g} % for {zone.name}", file=sys.stderr)
        pattern = get_pattern(args.pattern)
        live.play(pattern, args.intensity)
        try:
            # the first samples (a stop, a fault or a lost link ends the wait too)
            while (
                live.state.t_s == 0.0
                and live.link_error is None
                and live.failure is None
                and not stops
            ):
                await live.changed.wait()
                live.changed.clear()
            end_s = live.state.t_s + args.duration
            last_print = 0.0
            while live.state.t_s < end_s and not stops and live.failure is None:
                if live.link_error is not None:
                    raise live.link_error
                live.changed.clear()
                with contextlib.suppress(TimeoutError):  # no batches while the link is down
                    await asyncio.wait_for(live.changed.wait(), COUNTDOWN_EVERY_S)
                notice.tick()
                if resume and live.rearm():
                    resume = False
                    live.play(pattern, args.intensity)
                if notice.reconnecting:
                    continue
                if time.monotonic() - last_print >= 0.5:
                    last_print = time.monotonic()
                    st = live.state
                    print(
                        f"force {st.filtered_n:6.2f} N  vibration {st.vibration_pct:4.0f} %  "
                        f"(limit {zone.limit_n:g} N)",
                        flush=True,
                    )
        finally:
            await live.close()  # Stop first, then the recording is completed
            run.finish({"stops": [e.to_dict() for e in stops]})
        if live.failure is not None:
            raise live.failure
    if stops:
        first = stops[0]
        print(f"stopped: {describe_cause(first.cause) or 'fault'}", file=sys.stderr)
        return 1
    vibration_s = live.pipeline.supervisor.vibration_s
    print(f"done: {args.pattern} for {args.duration:g} s, vibration {vibration_s:.1f} s")
    return 0
