"""The backend and the declarations stay Qt-free (DESIGN.md: imports point downward only)."""

import subprocess
import sys

import pytest

QT_FREE = ["workbench.compute.optimizers", "workbench.compute.floats", "workbench.compute.attention",
           "workbench.compute.activations", "workbench.compute.receptive_field", "workbench.compute.normalization",
           "workbench.params", "workbench.i18n", "workbench.scene", "workbench.export_data", "workbench.registry",
           "workbench.cards", "workbench.notes", "workbench.review", "workbench.animate"]
# ... nor what they load only when needed: the float-format oracle, the animation encoders
ALSO_NOT = {"workbench.compute.floats": ("ml_dtypes",), "workbench.animate": ("PIL", "imageio_ffmpeg")}


@pytest.mark.parametrize("module", QT_FREE)
def test_backend_imports_no_qt_and_no_torch(module):
    forbidden = ("PySide6", "pyqtgraph", "superqt", "widgets", "torch", "shiboken6", *ALSO_NOT.get(module, ()))
    code = ("import sys, importlib\n"
            f"importlib.import_module({module!r})\n"
            f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {forbidden!r})\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_widgets_do_not_import_the_shell():
    code = ("import sys, widgets.optimizers, widgets.render\n"
            "print(','.join(m for m in ('workbench.app', 'workbench.cli', 'workbench.bench') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert out.stdout.strip() == ""
