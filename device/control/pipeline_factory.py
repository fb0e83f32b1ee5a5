"""The force pipeline of a live session, built in one place for every face.

``live_pipeline(session, zone)``: the session's stream rate, its *initial* calibration (the
one stored at pairing, else the device's factory one), the zone (neck_back unless told) and
drift tracking on. The command line (``stream``, ``routine``, ``vibrate``, ``demo``) and the
live window all build theirs here, so they judge force alike. From then on the pipeline owns
the calibration in use (``apply_device_tare``, ``auto_zero``, drift tracking); the session's
stays as it started.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dsp.pipeline import ForcePipeline
from dsp.zones import Zone, get_zone

if TYPE_CHECKING:
    from device.session.device_session import DeviceSession
    from device.session.reconnect import ReconnectingSession


def live_pipeline(
    session: DeviceSession | ReconnectingSession, zone: Zone | None = None
) -> ForcePipeline:
    """The pipeline for a live, started ``session``: ``zone`` (neck_back unless told), the
    session's rate and initial calibration, drift tracking on."""
    calibration = session.calibration
    if calibration is None:
        raise RuntimeError(f"{session.link.url}: session not started (no calibration yet)")
    return ForcePipeline(session.rate_hz, calibration, zone or get_zone(None), track_drift=True)
