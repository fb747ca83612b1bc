"""The declared controls, driven with qtbot: what they refuse, and that a refusal's message goes
when it no longer holds."""

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from widgets.floats import FloatsPanel
from widgets.normalization import NormalizationPanel


def type_into(qtbot, control, text):
    control.edit.setFocus()
    control.edit.selectAll()
    qtbot.keyClicks(control.edit, text)
    qtbot.keyClick(control.edit, Qt.Key_Return)


def paste_into(qtbot, control, text):
    QApplication.clipboard().setText(text)
    control.edit.setFocus()
    control.edit.selectAll()
    qtbot.keyClick(control.edit, Qt.Key_V, Qt.ControlModifier)
    qtbot.keyClick(control.edit, Qt.Key_Return)


def test_too_long_text_is_refused_not_cut(qtbot, open_panel):
    panel = open_panel(FloatsPanel, 1200, 800)
    control = panel.controls["value"]
    limit = control.param.max_length
    messages = []
    panel.message.connect(lambda text, is_error: messages.append((text, is_error)))
    paste_into(qtbot, control, "1" * 10_000)  # cut to 200 digits, it would be a valid 1.1e199
    assert panel.values["value"] == "0.1"
    assert control.edit.text() == "0.1"
    assert control.error_label.isVisibleTo(panel) and f"at most {limit} characters" in control.error_label.text()
    assert len(control.error_label.text()) < 300  # the message quotes the start of the text, not all of it
    assert messages and messages[-1][1] and "value" in messages[-1][0]
    paste_into(qtbot, control, "1" * limit)  # at the limit: accepted whole
    assert panel.values["value"] == "1" * limit
    assert control.error_label.isHidden()


def test_a_refusal_message_goes_when_another_field_makes_the_value_valid(qtbot, open_panel):
    panel = open_panel(NormalizationPanel, 1500, 950)
    groups, channels = panel.controls["groups"], panel.controls["channels"]
    method = panel.controls["method"].combo
    method.setCurrentIndex(method.findData("group"))
    assert panel.values["method"] == "group" and panel.values["channels"] == 6
    type_into(qtbot, groups, "4")
    assert panel.values["groups"] == 2 and groups.edit.text() == "2"
    assert groups.error_label.isVisibleTo(panel) and "4 does not divide the 6 channels" in groups.error_label.text()
    type_into(qtbot, channels, "8")
    assert panel.values["channels"] == 8
    assert groups.error_label.isHidden() and channels.error_label.isHidden()
    type_into(qtbot, groups, "4")  # now it divides
    assert panel.values["groups"] == 4 and groups.error_label.isHidden()
