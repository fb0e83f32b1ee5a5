"""Stream options a device cannot do: caught at the command line and again at the handshake,
a one-line error and exit 2, never a traceback, never a session waiting forever."""

from __future__ import annotations

import subprocess

import pytest

from device.errors import DeviceRefusedError, UsageError
from device.links import open_link
from device.links.base import Link, LinkState
from device.session.device_session import DeviceSession
from device.urls import parse_url
from firmware_bridge.messages import (
    MAX_SAMPLES_PER_BATCH,
    DeviceInfo,
    Hello,
    Nack,
    NackCode,
    SetStream,
)
from tests.helpers import MASSAGECTL


@pytest.mark.parametrize(
    "option, message",
    [
        (["--batch", "100"], f"--batch must be 1-{MAX_SAMPLES_PER_BATCH}"),
        (["--batch", "0"], f"--batch must be 1-{MAX_SAMPLES_PER_BATCH}"),
        (["--rate", "0"], "--rate must be 10-2000 Hz"),
        (["--rate", "5000"], "--rate must be 10-2000 Hz"),
    ],
)
def test_bad_stream_options_are_one_line_and_exit_2(option, message):
    # a real process with a deadline: --rate 0 used to stream nothing, forever
    result = subprocess.run(
        [MASSAGECTL, "stream", "sim://ball", *option],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("massagectl stream: error: ")
    assert message in result.stderr
    assert result.stdout == ""


def test_a_rate_the_device_does_not_advertise_is_one_line_and_exit_2():
    # within the command line's range, but the handheld streams at 10-1000 Hz only
    result = subprocess.run(
        [MASSAGECTL, "stream", "sim://handheld", "--rate", "1500", "--duration", "0.5"],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert "1500 Hz" in result.stderr and "10-1000 Hz" in result.stderr


@pytest.mark.parametrize("rate_hz", [5, 1500])
async def test_the_session_checks_the_rate_against_the_device_info(rate_hz):
    link = open_link("sim://handheld", speed=4.0)  # advertises 10-1000 Hz
    session = DeviceSession(link, rate_hz=rate_hz)
    with pytest.raises(UsageError, match=r"10-1000 Hz"):
        await session.start()
    assert session.info is not None and session.info.rate_max_hz == 1000
    assert link.firmware.rate_hz == 0  # no SetStream reached the device
    assert link.state is LinkState.CLOSED  # nothing left open behind a failed start


@pytest.mark.parametrize(
    "rate_hz, batch, message",
    [
        (1000, 0, f"must be 1-{MAX_SAMPLES_PER_BATCH}"),
        (1000, MAX_SAMPLES_PER_BATCH + 1, f"must be 1-{MAX_SAMPLES_PER_BATCH}"),
        (0, 10, "must be positive"),  # rate 0 stops the stream: batches would never come
    ],
)
def test_the_session_refuses_what_the_protocol_cannot_do(rate_hz, batch, message):
    with pytest.raises(UsageError, match=message):
        DeviceSession(open_link("sim://ball"), rate_hz=rate_hz, samples_per_batch=batch)


class _RefusingDevice(Link):
    """Advertises 10-2000 Hz, then refuses every SetStream (e.g. busy or a stricter limit)."""

    kind = "fake"

    def __init__(self) -> None:
        super().__init__(parse_url("sim://ball"))
        self.sent: list = []

    async def _open(self) -> None:
        pass

    async def _send(self, msg) -> None:
        self.sent.append(msg)
        if isinstance(msg, Hello):
            self._deliver(DeviceInfo(model="FAKE", rate_min_hz=10, rate_max_hz=2000))
        elif isinstance(msg, SetStream) and msg.rate_hz:
            self._deliver(Nack(cmd_seq=msg.seq, cmd_type=msg.TYPE, code=NackCode.OUT_OF_RANGE))

    async def _close(self) -> None:
        pass


async def test_a_device_that_refuses_the_stream_ends_the_start_cleanly():
    link = _RefusingDevice()
    session = DeviceSession(link, rate_hz=1000)
    with pytest.raises(DeviceRefusedError, match="SetStream: OUT_OF_RANGE"):
        await session.start()
    assert link.state is LinkState.CLOSED
    assert session._tasks == []  # the keepalive and the reader are gone
    # it was asked to stream and, on the way out, to stop
    assert [type(m).__name__ for m in link.sent][-2:] == ["Stop", "SetStream"]
