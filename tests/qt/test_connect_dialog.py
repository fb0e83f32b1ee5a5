"""The window's connect dialog on a machine without Bluetooth (issue 20): its Scan ends
with the CLI's one-line message (what is missing, the two ways out) instead of
"scanning..." for ever."""

from __future__ import annotations

import asyncio

from ui.connect_dialog import ConnectDialog


def test_scan_without_a_bluetooth_stack_says_what_is_missing(qloop, qtbot, monkeypatch):
    monkeypatch.delenv("MASSAGECTL_BLE", raising=False)
    # no system D-Bus, so no BlueZ, whatever this machine has
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/system_bus_socket")
    dialog = ConnectDialog()
    qtbot.addWidget(dialog)

    async def body() -> None:
        dialog.scan()
        assert dialog.note.text() == "scanning..."
        assert dialog._scan_task is not None
        await asyncio.wait({dialog._scan_task}, timeout=20)
        assert dialog._scan_task.done()

    qloop.run_until_complete(body())
    text = dialog.note.text()
    assert text.startswith("scan failed: no Bluetooth adapter to use"), text
    assert "--hci" in text and "MASSAGECTL_BLE=bumble:" in text
    assert dialog.scan_button.isEnabled()
