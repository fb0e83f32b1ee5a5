"""The simulated ADC at one rate (issue 13): an integrating converter (HX711-like) averages
its conversion period, so a 150 Hz motor leak is attenuated by its sinc response instead of
aliasing at full strength into the pressing band; ``sim://ball?rate=R`` offers only R."""

from __future__ import annotations

import numpy as np
import pytest

from device.errors import BadUrlError
from device.session.device_session import batch_size_for, rate_for
from device.urls import parse_url
from firmware_bridge.messages import DeviceInfo, ForceBatch, Hello, SetLimit, SetStream, Vibrate
from simulators.devices import make_firmware
from simulators.scenario import (
    AdcConfig,
    MotorConfig,
    PressPoint,
    Scenario,
    ScenarioError,
    SensorConfig,
    parse_scenario,
)


def _leak_spread_n(kind: str, rate_hz: int, motor_hz: int = 150) -> float:
    """Peak-to-peak of the force read at a steady 6 N press with the motor at full drive
    (noise and drift off), in newtons."""
    sc = Scenario(
        press=(PressPoint(0.0, 6.0),),
        sensor=SensorConfig(noise_n=0.0, drift_n_per_min=0.0),
        motor=MotorConfig(leak_peak_n=3.0, detune_pct=4.0, spinup_s=0.0, brake_s=0.0),
        adc=AdcConfig(kind=kind),
    )
    fw = make_firmware("ball", sc, rate_hz=rate_hz)
    fw.handle(SetStream(1, rate_hz=rate_hz, samples_per_batch=1), 0.0)
    fw.handle(SetLimit(2, limit_mn=50_000), 0.0)  # protocol 2: no vibration without a limit
    fw.handle(Vibrate(3, 1000, motor_hz), 0.0)
    raw = []
    for i in range(1, 40):  # keep the deadman fed
        out = fw.handle(Vibrate(3 + i, 1000, motor_hz), i * 0.1)
        raw += [s for m in out if isinstance(m, ForceBatch) for s in m.samples]
    f = (np.array(raw[rate_hz // 2 :]) - sc.sensor.offset_counts) / sc.sensor.scale_counts_per_n
    assert abs(float(np.median(f)) - 6.0) < 0.3
    return float(f.max() - f.min())


@pytest.mark.parametrize("rate_hz", [10, 80])
def test_an_integrating_adc_attenuates_the_motor_by_its_sinc(rate_hz):
    held = _leak_spread_n("sample_hold", rate_hz)
    integrated = _leak_spread_n("integrating", rate_hz)
    assert held > 4.0  # the 3 N peak leak aliased at full strength
    gain = abs(np.sinc(150 * 1.04 / rate_hz))
    assert integrated < 2 * 3.0 * gain + 0.1  # within the sinc response (+ rounding)
    assert integrated < held / 4


def test_auto_adc_integrates_at_80_hz_and_under_only():
    assert AdcConfig().integrates_at(10) and AdcConfig().integrates_at(80)
    assert not AdcConfig().integrates_at(500)
    assert AdcConfig(kind="integrating").integrates_at(1000)
    assert not AdcConfig(kind="sample_hold").integrates_at(10)


def test_a_ball_at_one_rate_offers_only_that_rate():
    fw = make_firmware("ball", None, rate_hz=80)
    (info,) = [m for m in fw.handle(Hello(0), 0.0) if isinstance(m, DeviceInfo)]
    assert (info.rate_min_hz, info.rate_max_hz) == (80, 80)
    assert rate_for(info, None) == 80  # the host streams at the device's rate
    assert batch_size_for(80) == 1 and batch_size_for(10) == 1
    assert batch_size_for(500) == 10 and batch_size_for(1000) == 10
    assert batch_size_for(1000, 5) == 5
    fw.handle(SetStream(1, rate_hz=80, samples_per_batch=1), 0.0)
    assert fw.integrating_adc


def test_scenario_and_url_pick_the_adc_and_the_rate():
    sc = parse_scenario({"adc": {"kind": "sample_hold", "rate_hz": 10}})
    assert sc.adc == AdcConfig("sample_hold", 10)
    with pytest.raises(ScenarioError, match="adc.kind"):
        parse_scenario({"adc": {"kind": "sigma"}})
    with pytest.raises(ScenarioError, match="rate_hz"):
        parse_scenario({"adc": {"rate_hz": 5}})
    assert parse_url("sim://ball?rate=80").params["rate"] == "80"
    for bad in ("sim://ball?rate=5", "sim://ball?rate=fast", "sim://ball?rate=4000"):
        with pytest.raises(BadUrlError, match="rate"):
            parse_url(bad)


@pytest.mark.parametrize(("rate_hz", "batch"), [(10, 1), (80, 1), (1000, 10)])
async def test_the_session_streams_at_the_balls_rate_in_batches_of_at_most_20ms(rate_hz, batch):
    from device.links import open_link
    from device.session.device_session import DeviceSession

    async with DeviceSession(open_link(f"sim://ball?rate={rate_hz}", speed=10)) as session:
        assert (session.rate_hz, session.samples_per_batch) == (rate_hz, batch)
        async for b in session.batches():
            assert b.rate_hz == rate_hz and len(b.raw_counts) == batch
            break
