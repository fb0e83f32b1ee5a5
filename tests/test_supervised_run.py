"""The supervised run (device/control/run.py): one wiring and one failure policy for every
face. Virtual time: device time is exact whatever the machine's load."""

from __future__ import annotations

import pytest

import ui.commands.vibrate as vibrate_cmd
from device.control.run import supervised_run
from device.control.vibration import get_pattern
from device.errors import DeviceRefusedError, InputFileError, UsageError
from device.recording.folder import SAMPLES_FILE, read_recording
from dsp.events import Fault
from dsp.zones import get_zone
from tests.helpers import FullDiskFile, vibrate_args

pytestmark = pytest.mark.virtual_time


async def test_a_recording_that_cannot_be_written_stops_vibration_and_ends_the_run(tmp_path):
    folder = tmp_path / "rec"
    async with supervised_run(
        "sim://handheld", zone=get_zone("upper_back"), record_dir=folder
    ) as run:
        live, fw = run.live, run.session.link.firmware
        faults: list[Fault] = []
        live.add_listener(lambda e: isinstance(e, Fault) and faults.append(e))
        live.play(get_pattern("constant"), 50.0)
        while live.state.t_s < 2.0:
            await live.changed.wait()
            live.changed.clear()
        assert fw.motor_on
        recorder = run.recorder
        recorder._samples_fh = FullDiskFile(recorder._samples_fh)  # the disk fills up
        failed_at_s = live.state.t_s
        while not faults:  # the next timed flush fails: the loop fails closed
            await live.changed.wait()
            live.changed.clear()
        assert live.failure is not None and "No space left" in (faults[0].error or "")
        assert not fw.motor_on
        stop_s = next(e.t_s for e in fw.events if e.name == "stop_received")
        # the recorder flushes every FLUSH_INTERVAL_S (0.5 s): Stop follows within that
        assert stop_s - failed_at_s <= 0.6
    assert isinstance(live.failure, InputFileError)
    assert str(folder / SAMPLES_FILE) in str(live.failure)  # the message names the file
    assert run.recording_error is live.failure
    # what was written stays readable: samples up to the failure, the run's first events
    rec = read_recording(folder)
    assert 0 < rec.t_s[-1] <= failed_at_s + 0.6
    assert "No space left" in rec.meta["error"]


@pytest.mark.parametrize(("protocol", "command"), [(2, "Vibrate"), (3, "PlayPattern")])
async def test_a_vibrate_the_device_refuses_ends_the_run_with_the_refusal(
    capsys, protocol, command
):
    """A device that refuses the Vibrate (Nack; on a version 3 device the PlayPattern) ends
    the run with the refusal. Before, the ``vibrate --hz 400`` this came from printed "done
    ... vibration 1.0 s" with exit 0 and the motor never ran. (The command now refuses 400 Hz
    itself: here the frequency is set behind the check, as a device that refuses what it
    announced would.)"""
    url = f"sim://ball?protocol={protocol}"
    async with supervised_run(url, zone=get_zone("upper_back")) as run:
        fw = run.session.link.firmware
        run.live.motor_hz = 400
        run.live.play(get_pattern("constant"), 20.0)
        while run.live.failure is None:
            await run.live.changed.wait()
            run.live.changed.clear()
        assert isinstance(run.live.failure, DeviceRefusedError)
        assert f"{command}: OUT_OF_RANGE" in str(run.live.failure)
        assert not fw.motor_on


async def test_vibrate_refuses_a_frequency_the_device_cannot_play_before_vibrating(capsys):
    """``vibrate --hz 400`` on a 100-250 Hz ball: one clear error naming the range, and no
    Vibrate reaches the device (failed before: the device's Nack was the first word)."""
    args = vibrate_args(duration=1.0, hz=400)
    with pytest.raises(UsageError, match=r"400 Hz is outside .*\(\d+-\d+ Hz\)"):
        await vibrate_cmd.run(args)
    assert "done" not in capsys.readouterr().out
    for bad in (-1, 70000):
        with pytest.raises(UsageError, match="--hz"):
            await vibrate_cmd.run(vibrate_args(hz=bad))


async def test_vibrate_ends_when_the_first_batch_holds_no_samples(monkeypatch, capsys):
    """A device whose first ForceBatch is empty: the run goes on with the batches that follow
    (failed before: ``vibrate`` waited forever for a first sample after the empty batch had
    failed the loop and sent Stop)."""
    from firmware_bridge.messages import ForceBatch
    from simulators.firmware import Firmware

    real_set_stream = Firmware._set_stream

    def set_stream_empty_first(self, rate_hz, per_batch, t_s):
        real_set_stream(self, rate_hz, per_batch, t_s)
        if rate_hz:
            self._out.append(ForceBatch(self._batch_seq, self.device_us(t_s), rate_hz, ()))
            self._batch_seq = (self._batch_seq + 1) & 0xFFFF

    monkeypatch.setattr(Firmware, "_set_stream", set_stream_empty_first)
    assert await vibrate_cmd.run(vibrate_args(duration=1.0)) == 0
    assert "done: constant for 1 s" in capsys.readouterr().out
