"""Small helpers for pyqtgraph items shared by the panels."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt


def never_widens(label: pg.LabelItem) -> None:
    """A label whose text sets its row's height but no minimum width: a long title in a narrow
    window overhangs its plot instead of pushing the figure wider than the window."""
    update = label.updateMin

    def update_min():
        update()
        label.setMinimumWidth(0)
        label._sizeHint[Qt.SizeHint.MinimumSize] = (0, label._sizeHint[Qt.SizeHint.MinimumSize][1])
    label.updateMin = update_min
    update_min()


def held_range(shown: tuple[float, float] | None, wanted: tuple[float, float], fill: float = 0.5) -> tuple[float, float]:
    """The range to show: ``shown`` while it contains ``wanted`` and ``wanted`` spans at least
    ``fill`` of it, else ``wanted``. An axis then holds still while its data moves a little inside
    it (redrawing an axis and its labels costs a few ms), and the data is seen to move."""
    if shown is not None and shown[0] <= wanted[0] and wanted[1] <= shown[1] and (
            wanted[1] - wanted[0] >= fill * (shown[1] - shown[0])):
        return shown
    return wanted
