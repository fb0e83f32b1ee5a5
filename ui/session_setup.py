"""What every command that drives a device does before a session: check the URL and
--speed, the profile and the record folder, and screen the person (before anything connects).
The session itself is ``device.control.run``'s supervised run (``open_run``), which checks
the screening clearance again below the faces.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field

from device.config.profiles import find_profile
from device.control.run import SupervisedRun, supervised_run
from device.recording.folder import check_record_folder
from device.screening.gate import ScreeningResult, ensure_screened
from device.session.reconnect import DEFAULT_RECONNECT_TIMEOUT_S
from device.timebase import check_face_speed
from device.urls import DeviceUrl, parse_url
from dsp.zones import DEFAULT_ZONES, Zone
from ui.screening_prompt import screen_before_session


@dataclass
class Prepared:
    url: DeviceUrl
    #: the --speed option (None: the URL's ?speed=K, else 1)
    speed: float | None
    screening: ScreeningResult | None
    #: the zone table in force (defaults, or a profile's) and the profile's record
    zones: dict[str, Zone] = field(default_factory=dict)
    profile: dict | None = None


def zone_table(profile_path: str | None) -> tuple[dict[str, Zone], dict | None]:
    """The zones for a session: ``--profile FILE``, else the default profile in the config
    folder if there is one, else the defaults. Capping warnings go to stderr."""
    profile = find_profile(profile_path)
    if profile is None:
        return dict(DEFAULT_ZONES), None
    for warning in profile.warnings:
        print(f"profile: {warning}", file=sys.stderr)
    return profile.zones, profile.to_meta()


def prepare(
    device: str,
    *,
    speed: float | None = None,
    screening_file: str | None = None,
    simulated_user: bool = False,
    record_dir: str | None = None,
    profile_path: str | None = None,
) -> Prepared:
    """Check the arguments and run the screening gate (before anything connects)."""
    url = parse_url(device)
    zones, profile = zone_table(profile_path)
    check_face_speed(url, speed)  # a bad --speed is refused before anything connects
    if record_dir is not None:
        check_record_folder(record_dir)
    screening = screen_before_session(
        device_is_simulated=url.is_simulated,
        screening_file=screening_file,
        simulated_user=simulated_user,
    )
    ensure_screened(screening, device_is_simulated=url.is_simulated)
    return Prepared(url, speed, screening, zones, profile)


def open_run(
    prepared: Prepared,
    *,
    zone: Zone | None = None,
    record_dir: str | None = None,
    motor_hz: int = 0,
    reconnect_timeout_s: float = DEFAULT_RECONNECT_TIMEOUT_S,
    lsl: bool = False,
    lsl_wait_s: float = 0.0,
    **record_meta,
) -> contextlib.AbstractAsyncContextManager[SupervisedRun]:
    """The supervised run (``device.control.run``) for a prepared face: its URL and speed,
    its screening (the clearance for vibration), the zone, and a recording if asked."""
    return supervised_run(
        str(prepared.url),
        zone=zone,
        screening=prepared.screening,
        speed=prepared.speed,
        motor_hz=motor_hz,
        reconnect_timeout_s=reconnect_timeout_s,
        record_dir=record_dir,
        record_meta={"url": str(prepared.url), "profile": prepared.profile, **record_meta},
        lsl=lsl,
        lsl_wait_s=lsl_wait_s,
    )


def add_lsl_options(parser) -> None:
    """``--lsl`` and ``--lsl-wait S`` (docs/lsl.md)."""
    parser.add_argument(
        "--lsl",
        action="store_true",
        help=(
            "publish the force (raw and filtered, N) and every event on Lab Streaming Layer "
            "outlets for LabRecorder (needs the lsl extra; docs/lsl.md)"
        ),
    )
    parser.add_argument(
        "--lsl-wait",
        type=float,
        default=0.0,
        metavar="S",
        help="with --lsl: wait up to S seconds for a consumer (LabRecorder) before starting",
    )


def check_lsl_options(args) -> None:
    """Refuse bad --lsl options, and --lsl without the extra, before any device is opened."""
    import math

    from device.errors import UsageError

    args.lsl = getattr(args, "lsl", False)  # a Namespace built by hand has neither
    args.lsl_wait = getattr(args, "lsl_wait", 0.0)
    if not math.isfinite(args.lsl_wait) or args.lsl_wait < 0:
        raise UsageError("--lsl-wait must be a number of seconds, 0 or more")
    if args.lsl_wait and not args.lsl:
        raise UsageError("--lsl-wait goes with --lsl")
    if args.lsl:
        from device.recording.lsl import require_lsl

        require_lsl()
