"""Vibration patterns and the command coalescer."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device.control.vibration import PATTERN_NAMES, PATTERNS, CommandCoalescer, PatternPlayer


@given(name=st.sampled_from(PATTERN_NAMES), t_s=st.floats(0, 1e4, allow_nan=False))
def test_every_pattern_level_is_between_its_floor_and_one(name, t_s):
    p = PATTERNS[name]
    assert p.floor - 1e-12 <= p.level(t_s) <= 1.0 + 1e-12


def test_pattern_shapes():
    pulse = PATTERNS["pulse"]
    assert pulse.level(0.1) == 1.0 and pulse.level(0.5) == 0.0  # 0.8 s period, 50 % duty
    ramp = PATTERNS["ramp"]
    assert ramp.level(0.0) == pytest.approx(ramp.floor)
    assert ramp.level(ramp.period_s * 2) == 1.0
    wave = PATTERNS["wave"]
    assert wave.level(wave.period_s / 2) == pytest.approx(1.0)
    assert wave.level(0.0) == pytest.approx(wave.floor)


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, float]] = []
        self.loop = asyncio.get_running_loop()

    async def vibrate(self, pct: float, hz: int) -> None:
        self.sent.append(("vibrate", self.loop.time(), pct))

    async def stop(self) -> None:
        self.sent.append(("stop", self.loop.time(), 0.0))


async def test_coalescing_keeps_commands_under_the_rate_and_the_latest_value_wins():
    rec = _Recorder()
    c = CommandCoalescer(rec.vibrate, rec.stop, min_gap_s=0.05)
    t0 = rec.loop.time()
    for i in range(300):  # a request every ms for 0.3 s
        c.request(i / 10, 100)
        await asyncio.sleep(0.001)
    elapsed = rec.loop.time() - t0
    await c.flush()
    vibs = [s for s in rec.sent if s[0] == "vibrate"]
    assert len(vibs) <= elapsed / 0.05 + 2
    gaps = [b[1] - a[1] for a, b in zip(vibs, vibs[1:], strict=False)]
    assert min(gaps) >= 0.05 - 0.002
    assert vibs[-1][2] == pytest.approx(29.9)  # the last request went out
    assert c.coalesced > 250


async def test_stop_goes_out_at_once_and_cancels_a_pending_vibrate():
    rec = _Recorder()
    c = CommandCoalescer(rec.vibrate, rec.stop, min_gap_s=10.0)
    c.request(50, 100)  # sent now
    await asyncio.sleep(0)
    c.request(60, 100)  # pending behind a 10 s gap
    await c.stop()
    await asyncio.sleep(0.05)
    assert [s[0] for s in rec.sent] == ["vibrate", "stop"]
    assert rec.sent[0][2] == 50
    assert c.sent == (0.0, 0)


async def test_a_failed_send_is_raised_not_swallowed():
    async def broken(pct, hz):
        raise ConnectionError("link gone")

    async def stop():
        pass

    c = CommandCoalescer(broken, stop, min_gap_s=0.0)
    c.request(10, 100)
    with pytest.raises(ConnectionError):
        await c.flush()


async def test_player_caps_by_zone_and_silences_while_latched():
    rec = _Recorder()
    c = CommandCoalescer(rec.vibrate, rec.stop, min_gap_s=0.0)
    p = PatternPlayer(c)
    p.play(PATTERNS["constant"], 80.0, 100)
    assert p.update(0.0, cap_pct=30.0) == 30.0
    await c.flush()
    assert p.update(0.1, cap_pct=0.0) == 0.0  # a latched stop: cap 0
    await c.flush()
    assert [s[2] for s in rec.sent] == [30.0, 0.0]
