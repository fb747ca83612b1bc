"""Spaced repetition of the question cards (FSRS): the store gives the due dates the ``fsrs``
package gives, keeps its file atomically, sets an unusable file aside, carries the quiz marks over
once and introduces new cards at the daily limit; the Review tab (keyboard included) and the
command line (``cards --due``, ``review --stats``) in both languages."""

import json
import os
import random
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import fsrs
import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication

from widgets.style import Style
from workbench.app import MainWindow
from workbench.cards import Card, Text, cards_in_topic, load_cards
from workbench.i18n import set_language
from workbench.review import FILE_NAME, FORMAT, LEARN_AHEAD, ReviewError, ReviewStore, fsrs_id, parse_marks

WORKBENCH = shutil.which("workbench") or pytest.fail("the workbench entry point is not installed")
TOPICS, CARDS = load_cards()
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


class Clock:
    """A fixed clock the tests move by hand."""

    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now


def card(card_id, topic="t"):
    text = Text(card_id, card_id)
    return Card(card_id, topic, "attention", (), text, text, text, "")


def exact():
    return fsrs.Scheduler(enable_fuzzing=False)


# ---- the schedule is the fsrs package's -------------------------------------------------------
SEQUENCE = ["good", "good", "good", "again", "good", "hard", "easy", "good", "again", "again", "good", "easy"]


def test_a_sequence_of_ratings_gives_the_due_dates_fsrs_gives(tmp_path):
    clock = Clock()
    store = ReviewStore.open(tmp_path / FILE_NAME, clock, exact())
    reference, scheduler, when = fsrs.Card(card_id=fsrs_id("a.b"), due=T0), exact(), T0
    ours, theirs = [], []
    for rating in SEQUENCE:
        clock.now = when
        ours.append(store.rate("a.b", rating))
        reference, _ = scheduler.review_card(reference, fsrs.Rating[rating.capitalize()], when)
        theirs.append(reference.due)
        when = reference.due  # reviewed when it falls due
    assert ours == theirs
    assert max(theirs) - T0 > timedelta(days=30)  # the sequence reaches long intervals
    again = ReviewStore.open(tmp_path / FILE_NAME, clock, exact())  # read back: the same state goes on
    assert again.state("a.b").due == theirs[-1] and again.state("a.b").stability == reference.stability
    assert [e["rating"] for e in again.log] == [int(fsrs.Rating[r.capitalize()]) for r in SEQUENCE]


def test_with_fuzzing_the_due_dates_are_fsrs_with_the_same_random_draws(tmp_path):
    clock = Clock()
    store = ReviewStore(None, clock)  # the package's defaults: fuzzing on, as in Anki
    assert store.scheduler.enable_fuzzing
    random.seed(7)
    ours, when = [], T0
    for rating in SEQUENCE[:8]:
        clock.now = when
        ours.append(store.rate("a.b", rating))
        when = ours[-1]
    random.seed(7)
    reference, scheduler, theirs, when = fsrs.Card(card_id=1, due=T0), fsrs.Scheduler(), [], T0
    for rating in SEQUENCE[:8]:
        reference, _ = scheduler.review_card(reference, fsrs.Rating[rating.capitalize()], when)
        theirs.append(reference.due)
        when = reference.due
    assert ours == theirs


def test_button_intervals_are_unfuzzed_previews(tmp_path):
    store = ReviewStore(None, Clock(), fsrs.Scheduler())
    preview = store.preview("a.b")
    assert preview["again"] == T0 + timedelta(minutes=1) and preview["good"] == T0 + timedelta(minutes=10)
    assert preview["hard"] < preview["good"] < preview["easy"]
    assert store.state("a.b") is None  # a preview rates nothing


# ---- the file ---------------------------------------------------------------------------------
def test_the_state_file_is_versioned_json(tmp_path):
    store = ReviewStore.open(tmp_path / FILE_NAME, Clock(), exact())
    store.rate("attention.sqrt-dk", "good", duration_ms=4200)
    document = json.loads((tmp_path / FILE_NAME).read_text(encoding="utf-8"))
    assert document["format"] == FORMAT and document["version"] == 1 and document["marks_imported"] is False
    assert set(document["cards"]["attention.sqrt-dk"]) == {"state", "step", "stability", "difficulty", "due", "last_review"}
    assert document["log"] == [{"card": "attention.sqrt-dk", "rating": 3, "time": T0.isoformat(), "duration_ms": 4200,
                                "source": "review"}]


def test_the_first_save_makes_the_config_folder(tmp_path):
    path = tmp_path / "not-yet" / "dl-workbench" / FILE_NAME  # a first start: no settings written yet
    store = ReviewStore.open(path, Clock(), exact())
    assert not store.problem
    store.rate("attention.sqrt-dk", "good")
    assert "attention.sqrt-dk" in json.loads(path.read_text(encoding="utf-8"))["cards"]


KILLED = """
import os, signal, sys
from datetime import datetime, timezone
from workbench.review import ReviewStore
store = ReviewStore.open(sys.argv[1], lambda: datetime(2026, 3, 9, 12, tzinfo=timezone.utc))
os.replace = lambda *args: os.kill(os.getpid(), signal.SIGKILL)  # killed between the write and the rename
store.rate("attention.sqrt-dk", "again")
"""


def test_the_state_file_survives_a_kill_between_write_and_rename(tmp_path):
    path = tmp_path / FILE_NAME
    store = ReviewStore.open(path, Clock(), exact())
    store.rate("attention.sqrt-dk", "easy")
    before = path.read_bytes()
    result = subprocess.run([sys.executable, "-c", KILLED, str(path)], capture_output=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert result.returncode == -9, result.stderr
    assert path.read_bytes() == before  # the old file, whole
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != FILE_NAME]
    assert leftovers and all(name.startswith(f".{FILE_NAME}.") and name.endswith(".tmp") for name in leftovers)
    again = ReviewStore.open(path, Clock(), exact())
    assert again.problem == "" and again.state("attention.sqrt-dk").due == store.state("attention.sqrt-dk").due


@pytest.mark.parametrize("content, kind, reason", [
    (b"{not json", "corrupt", "not valid JSON"),
    (b"\xff\xfe garbage", "corrupt", "not valid JSON"),
    (b"[]", "corrupt", "expected a JSON object"),
    (json.dumps({"format": FORMAT, "version": 2, "cards": {}, "log": []}).encode(), "newer", "newer"),
    (json.dumps({"format": "something else", "version": 1}).encode(), "corrupt", "format"),
    (json.dumps({"format": FORMAT, "version": 1, "cards": {"a.b": {"state": 7}}, "log": []}).encode(), "corrupt", "a.b"),
    (json.dumps({"format": FORMAT, "version": 1, "cards": {}, "log": [{"card": "a.b", "rating": 9, "time": "x",
                                                                       "duration_ms": None, "source": "review"}]}).encode(),
     "corrupt", "log #0"),
    (json.dumps({"format": FORMAT, "version": 1, "new_per_day": -3}).encode(), "corrupt", "new_per_day"),
])
def test_an_unusable_state_file_is_set_aside_and_reviews_start_afresh(tmp_path, content, kind, reason):
    path = tmp_path / FILE_NAME
    path.write_bytes(content)
    store = ReviewStore.open(path, Clock(), exact())
    aside = [p for p in tmp_path.iterdir() if p.name.startswith(f"{FILE_NAME}.{kind}-")]
    assert len(aside) == 1 and aside[0].read_bytes() == content  # kept, byte for byte
    assert not path.exists() and store.states == {} and store.log == []
    assert reason in store.problem and aside[0].name in store.problem and "set aside" in store.problem
    store.rate("a.b", "good")  # a fresh file; the one set aside stays
    assert path.is_file() and aside[0].read_bytes() == content
    second = ReviewStore.open(path, Clock(), exact())
    assert second.problem == "" and second.state("a.b") is not None


def test_a_file_that_cannot_be_set_aside_is_never_overwritten(tmp_path, monkeypatch):
    path = tmp_path / FILE_NAME
    path.write_bytes(b"{broken")

    def refuse(*args):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(os, "rename", refuse)
    store = ReviewStore.open(path, Clock(), exact())
    assert "could not be set aside" in store.problem and "not saved" in store.problem
    store.rate("a.b", "good")
    store.set_new_per_day(3)
    assert path.read_bytes() == b"{broken" and os.listdir(tmp_path) == [FILE_NAME]


def test_a_bad_daily_limit_is_refused_and_nothing_changes(tmp_path):
    store = ReviewStore.open(tmp_path / FILE_NAME, Clock(), exact())
    for bad in (-1, 1000, 2.5, "7", True):
        with pytest.raises(ReviewError, match="new cards a day"):
            store.set_new_per_day(bad)
    assert store.new_per_day == 10 and not (tmp_path / FILE_NAME).exists()
    with pytest.raises(ReviewError, match="rating"):
        store.rate("a.b", "perfect")


# ---- what is due --------------------------------------------------------------------------------
def test_new_cards_come_at_the_daily_limit_and_due_cards_first():
    clock = Clock()
    deck = [card(f"t.c{i}") for i in range(8)]
    store = ReviewStore(None, clock, exact())
    store.new_per_day = 3
    assert [c.id for c in store.queue(deck)] == ["t.c0", "t.c1", "t.c2"]
    for c in store.queue(deck):
        store.rate(c.id, "easy")  # learned: due in days
    assert store.introduced_today() == 3 and store.queue(deck) == []  # today's new cards are done
    assert store.next_due(deck) == min(store.state(f"t.c{i}").due for i in range(3))
    clock.now = T0 + timedelta(days=1)
    assert [c.id for c in store.queue(deck)] == ["t.c3", "t.c4", "t.c5"]  # a new day: three more
    clock.now = T0 + timedelta(days=30)  # everything reviewed is due, before the new ones
    queue = [c.id for c in store.queue(deck)]
    assert queue[:3] == sorted(["t.c0", "t.c1", "t.c2"], key=lambda i: store.state(i).due) and queue[3:] == ["t.c3", "t.c4", "t.c5"]
    counts = store.counts(deck)
    assert counts[""].due == 3 and counts[""].learned == 3 and counts[""].new == 5 and counts[""].total == 8


def test_learning_steps_due_soon_are_shown_when_nothing_else_is_due():
    clock = Clock()
    deck = [card("t.a")]
    store = ReviewStore(None, clock, exact())
    store.rate("t.a", "again")  # due in a minute
    assert store.queue(deck) == [deck[0]]  # learn ahead (Anki's 20 minutes)
    store.rate("t.a", "good")
    store.rate("t.a", "good")  # graduated: days away
    assert store.queue(deck) == [] and store.state("t.a").due - T0 > LEARN_AHEAD


def test_cards_added_later_appear_as_new_and_unknown_states_are_kept(tmp_path):
    path = tmp_path / FILE_NAME
    store = ReviewStore.open(path, Clock(), exact())
    store.rate("t.old", "easy")
    store.rate("t.removed", "easy")
    later = ReviewStore.open(path, Clock(), exact())
    deck = [card("t.old"), card("t.added")]
    assert [c.id for c in later.queue(deck)] == ["t.added"]
    counts = later.counts(deck)["t"]
    assert (counts.learned, counts.new, counts.total) == (1, 1, 2)
    later.rate("t.added", "good")
    assert "t.removed" in json.loads(path.read_text())["cards"]  # kept, should the card come back


def test_quiz_marks_are_carried_over_once(tmp_path):
    path = tmp_path / FILE_NAME
    store = ReviewStore.open(path, Clock(), exact())
    assert store.import_marks({"t.got": "got", "t.again": "again", "t.gone": "got", "t.bad": "maybe"},
                              known=["t.got", "t.again", "t.fresh"]) == 2
    assert store.state("t.got").state == fsrs.State.Review and store.state("t.got").due - T0 >= timedelta(days=1)
    assert store.state("t.again").due == T0 + timedelta(minutes=1)
    assert store.state("t.gone") is None and store.state("t.bad") is None
    assert store.introduced_today() == 0  # carried over: not today's new cards
    assert {e["source"] for e in store.log} == {"quiz"}
    again = ReviewStore.open(path, Clock(), exact())
    assert again.marks_imported and again.import_marks({"t.fresh": "got"}) == 0 and again.state("t.fresh") is None


def test_marks_as_the_settings_keep_them():
    assert parse_marks('{"a.b": "got", "c.d": "again", "e.f": 3}') == {"a.b": "got", "c.d": "again"}
    for bad in ("{nope", "[1]", '"got"', None):
        assert parse_marks(bad) == {}


# ---- the Review tab -----------------------------------------------------------------------------
def _review(qtbot, window):
    window.show_review()
    dialog = window.questions
    dialog.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is dialog, timeout=5000)
    return dialog, dialog.review


def test_review_with_the_keyboard_space_reveals_and_1_to_4_rate(qtbot, window, store, tmp_path):
    store.setValue("quiz_marks", json.dumps({"attention.sqrt-dk": "got", "floats.range": "again"}))
    dialog, pane = _review(qtbot, window)
    assert dialog.tabs.currentWidget() is pane and "to do" in dialog.tabs.tabText(1)
    first = pane.card
    assert first is not None and window.panel.question_card is first and not window.panel.card_answer_shown
    answer = first.text("answer")
    assert answer not in pane.view.toPlainText() and not pane.rate_buttons["good"].isEnabled()
    key = dialog.windowHandle()  # through the window, as a key press arrives: shortcuts included
    qtbot.keyClick(key, Qt.Key_3)  # no rating before the answer is seen
    qtbot.wait(150)
    assert pane.card is first and pane.store.state(first.id) is None
    qtbot.keyClick(key, Qt.Key_Space)
    qtbot.waitUntil(lambda: pane.revealed)
    assert answer in pane.view.toPlainText() and window.panel.card_answer_shown
    assert "10 min" in pane.rate_buttons["good"].text() and "1 min" in pane.rate_buttons["again"].text()
    qtbot.keyClick(key, Qt.Key_3)
    qtbot.waitUntil(lambda: pane.card is not first)
    state = pane.store.state(first.id)
    assert state is not None and "next review in 10 min" in pane.status.text()
    assert not pane.revealed and window.panel.question_card is pane.card
    second = pane.card
    qtbot.keyClick(key, Qt.Key_Space)
    qtbot.waitUntil(lambda: pane.revealed)
    qtbot.keyClick(key, Qt.Key_4)
    qtbot.waitUntil(lambda: pane.card is not second)
    assert pane.store.state(second.id).state == fsrs.State.Review and " d (" in pane.status.text()
    saved = json.loads((tmp_path / FILE_NAME).read_text(encoding="utf-8"))  # beside settings.ini
    assert set(saved["cards"]) == {"attention.sqrt-dk", "floats.range", first.id, second.id}
    assert saved["marks_imported"] and [e["source"] for e in saved["log"]].count("quiz") == 2


def test_the_daily_limit_and_the_topic_view(qtbot, window):
    dialog, pane = _review(qtbot, window)
    pane.limit.setValue(2)
    assert len(pane.queue) == 2 and pane.store.new_per_day == 2 and "2 to do" in dialog.tabs.tabText(1)
    for _ in range(2):
        pane.reveal()
        pane.rate("easy")
    assert pane.card is None
    text = pane.view.toPlainText()
    assert "Nothing to review now" in text and "Today's new cards are done" in text and "next card is due" in text
    rows = {pane.table.item(r, 0).text(): [pane.table.item(r, c).text() for c in range(1, 5)]
            for r in range(pane.table.rowCount())}
    assert rows["All topics"] == ["0", "0", "2", str(len(CARDS) - 2)]
    assert len(rows) == 1 + len(TOPICS)
    pane.limit.setValue(5)  # three more today
    floats = next(r for r in range(pane.table.rowCount()) if pane.table.item(r, 0).data(Qt.UserRole) == "floats")
    pane.table.selectRow(floats)  # only this topic's cards
    assert pane.queue and all(c.topic == "floats" for c in pane.queue)


def test_review_in_chinese_and_after_a_language_switch(qtbot, window):
    dialog, pane = _review(qtbot, window)
    window.set_language("zh_CN")  # rebuilt in Chinese, still on Review
    dialog = window.questions
    assert dialog.tabs.currentWidget() is dialog.review and dialog.tabs.tabText(1).startswith("复习")
    pane = dialog.review
    assert pane.reveal_button.text() == "显示答案（空格）" and "重来" in pane.rate_buttons["again"].text()
    assert "现在要复习" in pane.summary.text() and pane.table.horizontalHeaderItem(1).text() == "到期"
    assert any("\u4e00" <= ch <= "\u9fff" for ch in pane.card.text("question"))
    set_language("en")


def test_a_corrupt_state_file_is_reported_in_the_window(qtbot, store, tmp_path):
    (tmp_path / FILE_NAME).write_text("{oops")
    window = MainWindow(Style(), "optimizers", store=store)
    qtbot.addWidget(window)
    window.show_review()
    pane = window.questions.review
    assert pane.problem.isVisibleTo(window.questions) and "set aside" in pane.problem.text()
    assert any(p.name.startswith(f"{FILE_NAME}.corrupt-") for p in tmp_path.iterdir())
    window.close()


# ---- the command line ---------------------------------------------------------------------------
def run(*args, config, extra=None):
    env = {**os.environ, "WORKBENCH_CONFIG_DIR": str(config), "QT_QPA_PLATFORM": "offscreen", **(extra or {})}
    return subprocess.run([WORKBENCH, *args], capture_output=True, text=True, timeout=120, env=env)


def test_cli_due_cards_and_stats(tmp_path):
    fresh = run("cards", "--due", config=tmp_path)
    assert fresh.returncode == 0, fresh.stderr
    lines = fresh.stdout.splitlines()
    assert len(lines) == 10 and all(line.split()[2] == "new" for line in lines)  # the default daily limit
    assert [line.split()[0] for line in lines] == [c.id for c in CARDS[:10]]
    assert not (tmp_path / FILE_NAME).exists()  # listing writes nothing
    past = Clock(T0 - timedelta(days=60))
    store = ReviewStore.open(tmp_path / FILE_NAME, past, exact())
    store.rate("floats.range", "easy")
    store.rate("attention.sqrt-dk", "good")  # a learning step: due in minutes, long ago
    due = run("cards", "--due", config=tmp_path).stdout.splitlines()
    assert [line.split()[0] for line in due[:2]] == ["attention.sqrt-dk", "floats.range"]  # earliest first
    assert due[0].split()[1] == "attention" and due[0].split()[2] == (T0 - timedelta(days=60, minutes=-10)).astimezone().strftime("%Y-%m-%d")
    assert len(due) == 2 + 10  # the two introduced two months ago do not count against today's limit
    assert run("review", "--new-per-day", "3", config=tmp_path).returncode == 0
    assert len(run("cards", "--due", "--topic", "floats", config=tmp_path).stdout.splitlines()) == 1 + 3
    stats = run("review", "--stats", config=tmp_path)
    assert stats.returncode == 0, stats.stderr
    table = {line.rsplit(None, 5)[0].strip(): line.split()[-5:] for line in stats.stdout.splitlines()[1:-1]}
    n_floats = len(cards_in_topic(CARDS, "floats"))
    assert table["Number formats"] == ["1", "0", "1", str(n_floats - 1), str(n_floats)]
    assert table["All topics"] == ["2", "1", "1", str(len(CARDS) - 2), str(len(CARDS))]
    assert "New cards a day: 3 (3 left today)" in stats.stdout
    zh = run("review", "--stats", "--lang", "zh_CN", "--topic", "floats", config=tmp_path)
    assert zh.returncode == 0 and "浮点数格式" in zh.stdout and "到期" in zh.stdout and len(zh.stdout.splitlines()) == 3


def test_cli_carries_the_marks_over_in_memory_only(tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
    settings.setValue("quiz_marks", json.dumps({"floats.range": "got"}))
    settings.sync()
    stats = run("review", "--stats", "--topic", "floats", config=tmp_path)
    assert stats.stdout.splitlines()[1].split()[-5:-2] == ["0", "0", "1"]  # learned, as the window will have it
    assert not (tmp_path / FILE_NAME).exists()


@pytest.mark.parametrize("args, expected", [
    (("review", "--new-per-day", "5000"), "--new-per-day 5000"),
    (("review", "--new-per-day", "x"), "--new-per-day"),
    (("review", "--stats", "--topic", "nope"), "unknown topic 'nope'"),
    (("review", "--topic", "floats"), "--topic goes with --stats"),
    (("cards", "--due", "--topic", "nope"), "unknown topic 'nope'"),
])
def test_cli_bad_review_input_is_one_line_and_exit_2(tmp_path, args, expected):
    result = run(*args, config=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in result.stderr
    assert not (tmp_path / FILE_NAME).exists()


def test_cli_sets_a_corrupt_file_aside_and_says_so(tmp_path):
    (tmp_path / FILE_NAME).write_text('{"format": "dl-workbench-review", "version": 99}')
    result = run("cards", "--due", config=tmp_path)
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 10
    assert len(result.stderr.strip().splitlines()) == 1 and "newer" in result.stderr and "set aside" in result.stderr
    assert [p.name.split("-")[0] for p in tmp_path.iterdir()] == [f"{FILE_NAME}.newer"]


def test_cli_finds_the_config_folder_the_window_uses(tmp_path):
    code = ("import sys; from workbench.cli import _config_folder; folder = _config_folder(); "
            "from PySide6.QtWidgets import QApplication; app = QApplication([]); app.setApplicationName('dl-workbench'); "
            "from workbench.app import settings_store; from pathlib import Path; "
            "print(folder == Path(settings_store().fileName()).parent, folder)")
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_CONFIG_DIR"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={**env, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config"),
                                 "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": os.pathsep.join(sys.path)})
    assert result.stdout.startswith("True"), result.stdout + result.stderr
    assert str(tmp_path / "config") in result.stdout
