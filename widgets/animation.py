"""File > Export animation…: choose what moves (the played steps, or one parameter swept), the
format, frame rate, length and scale; the frames are rendered off screen (workbench.animate) with a
progress bar and Cancel, and the file is written all at once."""

from __future__ import annotations

from typing import Any, Mapping

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QApplication, QButtonGroup, QCheckBox, QComboBox, QDialog, QDialogButtonBox,
                               QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QProgressDialog,
                               QRadioButton, QSpinBox, QVBoxLayout, QWidget)

from widgets.style import Style
from workbench import animate
from workbench.i18n import tr
from workbench.registry import panel_class, panel_title

FORMAT_LABELS = {".gif": "GIF", ".mp4": "MP4 (H.264)", ".webp": "WebP"}


class AnimationDialog(QDialog):
    """The choices of an animated export; :meth:`options` once accepted. A sweep that the panel's
    declaration refuses is said in the dialog (one line naming the parameter) and it stays open."""

    def __init__(self, style: Style, panel: str, values: Mapping[str, Any], caption: bool = True,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("animation_dialog")
        self.setWindowTitle(tr("Export animation"))
        self.panel = panel
        self.values = dict(values)
        self.params = panel_class(panel).PARAMS
        self.play = QRadioButton(tr("Play the steps ({what})").format(what=_what_plays(panel))
                                 if animate.plays(panel) else tr("Play the steps (this panel does not play)"))
        self.play.setObjectName("play")
        self.sweep = QRadioButton(tr("Sweep a parameter"))
        self.sweep.setObjectName("sweep")
        group = QButtonGroup(self)
        group.addButton(self.play)
        group.addButton(self.sweep)
        self.play.setEnabled(animate.plays(panel))
        self.param = QComboBox()
        self.param.setObjectName("sweep_param")
        for param in self.params:
            if animate._sweepable(param):
                self.param.addItem(f"{param.label()} ({param.name})", param.name)
        self.start = QLineEdit()
        self.start.setObjectName("sweep_from")
        self.stop = QLineEdit()
        self.stop.setObjectName("sweep_to")
        self.spacing = QComboBox()
        self.spacing.setObjectName("sweep_spacing")
        self.spacing.addItem(tr("log-spaced"), "log")
        self.spacing.addItem(tr("evenly spaced"), "linear")
        self.format = QComboBox()
        self.format.setObjectName("format")
        for suffix, label in FORMAT_LABELS.items():
            self.format.addItem(label, suffix)
        self.fps = QSpinBox()
        self.fps.setObjectName("fps")
        self.fps.setRange(1, animate.MAX_FPS)
        self.fps.setValue(animate.DEFAULT_FPS)
        self.seconds = QDoubleSpinBox()
        self.seconds.setObjectName("seconds")
        self.seconds.setRange(0.5, animate.MAX_SECONDS)
        self.seconds.setSingleStep(0.5)
        self.seconds.setValue(animate.DEFAULT_SECONDS)
        self.scale = QComboBox()
        self.scale.setObjectName("scale")
        for scale in (1, 2, 3):
            self.scale.addItem(tr("{scale}x ({width} pixels wide)").format(scale=scale, width=1280 * scale), scale)
        self.caption = QCheckBox(tr("Caption with the changing value"))
        self.caption.setObjectName("caption")
        self.caption.setChecked(caption)
        self.error = QLabel()
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        self.error.setStyleSheet(f"color: {style.error};")
        self.error.hide()
        span = QHBoxLayout()
        span.addWidget(QLabel(tr("from")))
        span.addWidget(self.start, 1)
        span.addWidget(QLabel(tr("to")))
        span.addWidget(self.stop, 1)
        span.addWidget(self.spacing)
        form = QFormLayout()
        form.addRow(self.play)
        form.addRow(self.sweep, self.param)
        form.addRow("", span)
        form.addRow(tr("Format"), self.format)
        form.addRow(tr("Frames per second"), self.fps)
        form.addRow(tr("Seconds"), self.seconds)
        form.addRow(tr("Scale"), self.scale)
        form.addRow("", self.caption)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.button(QDialogButtonBox.Ok).setText(tr("Export…"))
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        column = QVBoxLayout(self)
        column.addWidget(QLabel(tr("Animate {panel}: frames rendered off screen, 1280 pixels wide times the scale.").format(
            panel=panel_title(panel))))
        column.addLayout(form)
        column.addWidget(self.error)
        column.addWidget(buttons)
        preferred = sorted((p for p in self.params if animate._sweepable(p)),
                           key=lambda p: (p.kind != "text", not (p.kind == "float" and p.log), p.kind != "float"))
        if preferred:  # the panel's main number first: floats' value, attention's temperature
            self.param.setCurrentIndex(self.param.findData(preferred[0].name))
        self.param.currentIndexChanged.connect(self._param_chosen)
        self.sweep.toggled.connect(self._mode_changed)
        (self.play if animate.plays(panel) else self.sweep).setChecked(True)
        self._param_chosen()
        self._mode_changed()

    def _param_chosen(self) -> None:
        name = self.param.currentData()
        if name is None:
            return
        param = self.params[name]
        if param.kind == "text":  # a number written as text: a decade either side of the value
            value = float(self.values[name])
            lo, hi = (value / 10, value * 10) if value else (-1.0, 1.0)
            self.start.setText(f"{lo:.6g}")
            self.stop.setText(f"{hi:.6g}")
        else:
            self.start.setText(param.format(param.lo))
            self.stop.setText(param.format(param.hi))
        self.spacing.setCurrentIndex(0 if param.log else 1)

    def _mode_changed(self) -> None:
        sweeping = self.sweep.isChecked()
        for widget in (self.param, self.start, self.stop, self.spacing):
            widget.setEnabled(sweeping)

    def sweep_text(self) -> str | None:
        """The sweep as the command line writes it (``name=FROM:TO:log``), or None to play."""
        if not self.sweep.isChecked():
            return None
        return f"{self.param.currentData()}={self.start.text().strip()}:{self.stop.text().strip()}:{self.spacing.currentData()}"

    def options(self) -> dict[str, Any]:
        return {"sweep": self.sweep_text(), "fps": self.fps.value(), "seconds": self.seconds.value(),
                "scale": self.scale.currentData(), "caption": self.caption.isChecked(), "suffix": self.format.currentData()}

    def accept(self) -> None:
        """Check the choices before closing: the sweep against the declaration, the frame count."""
        try:
            sweep = self.sweep_text()
            if sweep is not None:
                parsed = animate.parse_sweep(sweep, self.params)
                n = animate.frame_count(self.fps.value(), self.seconds.value(), self.format.currentData())
                animate.sweep_frames(parsed, self.params, self.values, n)
            else:
                animate.frame_count(self.fps.value(), self.seconds.value(), self.format.currentData())
        except animate.AnimationError as error:
            self.error.setText(str(error).removeprefix("--sweep "))
            self.error.show()
            return
        super().accept()


def _what_plays(panel: str) -> str:
    return {"optimizers": tr("the optimizers' race"), "training": tr("the training run"),
            "transformer": tr("the decoding, token by token")}.get(panel, panel)


def run_export(parent: QWidget, panel: str, values: Mapping[str, Any], style: Style, path: str, *,
               sweep: str | None = None, fps: int = animate.DEFAULT_FPS, seconds: float = animate.DEFAULT_SECONDS,
               scale: int = 1, caption: bool = True) -> tuple[bool, str]:
    """Export with a modal progress bar and Cancel; (done, message for the status bar)."""
    from widgets.render import ImageTooLarge

    progress = QProgressDialog(tr("Rendering the frames of {path}…").format(path=path), tr("Cancel"), 0, 100, parent)
    progress.setObjectName("animation_progress")
    progress.setWindowTitle(tr("Export animation"))
    progress.setWindowModality(Qt.WindowModal)
    progress.setMinimumDuration(0)
    progress.setValue(0)

    def step(done: int, total: int) -> bool:
        progress.setMaximum(total)
        progress.setValue(done)
        QApplication.processEvents()
        return not progress.wasCanceled()

    QApplication.setOverrideCursor(Qt.BusyCursor)
    try:
        frames = animate.export_animation(panel, values, style, path, fps=fps, seconds=seconds, sweep=sweep,
                                          scale=scale, caption=caption, progress=step)
    except animate.Cancelled:
        return False, tr("Animation export cancelled; nothing was written")
    except (animate.AnimationError, ImageTooLarge) as error:
        return False, tr("Could not export to {path}: {error}").format(path=path, error=error)
    except OSError as error:
        return False, tr("Could not export to {path}: {error}").format(path=path, error=error.strerror or error)
    finally:
        QApplication.restoreOverrideCursor()
        progress.close()
        progress.deleteLater()
    return True, tr("Exported {path} ({n} frames)").format(path=path, n=frames)
