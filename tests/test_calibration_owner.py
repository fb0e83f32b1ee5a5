"""One owner for calibration: the dsp pipeline alone turns raw counts into newtons.

Batches carry raw counts and times; each batch is converted once (by the pipeline), and a
face without a routine (``stream``) shows the pipeline's newtons; the session hands out its
initial calibration and never changes it; a device tare reaches the pipeline through
``apply_device_tare`` and the host's auto-zero after a rest through ``auto_zero``; the live
window's pipeline tracks drift as the command line's does (both come from one factory,
``device.control.pipeline_factory.live_pipeline``). On simulated balls, virtual time.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from device.control import pipeline_factory
from device.control.run import live_pipeline  # what every CLI face runs on
from device.control.supervised import SupervisedSession
from device.links import open_link
from device.recording.folder import read_recording
from device.routine.routines import parse_routine
from device.routine.runner import RoutineRunner
from device.session.device_session import DeviceSession, SampleBatch
from dsp.calibration import Calibration
from dsp.events import CommandSent
from dsp.pipeline import ForcePipeline
from dsp.zones import get_zone
from tests.helpers import collect_batches
from ui.cli import main
from ui.live_controller import LiveController

pytestmark = pytest.mark.virtual_time

SPEED = 20.0
#: the simulated ball's factory zero (simulators.scenario.SensorConfig)
FACTORY_OFFSET = 12_000


def _scenario(tmp_path, text: str) -> str:
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    return str(path)


def test_a_batch_carries_raw_counts_and_times_only():
    names = {f.name for f in dataclasses.fields(SampleBatch)}
    assert "raw_counts" in names and "t_s" in names
    assert "force_n" not in names


async def test_each_batch_is_converted_to_newtons_once(monkeypatch):
    calls = 0
    real = Calibration.to_newtons

    def counting(self, raw_counts):
        nonlocal calls
        calls += 1
        return real(self, raw_counts)

    monkeypatch.setattr(Calibration, "to_newtons", counting)
    batches = 0
    async with DeviceSession(open_link("sim://ball", speed=SPEED)) as session:
        live = SupervisedSession(
            session, ForcePipeline(session.rate_hz, session.calibration, get_zone(None))
        )

        def count(_batch, _result):
            nonlocal batches
            batches += 1

        live.add_batch_listener(count)
        live.start()
        while batches < 50:
            await live.changed.wait()
            live.changed.clear()
        await live.close()
    assert calls == batches


async def test_a_session_tare_reaches_the_pipeline_only_through_apply_device_tare(tmp_path):
    path = _scenario(tmp_path, "press = [{t_s = 0.0, force_n = 2.0}]\n[sensor]\nnoise_n = 0.01\n")
    c = LiveController(speed=SPEED)
    applied: list[float] = []
    try:
        await c.connect(f"sim://ball?scenario={path}")
        session, pipeline = c.session, c.pipeline
        initial = session.calibration
        assert initial.offset_counts == FACTORY_OFFSET
        real_apply = pipeline.apply_device_tare

        def spy(offset_counts):
            applied.append(offset_counts)
            return real_apply(offset_counts)

        pipeline.apply_device_tare = spy
        assert await c.wait_until(lambda: c.state.t_s > 0.5, 20)
        assert c.state.filtered_n == pytest.approx(2.0, abs=0.1)
        await c.tare()
        assert await c.wait_until(lambda: c.state.t_s > 1.2, 20)
        # the device's new zero went to the pipeline, through its explicit operation
        assert applied and applied[0] == pytest.approx(FACTORY_OFFSET + 2_000, abs=30)
        # (drift tracking, on in the window, has refined it by a fraction of a count since)
        assert pipeline.calibration.offset_counts == pytest.approx(applied[0], abs=2)
        assert c.state.filtered_n == pytest.approx(0.0, abs=0.1)
        # the session still hands out the calibration it started with, untouched
        assert session.calibration is initial and initial.offset_counts == FACTORY_OFFSET
        assert pipeline.calibration is not session.calibration
        # a calibration is a value: nobody can change one behind the pipeline's back
        with pytest.raises(dataclasses.FrozenInstanceError):
            initial.offset_counts = 0.0  # type: ignore[misc]
        with pytest.raises(AttributeError):
            pipeline.calibration = initial  # type: ignore[misc]
    finally:
        await c.disconnect()


async def test_the_session_tare_returns_the_offset_and_changes_nothing(tmp_path):
    path = _scenario(tmp_path, "press = [{t_s = 0.0, force_n = 2.0}]\n")
    async with DeviceSession(open_link(f"sim://ball?scenario={path}", speed=SPEED)) as session:
        initial = session.calibration
        await collect_batches(session, 0.3)
        offset = await session.tare()
        assert offset == pytest.approx(FACTORY_OFFSET + 2_000, abs=50)
        assert session.calibration is initial and initial.offset_counts == FACTORY_OFFSET


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
    (zeroed,) = [e for e in events if isinstance(e, CommandSent) and e.command == "auto_zero"]
    assert runner.auto_zeros == 1
    # the zero the pipeline measures from is the one announced: 0.3 N/min of drift for ~4.5 s
    assert pipeline.calibration.offset_counts == zeroed.offset_counts
    assert pipeline.calibration.offset_counts == pytest.approx(FACTORY_OFFSET + 22, abs=8)
    assert session.calibration is initial and initial.offset_counts == FACTORY_OFFSET


def test_stream_shows_the_newtons_it_records(tmp_path, capsys):
    """``stream --json --record``: the forces printed are the recorded force_n column, the one
    pipeline's (the session converts nothing)."""
    folder = tmp_path / "rec"
    args = ["stream", "sim://ball?speed=20", "--json", "--duration", "1", "--record", str(folder)]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    shown = np.array([f for line in lines for f in json.loads(line)["force_n"]])
    recorded = read_recording(folder).force_n
    assert shown.size == recorded.size > 900
    np.testing.assert_allclose(shown, recorded, atol=1e-4)


@pytest.fixture
def pressed_recording(tmp_path):
    """A second of a ball pressed at 2 N from the start, recorded by ``stream --record``."""
    scenario = _scenario(tmp_path, "press = [{t_s = 0.0, force_n = 2.0}]\n")
    folder = tmp_path / "pressed"
    url = f"sim://ball?scenario={scenario}&speed=20"
    assert main(["stream", url, "--duration", "1", "--record", str(folder)]) == 0
    return folder


async def test_a_tare_on_a_replay_zeroes_on_what_it_played(pressed_recording):
    """A replayed device answers Tare as the firmware does (the mean of the last samples it
    sent), and the offset goes to the pipeline like any device's."""
    async with DeviceSession(open_link(f"replay://{pressed_recording}?speed=max")) as session:
        initial = session.calibration
        pipeline = live_pipeline(session)
        forces = []
        async for batch in session.batches():
            forces.append(pipeline.on_batch(batch.t_s, batch.raw_counts, batch.t_host_s).force_n)
            if len(forces) == 20:
                assert float(forces[-1].mean()) == pytest.approx(2.0, abs=0.1)
                offset = await session.tare()
                assert offset == pytest.approx(FACTORY_OFFSET + 2_000, abs=50)
                pipeline.apply_device_tare(offset)
        assert float(forces[-1].mean()) == pytest.approx(0.0, abs=0.1)
        assert session.calibration is initial and initial.offset_counts == FACTORY_OFFSET
