"""``plot`` on a force sensor over the software radio (issue 15): ``massagectl sim ble
--device progressor`` in its own process, the live window connected to it through bleak on
the Bumble backend (MASSAGECTL_BLE), showing the sensor's force in newtons, no motor."""

from __future__ import annotations

import pytest

from tests.ble.test_sensor_processes import PRESS_N, SENSORS, steady_scenario  # noqa: F401
from tests.helpers import MASSAGECTL, LineReader, spawn, stop
from tests.qt.test_live_window import redraws, until


@pytest.mark.parametrize("kind", ["progressor"])
def test_the_window_shows_a_force_sensor_over_the_radio(drive, monkeypatch, steady_scenario, kind):  # noqa: F811
    name, rate_hz, _tol = SENSORS[kind]
    sim = spawn(MASSAGECTL, "sim", "ble", "--device", kind, "--scenario", str(steady_scenario))
    try:
        hci = LineReader(sim).wait_for(r"^READY hci=(tcp-client:127\.0\.0\.1:\d+)$", 30).group(1)
        monkeypatch.setenv("MASSAGECTL_BLE", f"bumble:{hci}")

        async def body(window):
            c = window.controller
            await c.connect(f"ble://{name}")
            assert c.session.rate_hz == rate_hz and not c.session.has_motor
            await until(window, lambda: c.state.t_s > 1.0, "a second of force", 30)
            await redraws(window)
            assert c.state.filtered_n == pytest.approx(PRESS_N, abs=0.3)
            shown_n = float(window.readout.text().split()[0])  # " 22.3 N"
            assert shown_n == pytest.approx(PRESS_N, abs=0.3)
            assert f"{rate_hz} Hz" in window.status.text()

        drive(body, speed=1.0, timeout_s=60)
    finally:
        stop(sim)
