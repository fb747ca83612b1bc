"""Question cards in the app and on the command line: every card opens and its figure renders, the
Questions window searches, filters, quizzes and keeps its marks, and notes link to files that exist."""

import json
import os
import re
import shutil
import subprocess

import pytest

from widgets.note_export import write_topic_note
from widgets.render import render_image
from widgets.style import Style
from workbench.app import MainWindow
from workbench.cards import card_values, cards_in_topic, find_card, load_cards
from workbench.i18n import set_language
from workbench.notes import image_name

WORKBENCH = shutil.which("workbench") or pytest.fail("the workbench entry point is not installed")
TOPICS, CARDS = load_cards()


def test_every_card_opens_in_its_panel_and_its_figure_renders(window):
    for card in CARDS:
        assert window.open_card(card), card.id
        panel = window.panel
        assert window.current == card.panel
        panel.compute_now()
        assert panel.values == card_values(card)
        assert panel.question_card is card and card.text("question") in panel.notes.toPlainText()
        image = render_image(panel.figure, window.style_, 1)
        assert image.width() > 300 and image.height() > 200, card.id


def test_questions_window_searches_filters_and_opens(qtbot, window):
    window.show_questions()
    dialog = window.questions
    assert dialog.isVisible() and dialog.list.count() == len(CARDS)
    dialog.search_box.setText("学习率")  # a Chinese word finds English-interface cards too
    assert 0 < dialog.list.count() < len(CARDS)
    dialog.search_box.setText("")
    dialog.topic_box.setCurrentIndex(dialog.topic_box.findData("attention"))
    assert dialog.list.count() == len(cards_in_topic(CARDS, "attention"))
    with qtbot.waitSignal(dialog.opened, timeout=5000):
        dialog.list.setCurrentRow(0)
    card = dialog.card
    assert window.current == "attention" and window.panel.question_card is card
    assert card.text("answer") in window.panel.notes.toPlainText()
    dialog.buttons["next"].click()
    assert dialog.card is cards_in_topic(CARDS, "attention")[1] and window.panel.question_card is dialog.card
    dialog.buttons["previous"].click()
    dialog.buttons["previous"].click()  # wraps round to the last card
    assert dialog.card is cards_in_topic(CARDS, "attention")[-1]
    dialog.search_box.setText("no such words anywhere")
    assert dialog.list.count() == 0 and "No card" in dialog.view.toPlainText()


def test_quiz_hides_the_answer_until_revealed_and_marks_persist(qtbot, window, store):
    window.show_questions()
    dialog = window.questions
    dialog.quiz_box.setChecked(True)
    assert dialog.open_card("normalization.four-norms")
    card = find_card("normalization.four-norms")
    answer = card.text("answer")
    assert answer not in dialog.view.toPlainText() and answer not in window.panel.notes.toPlainText()
    assert dialog.buttons["reveal"].isEnabled()
    dialog.buttons["reveal"].click()
    assert answer in dialog.view.toPlainText() and answer in window.panel.notes.toPlainText()
    dialog.buttons["got"].click()  # marks, then moves on in a quiz
    assert dialog.card is not card and answer not in dialog.view.toPlainText()
    dialog.buttons["again"].click()
    marks = json.loads(store.value("quiz_marks"))
    assert marks["normalization.four-norms"] == "got" and list(marks.values()).count("again") == 1
    assert "1 of " in dialog.progress.text()
    assert dialog.list.item(dialog.shown.index(card)).text().startswith("✓ ")
    window.close()
    again = MainWindow(Style(), "optimizers", store=store)  # a new session reads the marks back
    qtbot.addWidget(again)
    again.show_questions()
    assert again.questions.marks["normalization.four-norms"] == "got"
    again.close()


def test_corrupt_marks_fall_back_to_none(qtbot, store):
    store.setValue("quiz_marks", "{not json")
    window = MainWindow(Style(), "optimizers", store=store)
    qtbot.addWidget(window)
    window.show_questions()
    assert window.questions.marks == {}
    window.close()


def test_chinese_questions_window(qtbot, window):
    window.show_questions()
    window.set_language("zh_CN")  # rebuilt in Chinese and shown again
    dialog = window.questions
    assert dialog.isVisible() and dialog.windowTitle() == "问题卡片"
    dialog.open_card("attention.sqrt-dk")
    assert "为什么注意力分数" in dialog.view.toPlainText()
    set_language("en")


def test_card_note_links_resolve(tmp_path, window):
    card = find_card("attention.sqrt-dk")
    window.open_card(card)
    assert window.export_card_note(card, str(tmp_path))
    text = (tmp_path / "attention.sqrt-dk.md").read_text(encoding="utf-8")
    assert card.text("question") in text and card.text("answer") in text and card.text("look") in text
    assert "Divide scores by sqrt(d_k) = off" in text  # the parameter values
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert links == [image_name(card)] and all((tmp_path / link).is_file() for link in links)


def test_topic_note_has_every_card_and_its_figures(tmp_path):
    from workbench.cli import _headless_style
    topic = next(t for t in TOPICS if t.id == "lr_schedules")
    cards = cards_in_topic(CARDS, topic.id)
    path = write_topic_note(topic, cards, tmp_path, _headless_style(None, False))
    text = path.read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert len(links) == len(cards) >= 3
    assert all((tmp_path / link).is_file() and (tmp_path / link).stat().st_size > 10_000 for link in links)


def test_topic_note_folder_is_remembered_and_offered_to_open(qtbot, tmp_path, window, store, monkeypatch):
    import workbench.app as app_module
    from PySide6.QtCore import QUrl
    from PySide6.QtWidgets import QFileDialog

    topic = next(t for t in TOPICS if t.id == "loss_functions")  # one card: quick
    asked, opened = [], []
    first, second = tmp_path / "notes", tmp_path / "more notes"
    first.mkdir()
    second.mkdir()
    chosen = iter([str(first), str(second)])
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda parent, caption, start="": asked.append(start) or next(chosen)))
    monkeypatch.setattr(app_module, "QDesktopServices", type("Desktop", (), {"openUrl": staticmethod(opened.append)}))
    window.export_topic_note_dialog(topic)
    assert asked == [""]  # nothing remembered yet
    assert any(first.glob("*.md"))
    assert store.value("note_folder") == str(first)
    bar = window.statusBar()
    assert bar.currentMessage().startswith("Exported ")
    link = window.folder_link
    qtbot.waitUntil(link.isVisible)  # beside the message (the status bar shows on the next pass of the event loop)
    assert "Open folder" in link.text()
    assert QUrl.fromLocalFile(str(first)).toString() in link.text()
    link.linkActivated.emit(QUrl.fromLocalFile(str(first)).toString())  # a click on the link
    assert opened == [QUrl.fromLocalFile(str(first))]
    window.show_message("something else")
    assert link.isHidden()  # the link goes with its message
    window.export_topic_note_dialog(topic)
    assert asked == ["", str(first)]  # the dialog starts where the last note went
    assert store.value("note_folder") == str(second) and link.isVisible()
    again = MainWindow(Style(), "optimizers", store=store)  # a new session starts there too
    qtbot.addWidget(again)
    assert again.note_folder() == str(second)
    again.panel.retire()


def run(*args, timeout=180):
    return subprocess.run([WORKBENCH, *args], capture_output=True, text=True, timeout=timeout, env=dict(os.environ))


def test_cli_lists_cards_by_topic_and_language():
    result = run("cards")
    assert result.returncode == 0 and len(result.stdout.splitlines()) == len(CARDS)
    first = result.stdout.splitlines()[0].split()
    assert first[0] == CARDS[0].id and first[1] == CARDS[0].panel
    zh = run("cards", "--lang", "zh_CN", "--topic", "floats")
    lines = zh.stdout.splitlines()
    assert len(lines) == len(cards_in_topic(CARDS, "floats")) and all(line.startswith("floats.") for line in lines)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh.stdout)


@pytest.mark.parametrize("args, expected", [
    (("cards", "--topic", "nope"), "unknown topic 'nope'"), (("note", "nope", "-o", "x"), "unknown card 'nope'"),
    (("export", "--card", "nope", "-o", "x.png"), "unknown card 'nope'"), (("--card", "nope"), "unknown card 'nope'"),
    (("note", "-o", "x"), "give a card id or --topic"),
    (("export", "attention", "--card", "attention.sqrt-dk", "-o", "x.png"), "leave out PANEL")])
def test_cli_unknown_card_or_topic_is_one_line_and_exit_2(args, expected):
    result = run(*args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and expected in result.stderr


def test_cli_note_and_card_export(tmp_path):
    result = run("note", "floats.range", "-o", str(tmp_path / "notes"), "--lang", "zh_CN")
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "notes" / "floats.range.md").read_text(encoding="utf-8")
    assert "答案" in text and (tmp_path / "notes" / "floats.range.png").is_file()
    result = run("export", "--card", "receptive_field.stacked-3x3", "-o", str(tmp_path / "card.svg"))
    assert result.returncode == 0, result.stderr
    assert "<svg" in (tmp_path / "card.svg").read_text(encoding="utf-8")
