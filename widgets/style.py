"""Light and dark themes, presentation mode and font scale, for the app and its plots."""

from __future__ import annotations

from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication, QProxyStyle, QStyle

THEMES = ("light", "dark")

# Okabe-Ito, colour-blind safe; the dark theme swaps black for white.
_SERIES_LIGHT = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#8C564B")
_SERIES_DARK = ("#56B4E9", "#FF7F3F", "#2BD19A", "#E59ACB", "#F0C000", "#9AD8FF", "#FFFFFF", "#C49A85")


@dataclass(frozen=True)
class Style:
    """How everything is drawn: theme, presentation mode (projector) and a font scale."""

    theme: str = "light"
    presentation: bool = False
    font_scale: float = 1.0

    @property
    def dark(self) -> bool:
        return self.theme == "dark"

    @property
    def background(self) -> str:
        return ("#000000" if self.dark else "#FFFFFF") if self.presentation else ("#1E1F22" if self.dark else "#FFFFFF")

    @property
    def foreground(self) -> str:
        return "#FFFFFF" if self.dark else "#000000" if self.presentation else "#1A1A1A"

    @property
    def muted(self) -> str:
        return "#A0A4AB" if self.dark else "#5A5F66"

    @property
    def error(self) -> str:
        return "#FF6B6B" if self.dark else "#B00020"

    @property
    def card_background(self) -> str:
        """Behind a question card in the notes."""
        return "#2E3440" if self.dark else "#EEF3FA"

    @property
    def grid_alpha(self) -> float:
        return 0.35 if self.presentation else 0.2

    @property
    def series(self) -> tuple[str, ...]:
        return _SERIES_DARK if self.dark else _SERIES_LIGHT

    @property
    def point_size(self) -> float:
        return 10.0 * self.font_scale * (1.6 if self.presentation else 1.0)

    @property
    def line_width(self) -> float:
        return 4.0 if self.presentation else 2.0

    @property
    def thin_line_width(self) -> float:
        """Secondary curves: 1 px is Qt's fast path, wider antialiased lines cost ~0.2 ms each."""
        return 2.5 if self.presentation else 1.0

    @property
    def marker_size(self) -> float:
        return 16.0 if self.presentation else 9.0

    def font(self, factor: float = 1.0, bold: bool = False) -> QFont:
        font = QFont()
        font.setPointSizeF(self.point_size * factor)
        font.setBold(bold)
        return font

    def pen(self, color: str, width: float | None = None, style=None) -> pg.functions.QtGui.QPen:
        pen = pg.mkPen(color=color, width=width if width is not None else self.line_width)
        if style is not None:
            pen.setStyle(style)
        return pen

    def apply_to_app(self, app: QApplication) -> None:
        app.setStyle(FlatScrollBars())
        palette = QPalette()
        if self.dark:
            window, base, text, button = "#26272B", "#1E1F22", "#E8E8E8", "#33353A"
            if self.presentation:
                window, base, text = "#000000", "#000000", "#FFFFFF"
        else:
            window, base, text, button = "#F3F4F6", "#FFFFFF", "#1A1A1A", "#E9EAEE"
            if self.presentation:
                window, text = "#FFFFFF", "#000000"
        for role, color in ((QPalette.Window, window), (QPalette.Base, base), (QPalette.AlternateBase, button),
                            (QPalette.Button, button), (QPalette.Text, text), (QPalette.WindowText, text),
                            (QPalette.ButtonText, text), (QPalette.ToolTipBase, base), (QPalette.ToolTipText, text),
                            (QPalette.Highlight, "#2F6FDB"), (QPalette.HighlightedText, "#FFFFFF"),
                            (QPalette.PlaceholderText, self.muted)):
            palette.setColor(role, QColor(color))
        palette.setColor(QPalette.Disabled, QPalette.Text, QColor(self.muted))
        palette.setColor(QPalette.Disabled, QPalette.WindowText, QColor(self.muted))
        palette.setColor(QPalette.Disabled, QPalette.ButtonText, QColor(self.muted))
        app.setPalette(palette)
        app.setFont(self.font())

    def style_plot(self, plot: pg.PlotItem, title: str = "", left: str = "", bottom: str = "") -> None:
        """Colours, fonts and labels of one plot, for this style."""
        font = self.font(0.9)
        for name in ("left", "bottom", "right", "top"):
            axis = plot.getAxis(name)
            axis.enableAutoSIPrefix(False)  # plain numbers ("h (x0.001)" reads worse than 0.2 … 0.8); no label re-set per range change
            axis.setPen(pg.mkPen(self.foreground, width=1.5 if self.presentation else 1))
            axis.setTextPen(pg.mkPen(self.foreground))
            axis.setStyle(tickFont=font, tickTextOffset=4)
        size = f"{self.point_size:.0f}pt"
        if title:
            plot.setTitle(title, color=self.foreground, size=f"{self.point_size * 1.1:.0f}pt", bold=True)
        if left:
            plot.setLabel("left", left, color=self.foreground, **{"font-size": size})
        if bottom:
            plot.setLabel("bottom", bottom, color=self.foreground, **{"font-size": size})
        plot.showGrid(x=True, y=True, alpha=self.grid_alpha)


def _mix(a: QColor, b: QColor, t: float) -> QColor:
    return QColor.fromRgbF(*(x + (y - x) * t for x, y in zip(a.getRgbF()[:3], b.getRgbF()[:3])))


class FlatScrollBars(QProxyStyle):
    """Fusion with flat scroll bars. Fusion paints a scroll bar's gradient groove and handle in
    1.5 + 2 ms for a 900 px bar, and the controls, notes and figure columns repaint theirs at many
    changes; a flat groove and a rounded handle take about 0.15 ms. The arrows stay Fusion's."""

    def __init__(self):
        super().__init__("Fusion")

    def drawComplexControl(self, control, option, painter, widget=None) -> None:
        if control != QStyle.CC_ScrollBar:
            return super().drawComplexControl(control, option, painter, widget)
        palette = option.palette
        back, ink = palette.color(QPalette.Window), palette.color(QPalette.WindowText)
        painter.fillRect(option.rect, _mix(back, ink, 0.06))
        handle = self.subControlRect(control, option, QStyle.SC_ScrollBarSlider, widget)
        if option.state & QStyle.State_Enabled and handle.isValid() and option.maximum > option.minimum:
            on_handle = bool(option.activeSubControls & QStyle.SC_ScrollBarSlider)
            pressed = on_handle and bool(option.state & QStyle.State_Sunken)
            hovered = on_handle and bool(option.state & QStyle.State_MouseOver)
            painter.save()
            painter.setRenderHint(painter.RenderHint.Antialiasing)
            painter.setPen(Qt.NoPen)
            painter.setBrush(_mix(back, ink, 0.55 if pressed else 0.42 if hovered else 0.3))
            inner = handle.adjusted(2, 2, -2, -2)
            radius = min(inner.width(), inner.height()) / 2
            painter.drawRoundedRect(inner, radius, radius)
            painter.restore()
        arrows = type(option)(option)
        arrows.subControls = option.subControls & (QStyle.SC_ScrollBarAddLine | QStyle.SC_ScrollBarSubLine)
        if arrows.subControls:
            super().drawComplexControl(control, arrows, painter, widget)
