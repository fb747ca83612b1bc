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
