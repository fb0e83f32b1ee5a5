"""No Bluetooth stack and no Bumble transport (issue 20): ``scan``, ``pair`` and ``stream
ble://`` say in one line what is missing and the two ways out, and exit 2 (they printed a
55-line traceback)."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.helpers import MASSAGECTL


@pytest.mark.parametrize(
    "args",
    [("scan", "--timeout", "1"), ("pair", "MBALL"), ("stream", "ble://MBALL", "--duration", "1")],
    ids=["scan", "pair", "stream"],
)
def test_no_bluetooth_is_one_line_with_the_ways_out(args):
    env = {k: v for k, v in os.environ.items() if k != "MASSAGECTL_BLE"}
    # no system D-Bus, so no BlueZ, whatever this machine has
    env["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=/nonexistent/system_bus_socket"
    result = subprocess.run(
        [MASSAGECTL, *args], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert f"massagectl {args[0]}: error: no Bluetooth adapter to use" in line
    assert "--hci TRANSPORT" in line and "MASSAGECTL_BLE=bumble:TRANSPORT" in line
