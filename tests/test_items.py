"""Shared plot helpers: held axis ranges and the decade axis."""

from __future__ import annotations

import pyqtgraph as pg
import pytest

from widgets.items import DecadeAxis, decade_label, held_range


@pytest.mark.parametrize("shown, wanted, expected", [
    (None, (-3, 3), (-3, 3)),
    ((-4, 4), (-3, 3), (-4, 4)),          # inside and fills 6/8
    ((-3, 11), (-3, 3), (-3, 3)),         # inside but fills 6/14: re-ranged
    ((-3, 3), (-3, 4), (-3, 4)),          # no longer fits
])
def test_held_range(shown, wanted, expected):
    assert held_range(shown, wanted) == expected


def test_decade_labels_read_as_numbers_near_one_and_powers_beyond():
    assert [decade_label(k) for k in (-12, -4, -3, -1, 0, 1, 3, 4, 22)] == [
        "10⁻¹²", "10⁻⁴", "0.001", "0.1", "1", "10", "1000", "10⁴", "10²²"]


def test_decade_axis_ticks_whole_decades_thinned_to_fit(qtbot):
    plot = pg.PlotItem(axisItems={"left": DecadeAxis("left")})
    axis = plot.getAxis("left")
    line = pg.QtGui.QFontMetricsF(axis.style["tickFont"] or axis.font()).height()
    (stride, values), = axis.tickValues(-3.2, 3.5, 100 * line)  # roomy: every decade
    assert stride == 1 and values == [-3, -2, -1, 0, 1, 2, 3]
    (stride, values), = axis.tickValues(-12.0, 23.0, 20 * line)  # 35 decades in 20 lines
    assert stride == 5 and values == [-10, -5, 0, 5, 10, 15, 20]
    assert axis.tickStrings(values, 1.0, stride)[:3] == ["10⁻¹⁰", "10⁻⁵", "1"]
    assert axis.tickValues(float("nan"), 1.0, 100) == []
