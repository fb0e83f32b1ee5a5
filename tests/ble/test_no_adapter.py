"""No Bluetooth stack and no Bumble transport (issue 20): ``scan``, ``pair`` and ``stream
ble://`` say in one line what is missing and the two ways out, and exit 2 (they printed a
55-line traceback: a FileNotFoundError from reaching the system D-Bus)."""

from __future__ import annotations

import pytest

from ui.cli import main


@pytest.mark.parametrize(
    "args",
    [("scan", "--timeout", "1"), ("pair", "MBALL"), ("stream", "ble://MBALL", "--duration", "1")],
    ids=["scan", "pair", "stream"],
)
def test_no_bluetooth_is_one_line_with_the_ways_out(args, monkeypatch, capsys):
    monkeypatch.delenv("MASSAGECTL_BLE", raising=False)
    # no system D-Bus, so no BlueZ, whatever this machine has
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/system_bus_socket")
    assert main(list(args)) == 2
    out, err = capsys.readouterr()
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"massagectl {args[0]}: error: no Bluetooth adapter to use"), line
    assert "--hci TRANSPORT" in line and "MASSAGECTL_BLE=bumble:TRANSPORT" in line
