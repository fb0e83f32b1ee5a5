"""What every command that drives a device does before and around a session: check the URL
and --speed, screen the person, open the link and session, build the pipeline, and record.

Kept in one place so that ``routine``, ``vibrate`` and ``demo`` gate vibration the same way.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from device.config.profiles import find_profile
from device.control.pipeline_factory import live_pipeline as live_pipeline  # one factory
from device.recording.folder import Recorder, check_record_folder, session_meta
from device.screening.gate import ScreeningResult, ensure_screened
from device.session.device_session import DeviceSession
from device.session.reconnect import open_device_session
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


@contextlib.asynccontextmanager
async def open_session(prepared: Prepared) -> AsyncIterator[DeviceSession]:
    # the calibration stored at pairing; ble:// reconnects (device.session.reconnect, issue 5)
    async with open_device_session(prepared.url, speed=prepared.speed) as s:
        yield s


def start_recording(
    record_dir: str | None, session: DeviceSession, prepared: Prepared, **meta
) -> Recorder | None:
    if record_dir is None:
        return None
    screening = prepared.screening.to_record() if prepared.screening else None
    return Recorder.create(
        record_dir,
        session_meta(
            session, url=str(prepared.url), screening=screening, profile=prepared.profile, **meta
        ),
    )
