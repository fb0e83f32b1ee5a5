"""The screening questions as a Qt dialog (the window's face of ``device.screening.gate``).

A real device vibrates only after a passed screening (DESIGN.md, safety model item 3). The
dialog puts every question with a Yes and a No choice, nothing preselected; OK is enabled
once each has an answer. The answers are judged by ``device.screening.gate.evaluate``; the
result (passed, or the reasons and tiered advice) is in ``result_value`` after it closes.
"""

from __future__ import annotations

from PySide6 import QtWidgets

from device.screening.gate import QUESTIONS, ScreeningResult, evaluate

INTRO = (
    "Before the device vibrates, answer these questions about your neck pain. Any answer "
    "that points to something more than muscle tension ends here, with advice."
)


class ScreeningDialog(QtWidgets.QDialog):
    """Yes/no for each screening question; ``result_value`` holds the outcome (None if
    cancelled)."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Screening")
        self.result_value: ScreeningResult | None = None
        layout = QtWidgets.QVBoxLayout(self)
        intro = QtWidgets.QLabel(INTRO)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        grid = QtWidgets.QGridLayout()
        layout.addLayout(grid)
        self._groups: dict[str, QtWidgets.QButtonGroup] = {}
        for row, q in enumerate(QUESTIONS):
            text = QtWidgets.QLabel(q.text)
            text.setWordWrap(True)
            yes, no = QtWidgets.QRadioButton("Yes"), QtWidgets.QRadioButton("No")
            group = QtWidgets.QButtonGroup(self)
            group.addButton(yes, 1)
            group.addButton(no, 0)
            group.idClicked.connect(self._update)
            self._groups[q.id] = group
            grid.addWidget(text, row, 0)
            grid.addWidget(yes, row, 1)
            grid.addWidget(no, row, 2)
        self.buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Ok
            | QtWidgets.QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self._update()

    def answers(self) -> dict[str, bool]:
        """The answers given so far (question id -> yes)."""
        return {qid: g.checkedId() == 1 for qid, g in self._groups.items() if g.checkedId() >= 0}

    def _update(self, *_args) -> None:
        ok = self.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(len(self.answers()) == len(QUESTIONS))

    def accept(self) -> None:
        self.result_value = evaluate(self.answers(), source="interactive")
        super().accept()
