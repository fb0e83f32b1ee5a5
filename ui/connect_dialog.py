"""Choose a device for the live window: type a URL, pick a simulated one, or scan for BLE
devices that offer the massagectl service and pick one (it becomes ``ble://ADDRESS``)."""

from __future__ import annotations

import asyncio
import logging

from PySide6 import QtCore, QtWidgets

from device.errors import MassagectlError

logger = logging.getLogger(__name__)

SCAN_S = 4.0
PRESETS = ("sim://ball", "sim://ball?user=scripted", "sim://handheld")


class ConnectDialog(QtWidgets.QDialog):
    """Emits ``url_chosen(url)`` when the user connects."""

    url_chosen = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Connect to a device")
        self._scan_task: asyncio.Task | None = None
        layout = QtWidgets.QVBoxLayout(self)
        self.url = QtWidgets.QComboBox()
        self.url.setEditable(True)
        self.url.addItems(PRESETS)
        self.url.setToolTip(
            "serial:///dev/ttyACM0, ble://NAME or ble://AA:BB:CC:DD:EE:FF, sim://ball"
        )
        layout.addWidget(QtWidgets.QLabel("Device URL"))
        layout.addWidget(self.url)
        self.scan_button = QtWidgets.QPushButton(f"Scan for BLE devices ({SCAN_S:g} s)")
        self.scan_button.clicked.connect(self.scan)
        layout.addWidget(self.scan_button)
        self.found = QtWidgets.QListWidget()
        self.found.itemClicked.connect(lambda item: self.url.setEditText(item.data(256)))
        layout.addWidget(self.found)
        self.note = QtWidgets.QLabel("")
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Ok
            | QtWidgets.QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok).setText("Connect")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    @QtCore.Slot()
    def scan(self) -> None:
        if self._scan_task is not None and not self._scan_task.done():
            return
        self.scan_button.setEnabled(False)
        self.note.setText("scanning...")
        self._scan_task = asyncio.get_running_loop().create_task(self._scan(), name="ble-scan")

    async def _scan(self) -> None:
        from device.ble.discovery import scan_for_devices
        from device.links.drivers import with_kinds

        try:
            devices = with_kinds(await scan_for_devices(SCAN_S))
        except MassagectlError as exc:
            # e.g. no Bluetooth adapter: the same line the CLI prints, with the ways out
            self.note.setText(f"scan failed: {exc}")
            return
        except Exception as exc:  # never leave the dialog saying "scanning..." for ever
            logger.exception("BLE scan failed")
            self.note.setText(f"scan failed: {type(exc).__name__}: {exc}")
            return
        finally:
            self.scan_button.setEnabled(True)
        self.found.clear()
        for d in devices:
            item = QtWidgets.QListWidgetItem(
                f"{d.name or '?'}  {d.address}  {d.kind}  {d.rssi_dbm} dBm"
            )
            item.setData(256, d.url)
            self.found.addItem(item)
        self.note.setText(f"{len(devices)} device(s) found" if devices else "no device found")

    def accept(self) -> None:
        if self._scan_task is not None:
            self._scan_task.cancel()
        url = self.url.currentText().strip()
        super().accept()
        if url:
            self.url_chosen.emit(url)

    def reject(self) -> None:
        if self._scan_task is not None:
            self._scan_task.cancel()
        super().reject()
