"""Reliability of what the workbench reads and writes: image size limits, scene files, settings,
corrupt card files and the files it writes (modes, read-only targets, all-or-nothing)."""

import json
import os
import shutil
import stat
import subprocess
from importlib import resources

import pytest
from PySide6.QtCore import QByteArray
from PySide6.QtWidgets import QWidget

from widgets.render import MAX_SIDE, ImageTooLarge, check_image_size, render_image
from widgets.style import Style
from workbench.app import DEFAULT_WINDOW_SIZE, MainWindow
from workbench.params import BRIEF, ParamError, brief
from workbench.registry import panel_class
from workbench.scene import MAX_BYTES, SceneError, read_scene, write_atomic, write_files_atomic

WORKBENCH = shutil.which("workbench") or pytest.fail("the workbench entry point is not installed")
CARD = "attention.sqrt-dk"


def run(*args, env=None, timeout=120, umask=None):
    return subprocess.run([WORKBENCH, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen", **(env or {})},
                          preexec_fn=None if umask is None else (lambda: os.umask(umask)))


def refused(result, *expected):
    """Exit 2, no traceback, and every ``expected`` text in the message."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    for text in expected:
        assert text in result.stderr, (text, result.stderr)


def scene_file(path, params=None, **top):
    document = {"format": "dl-workbench-scene", "version": 1, "panel": "optimizers", "params": params or {}, **top}
    path.write_text(json.dumps(document))
    return path


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# ---- images too large to render -------------------------------------------------------------------
def test_export_larger_than_the_pixel_limit_is_refused_before_rendering(tmp_path):
    out = tmp_path / "big.png"
    result = run("export", "floats", "--size", "8000x8000", "--scale", "3", "-o", str(out), timeout=60)
    refused(result, "--size 8000x8000", "--scale 3", "24000 x 24000", str(MAX_SIDE))
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


def test_the_limit_counts_scaled_pixels_and_the_caption(qapp):
    check_image_size(8000, 8000, 2)  # the largest --size at --scale 2 fits
    with pytest.raises(ImageTooLarge, match=str(MAX_SIDE)):
        check_image_size(200, MAX_SIDE // 3 + 1, 3)
    widget = QWidget()
    widget.resize(400, MAX_SIDE // 2 - 2)
    assert render_image(widget, Style(), 1).height() == MAX_SIDE // 2 - 2
    with pytest.raises(ImageTooLarge):  # nothing is allocated: 2 x (8190 + the caption's lines) > 16384
        render_image(widget, Style(), 2, "a caption " * 20)
    widget.deleteLater()


def test_gui_export_and_copy_of_a_too_large_image_are_messages(window, tmp_path, monkeypatch):
    monkeypatch.setattr("widgets.render.MAX_SIDE", 100)
    assert not window.export(str(tmp_path / "a.png"), "png", 3)
    assert "pixels a side" in window.statusBar().currentMessage() and not (tmp_path / "a.png").exists()
    window.copy_image()
    assert "pixels a side" in window.statusBar().currentMessage()


# ---- scene files ------------------------------------------------------------------------------------
def test_a_huge_integer_is_refused_with_a_short_message(tmp_path, window):
    path = scene_file(tmp_path / "big.json", {"adam_lr": 10 ** 400})
    result = run("export", "optimizers", "-o", str(tmp_path / "x.png"), "--scene", str(path))
    refused(result, "adam_lr", "1.000000e+400")
    assert len(result.stderr) < 300
    assert not window.open_scene(str(path))
    assert "adam_lr" in window.statusBar().currentMessage()


def test_params_refuse_overflowing_integers_and_quote_values_briefly():
    param = panel_class("optimizers").PARAMS["adam_lr"]
    with pytest.raises(ParamError, match="adam_lr"):
        param.parse(-10 ** 400)
    with pytest.raises(ParamError) as caught:
        param.parse("x" * 50_000_000)
    assert len(str(caught.value)) < 300
    assert brief("x" * 1000).endswith("…") and len(brief("x" * 1000)) == BRIEF
    assert brief(10 ** 5000) == "1.000000e+5000"  # repr would raise: more than 4300 digits
    assert brief("short") == "'short'"


BAD_SCENES = {  # name: (content, expected in the message)
    "version_0": ({"version": 0}, "version 0 is not a scene version"),
    "version_-5": ({"version": -5}, "version -5 is not a scene version"),
    "version_huge": ({"version": 10 ** 400}, "newer"),
    "long_value": ({"params": {"adam_lr": "x" * 900_000}}, "adam_lr"),
    "long_panel": ({"panel": "p" * 900_000}, "is for panel"),
    "5000_digits": ('{"version": 1, "x": ' + "9" * 5000 + "}", "not valid JSON"),
    "too_large": (" " * (MAX_BYTES + 1), f"larger than {MAX_BYTES} bytes"),
}


@pytest.mark.parametrize("name", list(BAD_SCENES))
def test_bad_scene_files_are_refused_in_a_short_line(tmp_path, name):
    content, expected = BAD_SCENES[name]
    path = tmp_path / "bad.json"
    if isinstance(content, str):
        path.write_text(content)
    else:
        scene_file(path, **content)
    result = run("export", "optimizers", "-o", str(tmp_path / "x.png"), "--scene", str(path))
    refused(result, expected)
    assert len(result.stderr) < 500 and not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_only_regular_files_are_read_as_scenes(tmp_path, kind):
    if kind == "fifo":
        path = tmp_path / "scene.fifo"
        os.mkfifo(path)  # nobody writes: reading it would block forever
    else:
        path = "/dev/zero" if kind == "device" else tmp_path
    with pytest.raises(SceneError, match="not a regular file"):
        read_scene(path)
    result = run("export", "optimizers", "-o", str(tmp_path / "x.png"), "--scene", str(path), timeout=60)
    refused(result, "cannot read scene", "not a regular file")


# ---- settings ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("marks", ["[" * 100_000 + "]" * 100_000, '{"a": {"b": "got"}}', "[1, 2]", '"got"'])
def test_unusable_quiz_marks_give_none_and_the_questions_window_opens(qtbot, store, marks):
    store.setValue("quiz_marks", marks)
    window = MainWindow(Style(), "optimizers", store=store)
    qtbot.addWidget(window)
    window.show_questions()
    assert window.questions.isVisible() and window.questions.marks == {}
    window.close()


@pytest.mark.parametrize("geometry", [QByteArray(b"junk"), QByteArray(b"\x01\xd9\xd0\xcb" + b"\x00" * 60)])
def test_unusable_window_geometry_gives_the_default_size(qtbot, store, geometry):
    store.setValue("geometry", geometry)
    window = MainWindow(Style(), "optimizers", store=store)
    qtbot.addWidget(window)
    assert (window.width(), window.height()) == DEFAULT_WINDOW_SIZE
    window.close()


# ---- corrupt card files ------------------------------------------------------------------------------
@pytest.fixture
def cards_dir(tmp_path):
    """A copy of the card files; tests break one of them."""
    folder = tmp_path / "cards"
    folder.mkdir()
    for entry in resources.files("assets").joinpath("cards").iterdir():
        if entry.name.endswith(".json"):
            (folder / entry.name).write_bytes(entry.read_bytes())
    return folder


@pytest.mark.parametrize("args", [["cards"], ["export", "--card", CARD, "-o", "x.png"], ["--card", CARD],
                                  ["note", CARD, "-o", "notes"]])
def test_a_corrupt_card_file_is_reported_not_a_traceback(tmp_path, cards_dir, args):
    (cards_dir / "attention.json").write_text('{"version": 1, "cards": [')
    result = subprocess.run([WORKBENCH, *args], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                            env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "WORKBENCH_CARDS_DIR": str(cards_dir)})
    refused(result, "attention.json", "cannot be read as JSON")
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "notes").exists()


def test_a_failed_note_leaves_no_folder_behind(tmp_path, cards_dir):
    data = json.loads((cards_dir / "attention.json").read_text(encoding="utf-8"))
    data["cards"][0]["scene"] = {"d_model": 7}  # well-formed, but not a value the panel accepts
    (cards_dir / "attention.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    result = run("note", CARD, "-o", str(tmp_path / "new" / "notes"), env={"WORKBENCH_CARDS_DIR": str(cards_dir)})
    refused(result, "d_model")
    assert not (tmp_path / "new").exists()


# ---- files written -----------------------------------------------------------------------------------
def test_new_files_follow_the_umask_and_replaced_files_keep_their_mode(tmp_path):
    out, data = tmp_path / "a.png", tmp_path / "a.json"
    result = run("export", "optimizers", "--scale", "1", "-o", str(out), "--data", str(data), umask=0o027)
    assert result.returncode == 0, result.stderr
    assert mode(out) == mode(data) == 0o640
    out.chmod(0o604)
    result = run("export", "optimizers", "--scale", "1", "-o", str(out), umask=0o077)
    assert result.returncode == 0, result.stderr
    assert mode(out) == 0o604
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "s.json", b"{}")
    finally:
        os.umask(old)
    assert mode(tmp_path / "s.json") == 0o644


def test_a_read_only_target_is_refused_and_kept(tmp_path):
    target = tmp_path / "ro.png"
    target.write_bytes(b"keep")
    target.chmod(0o444)
    with pytest.raises(PermissionError, match="is read-only") as caught:
        write_atomic(target, b"new")
    assert caught.value.filename == str(target)
    result = run("export", "optimizers", "-o", str(target))
    refused(result, f"cannot write {target}: is read-only")
    assert target.read_bytes() == b"keep" and os.listdir(tmp_path) == ["ro.png"]


def test_a_folder_as_target_names_the_target(tmp_path):
    target = tmp_path / "out.png"
    target.mkdir()
    with pytest.raises(IsADirectoryError) as caught:
        write_atomic(target, b"x")
    assert caught.value.filename == str(target)
    refused(run("export", "optimizers", "-o", str(target)), f"cannot write {target}:")
    assert os.listdir(tmp_path) == ["out.png"]  # no temporary file left


@pytest.mark.parametrize("data", ["missing/d.json", "folder"])
def test_a_failed_data_file_writes_no_image_either(tmp_path, data):
    (tmp_path / "folder").mkdir()
    out = tmp_path / "a.png"
    out.write_bytes(b"old")
    result = run("export", "optimizers", "--scale", "1", "-o", str(out), "--data", str(tmp_path / data))
    refused(result, f"cannot write {tmp_path / data}")
    assert out.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["a.png", "folder"]


def test_data_and_image_must_be_two_files(tmp_path):
    out = tmp_path / "a.png"
    refused(run("export", "optimizers", "-o", str(out), "--data", str(out)), "--data")


def test_files_are_written_all_or_nothing(tmp_path):
    with pytest.raises(FileNotFoundError) as caught:
        write_files_atomic({tmp_path / "a.md": b"a", tmp_path / "missing" / "b.png": b"b"})
    assert caught.value.filename == str(tmp_path / "missing" / "b.png")
    assert os.listdir(tmp_path) == []
    write_files_atomic({tmp_path / "a.md": b"a", tmp_path / "b.png": b"b"})
    assert sorted(os.listdir(tmp_path)) == ["a.md", "b.png"]


def test_a_usable_window_geometry_is_restored(qtbot, store):
    first = MainWindow(Style(), "optimizers", store=store)
    qtbot.addWidget(first)
    first.resize(790, 500)
    store.setValue("geometry", first.saveGeometry())
    again = MainWindow(Style(), "optimizers", store=store)
    qtbot.addWidget(again)
    assert (again.width(), again.height()) == (790, 500)
    first.close()
    again.close()
