"""Controls made from parameter declarations: one widget per Param.

Every control emits ``edited(name, raw)`` when the user changes it and never validates on its
own: the panel validates through the declaration and calls ``show_value`` / ``show_error``.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QGridLayout, QLabel, QLineEdit, QSizePolicy, QSlider,
                               QVBoxLayout, QWidget)

from widgets.style import Style
from workbench.params import Param

SLIDER_TICKS = 1000


class ParamControl(QWidget):
    """Base: a labelled editor for one Param, with an error line under it."""

    edited = Signal(str, object)

    def __init__(self, param: Param, style: Style, parent: QWidget | None = None):
        super().__init__(parent)
        self.param = param
        self.style_ = style
        self.setToolTip(param.tooltip())
        self.setObjectName(f"control_{param.name}")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 2, 0, 2)
        self._layout.setSpacing(2)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(f"color: {style.error};")
        self.error_label.hide()

    def _finish(self) -> None:
        self._layout.addWidget(self.error_label)

    def show_value(self, value: Any) -> None:
        raise NotImplementedError

    def show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.setVisible(bool(message))


class NumberControl(ParamControl):
    """Label, editable number and a slider (log10-scaled when the declaration says so)."""

    def __init__(self, param: Param, style: Style, parent: QWidget | None = None):
        super().__init__(param, style, parent)
        top = QGridLayout()
        unit = f" [{param.unit}]" if param.unit else ""
        self.label = QLabel(param.label() + unit)
        self.edit = QLineEdit()
        self.edit.setAlignment(Qt.AlignRight)
        self.edit.setMaximumWidth(int(7 * style.point_size * 1.4))
        self.edit.setAccessibleName(param.label())
        top.addWidget(self.label, 0, 0)
        top.addWidget(self.edit, 0, 1, Qt.AlignRight)
        self._layout.addLayout(top)
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setAccessibleName(param.label())
        if param.kind == "int" and param.hi - param.lo <= SLIDER_TICKS and not param.log:
            self._int_step = int(param.step or 1)  # one tick per allowed integer (every step-th)
            self.slider.setRange(0, int((param.hi - param.lo) // self._int_step))
            self._ticks = None
        else:
            self.slider.setRange(0, SLIDER_TICKS)
            self._ticks = SLIDER_TICKS
        self._layout.addWidget(self.slider)
        self._finish()
        self.slider.valueChanged.connect(self._slider_moved)
        self.edit.editingFinished.connect(self._text_entered)
        self._value = param.default
        self.show_value(param.default)

    def to_slider(self, value: float) -> int:
        p = self.param
        if self._ticks is None:
            return round((value - p.lo) / self._int_step)
        if p.log:
            t = (math.log10(value) - math.log10(p.lo)) / (math.log10(p.hi) - math.log10(p.lo))
        else:
            t = (value - p.lo) / (p.hi - p.lo)
        return round(min(max(t, 0.0), 1.0) * self._ticks)

    def from_slider(self, tick: int) -> float:
        p = self.param
        if self._ticks is None:
            return int(p.lo) + tick * self._int_step
        t = tick / self._ticks
        if p.log:
            value = 10 ** (math.log10(p.lo) + t * (math.log10(p.hi) - math.log10(p.lo)))
            value = float(f"{value:.3g}")
        else:
            value = p.lo + t * (p.hi - p.lo)
            if p.step:
                value = p.lo + round((value - p.lo) / p.step) * p.step
            value = round(value, 10)
        value = min(max(value, p.lo), p.hi)
        return int(round(value)) if p.kind == "int" else value

    def _slider_moved(self, tick: int) -> None:
        if self.to_slider(self._value) != tick:  # ignore ticks that round back to the value
            self.edited.emit(self.param.name, self.from_slider(tick))

    def _text_entered(self) -> None:
        text = self.edit.text()
        if text != self.param.format(self._value):
            self.edited.emit(self.param.name, text)

    def show_value(self, value: Any) -> None:
        self._value = value
        with QSignalBlocker(self.slider):
            self.slider.setValue(self.to_slider(value))
        with QSignalBlocker(self.edit):
            self.edit.setText(self.param.format(value))


class ChoiceControl(ParamControl):
    def __init__(self, param: Param, style: Style, parent: QWidget | None = None):
        super().__init__(param, style, parent)
        self.label = QLabel(param.label())
        self.combo = QComboBox()
        self.combo.setAccessibleName(param.label())
        self.combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(10)
        for choice in param.choices:
            self.combo.addItem(choice.label(), choice.value)
        self._layout.addWidget(self.label)
        self._layout.addWidget(self.combo)
        self._finish()
        self.combo.currentIndexChanged.connect(
            lambda index: self.edited.emit(self.param.name, self.combo.itemData(index)))
        self.show_value(param.default)

    def show_value(self, value: Any) -> None:
        with QSignalBlocker(self.combo):
            self.combo.setCurrentIndex(max(self.combo.findData(value), 0))


class BoolControl(ParamControl):
    def __init__(self, param: Param, style: Style, parent: QWidget | None = None):
        super().__init__(param, style, parent)
        self.check = QCheckBox(param.label())
        self._layout.addWidget(self.check)
        self._finish()
        self.check.toggled.connect(lambda on: self.edited.emit(self.param.name, on))
        self.show_value(param.default)

    def show_value(self, value: Any) -> None:
        with QSignalBlocker(self.check):
            self.check.setChecked(bool(value))


class TextControl(ParamControl):
    """Label and a line edit; the text is sent when editing finishes (Return or focus out)."""

    def __init__(self, param: Param, style: Style, parent: QWidget | None = None):
        super().__init__(param, style, parent)
        self.label = QLabel(param.label())
        self.edit = QLineEdit()
        self.edit.setAccessibleName(param.label())
        # Never cut: text longer than the declaration allows reaches it and is refused with its message.
        self.edit.setMaxLength(max(self.edit.maxLength(), param.max_length + 1))
        self._layout.addWidget(self.label)
        self._layout.addWidget(self.edit)
        self._finish()
        self.edit.editingFinished.connect(self._text_entered)
        self._value = param.default
        self.show_value(param.default)

    def _text_entered(self) -> None:
        if self.edit.text() != self._value:
            self.edited.emit(self.param.name, self.edit.text())

    def show_value(self, value: Any) -> None:
        self._value = value
        with QSignalBlocker(self.edit):
            self.edit.setText(value)
            self.edit.setCursorPosition(0)  # a long text shows its beginning


def make_control(param: Param, style: Style) -> ParamControl:
    """The control that fits the declaration."""
    kinds = {"float": NumberControl, "int": NumberControl, "choice": ChoiceControl, "bool": BoolControl,
             "text": TextControl}
    return kinds[param.kind](param, style)


class OneLine(QWidget):
    """Holds a one-line QLabel at a fixed height. A QLabel asks its parent's layout to re-lay out at
    every new text, and in a panel that climbs to the window's splitter (~0.4 ms per change); here
    it has no layout to ask. Long text is cut at the right edge instead of widening the figure."""

    def __init__(self, label: QLabel, lines: int = 1):
        """``lines`` > 1: room for that many lines, long text wrapped at word boundaries."""
        super().__init__()
        label.setParent(self)
        self.label = label
        self.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
        label.setWordWrap(lines > 1)
        text = label.text()
        label.setText("\n".join(["Ág[_]ᵀ√个"] * lines))  # the tallest lines it may show: ascenders, descenders, CJK
        self.setFixedHeight(label.sizeHint().height())
        label.setText(text)

    def resizeEvent(self, event) -> None:
        self.label.setGeometry(self.rect())
