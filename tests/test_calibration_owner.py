"""One owner for calibration: the dsp pipeline owns the calibration in use.

The host's auto-zero after a rest goes through the pipeline and changes nothing else; the
live window's pipeline tracks drift as the command line's does (both come from one factory,
``device.control.pipeline_factory.live_pipeline``). On simulated balls, virtual time.
"""

from __future__ import annotations

import numpy as np
import pytest

from device.control import pipeline_factory
from device.links import open_link
from device.routine.routines import parse_routine
from device.routine.runner import RoutineRunner
from device.session.device_session import DeviceSession
from dsp.calibration import Calibration
from dsp.pipeline import ForcePipeline
from dsp.zones import get_zone
from ui.live_controller import LiveController
from ui.session_setup import live_pipeline

pytestmark = pytest.mark.virtual_time

SPEED = 25.0
#: the simulated ball's factory zero (simulators.scenario.SensorConfig)
FACTORY_OFFSET = 12_000


def _scenario(tmp_path, text: str) -> str:
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    return str(path)


#: A ball whose zero drifts by 0.3 N a minute, nothing on it: after 90 s an untracked zero is
#: 0.45 N off; tracking (30 s time constant) lags the ramp by at most 0.3 N/min x 30 s.
DRIFTING = "[sensor]\nnoise_n = 0.02\ndrift_n_per_min = 0.3\n"
DRIFT_S = 90.0
UNTRACKED_N = 0.3 * DRIFT_S / 60.0


def _assert_followed_the_drift(pipeline: ForcePipeline, initial: Calibration, filtered_n: float):
    assert filtered_n < 0.2 < UNTRACKED_N, filtered_n
    moved_counts = pipeline.calibration.offset_counts - initial.offset_counts
    assert moved_counts > 0.5 * UNTRACKED_N * initial.scale_counts_per_n, moved_counts
    assert initial.offset_counts == FACTORY_OFFSET  # the session's calibration never moved


async def test_the_live_window_pipeline_tracks_a_slow_zero_drift(tmp_path):
    path = _scenario(tmp_path, DRIFTING)
    c = LiveController(speed=SPEED, rate_hz=200)
    try:
        await c.connect(f"sim://ball?scenario={path}")
        assert await c.wait_until(lambda: c.state.t_s > DRIFT_S, 60)
        _assert_followed_the_drift(c.pipeline, c.session.calibration, c.state.filtered_n)
    finally:
        await c.disconnect()


async def test_the_command_line_pipeline_tracks_the_same_drift(tmp_path):
    path = _scenario(tmp_path, DRIFTING)
    async with DeviceSession(
        open_link(f"sim://ball?scenario={path}", speed=SPEED), rate_hz=200
    ) as session:
        assert live_pipeline is pipeline_factory.live_pipeline  # the command line's
        pipeline = live_pipeline(session)
        filtered = np.zeros(1)
        async for batch in session.batches():
            filtered = pipeline.on_batch(batch.t_s, batch.raw_counts, batch.t_host_s).filtered_n
            if batch.t_s[-1] >= DRIFT_S:
                break
        _assert_followed_the_drift(pipeline, session.calibration, float(filtered[-1]))


REST_ROUTINE = """
format = 1
name = "rests"
title = "Two stretches and a rest"
summary = "test"
mode = "self"
[[steps]]
id = "stretch"
kind = "stretch"
title = "Stretch"
instruction = "Lean."
hold_min_s = 2
hold_max_s = 3
release_s = 2
repetitions = 2
rest_s = 2
"""


async def test_the_runners_auto_zero_after_a_rest_goes_through_the_pipeline(tmp_path):
    path = _scenario(tmp_path, DRIFTING)
    events: list[dict] = []
    async with DeviceSession(open_link(f"sim://ball?scenario={path}", speed=SPEED)) as session:
        initial = session.calibration
        pipeline = ForcePipeline(session.rate_hz, initial, get_zone(None))
        runner = RoutineRunner(
            session, parse_routine(REST_ROUTINE, "rests.toml"), pipeline, unattended=True
        )
        runner.add_listener(events.append)
        await runner.run()
    (zeroed,) = [e for e in events if e["detail"].get("command") == "auto_zero"]
    assert runner.auto_zeros == 1
    # the zero the pipeline measures from is the one announced: 0.3 N/min of drift for ~4.5 s
    assert pipeline.calibration.offset_counts == zeroed["detail"]["offset_counts"]
    assert pipeline.calibration.offset_counts == pytest.approx(FACTORY_OFFSET + 22, abs=8)
    assert session.calibration is initial and initial.offset_counts == FACTORY_OFFSET
