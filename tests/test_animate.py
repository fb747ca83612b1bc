"""Animated exports: sweeps and played steps rendered off screen, encoded as GIF (one palette that
keeps the heatmaps' colours), MP4 (H.264) and WebP; bad options refused in one line with exit
status 2; nothing half-written; File > Export animation… with a progress bar and Cancel."""

import os
import shutil
import subprocess

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image, ImageSequence

from widgets.render import offscreen_panel
from workbench.animate import (AnimationError, Cancelled, Frames, GifWriter, export_animation, gif_palette,
                               parse_sweep, positions, sweep_frames)
from workbench.i18n import set_language
from workbench.registry import panel_class

WORKBENCH = shutil.which("workbench") or pytest.fail("the workbench entry point is not installed")
ATTENTION = panel_class("attention").PARAMS


def run(*args, timeout=180):
    return subprocess.run([WORKBENCH, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})


# ---- sweeps -------------------------------------------------------------------------------------
def test_sweeps_are_log_spaced_where_the_parameter_is():
    temperature = parse_sweep("temperature=10:0.1", ATTENTION)
    values = temperature.values(5)
    assert values == [10, 3.162, 1, 0.3162, 0.1]  # log-spaced, four significant digits for the caption
    linear = parse_sweep("temperature=10:0.1:linear", ATTENTION).values(3)
    assert linear == [10, 5.05, 0.1]
    d_model = parse_sweep("d_model=8:512", ATTENTION)
    assert not d_model.log and d_model.values(3) == [8, 260, 512] and all(isinstance(v, int) for v in d_model.values(7))
    value = parse_sweep("value=0.001:1000:log", panel_class("floats").PARAMS).values(7)
    assert value == ["0.001", "0.01", "0.1", "1", "10", "100", "1000"]


@pytest.mark.parametrize("text, expected", [
    ("nope=1:2", "--sweep nope: unknown parameter"),
    ("temperature=0.01:5", "--sweep temperature: '0.01' is not allowed"),
    ("temperature=1:nan", "--sweep temperature: 'nan' is not allowed"),
    ("temperature=2:2", "--sweep temperature: FROM and TO are both 2"),
    ("d_model=8:8.4", "--sweep d_model: '8.4' is not allowed"),
    ("mask=0:1", "--sweep mask: Mask is not a number"),
    ("temperature=1", "expected FROM:TO"),
    ("temperature=1:2:cubic", "expected FROM:TO"),
    ("temperature", "expected NAME=FROM:TO"),
])
def test_bad_sweeps_name_the_parameter(text, expected):
    with pytest.raises(AnimationError) as caught:
        parse_sweep(text, ATTENTION)
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_every_frame_of_a_sweep_is_checked_before_rendering():
    base = ATTENTION.resolve({"heads": 4})
    with pytest.raises(AnimationError, match="d_model = 9"):
        sweep_frames(parse_sweep("d_model=8:12", ATTENTION), ATTENTION, base, 5)  # 4 heads do not divide 9
    frames = sweep_frames(parse_sweep("d_model=8:512", ATTENTION), ATTENTION, ATTENTION.resolve({"heads": 1}), 4)
    assert [f["d_model"] for f in frames] == [8, 176, 344, 512]


def test_played_steps_are_spread_over_the_frames():
    assert positions(1, 4, 8) == [1, 1, 2, 2, 3, 3, 4, 4]  # few steps: each held equally long
    assert positions(0, 500, 5) == [0, 125, 250, 375, 500]  # many: both ends shown


# ---- frames -------------------------------------------------------------------------------------
def test_a_sweep_frame_shows_the_value_in_its_caption(qapp, style):
    with offscreen_panel("attention", ATTENTION.defaults(), style, (640, 400)) as panel:
        frames = Frames(panel, style, 3, parse_sweep("temperature=10:0.1", ATTENTION), scale=2)
        first, last = frames.frame(0), frames.frame(2)
        assert panel.values["temperature"] == 0.1 and panel.result.result.weights.max() > 0.9  # saturated at T = 0.1
        assert first.shape == last.shape == (frames.size[1], 1280, 4) and frames.size[0] == 1280
        assert frames.mover.show(panel, 1) == "Softmax temperature T = 1"
        assert not np.array_equal(first, last)


def test_played_frames_follow_the_run(qapp, style):
    training = panel_class("training").PARAMS.resolve({"epochs": 20, "n_points": 100})
    with offscreen_panel("training", training, style, (640, 400)) as panel:
        frames = Frames(panel, style, 3)
        epochs = []
        for i in range(3):
            frames.frame(i)
            epochs.append(panel.run.epoch)
        assert epochs == [0, 10, 20]
        frames.frame(1)  # back in time: rewound and trained again
        assert panel.run.epoch == 10
    transformer = panel_class("transformer").PARAMS.resolve({"tokens": 4, "depth": 2})
    with offscreen_panel("transformer", transformer, style, (640, 400)) as panel:
        frames = Frames(panel, style, 4)
        frames.frame(3)
        assert panel.values["view"] == "decoding" and panel.values["step"] == 4
        assert frames.mover.show(panel, 0) == "Generated tokens: 1 of 4"


def test_the_gif_palette_keeps_the_heatmap_colours(qapp, style):
    with offscreen_panel("attention", ATTENTION.defaults(), style, (640, 400)) as panel:
        frames = Frames(panel, style, 3, parse_sweep("temperature=10:0.1", ATTENTION), caption=False)
        rendered = [frames.frame(i) for i in range(3)]
    writer = GifWriter(frames.size, 10, gif_palette(rendered))
    for frame in rendered:
        writer.add(frame)
    with Image.open(_bytes(writer.data())) as gif:
        decoded = [np.asarray(f.convert("RGB"), dtype=int) for f in ImageSequence.Iterator(gif)]
    assert len(decoded) == 3
    for source, back in zip(rendered, decoded):
        error = np.abs(back - source[..., 2::-1].astype(int)).max(axis=2)
        assert error.mean() < 1 and np.percentile(error, 99) <= 16  # not a web palette's banding
        assert (error == 0).mean() > 0.9  # the palette's colours, the most frequent ones, stay exact


def _bytes(data):
    import io
    return io.BytesIO(data)


# ---- the command line ---------------------------------------------------------------------------
def test_a_gif_of_a_20_frame_sweep_has_20_frames_of_the_right_size(tmp_path):
    out = tmp_path / "temperature.gif"
    result = run("export", "attention", "--animate", "--sweep", "temperature=10:0.1", "--fps", "20", "--seconds", "1",
                 "--size", "640x400", "--no-caption", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "20 frames" in result.stdout
    with Image.open(out) as gif:
        assert gif.n_frames == 20 and gif.size == (640, 400) and gif.info["loop"] == 0
        assert [frame.info["duration"] for frame in ImageSequence.Iterator(gif)] == [50] * 20
    assert os.listdir(tmp_path) == ["temperature.gif"]


def test_an_mp4_of_the_race_decodes_to_the_expected_frames(tmp_path):
    out = tmp_path / "race.mp4"
    result = run("export", "optimizers", "--animate", "--fps", "10", "--seconds", "1.5", "--size", "640x401",
                 "-o", str(out), "--lang", "zh_CN")
    assert result.returncode == 0, result.stderr
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(out))
    assert frames == 15 and seconds == pytest.approx(1.5)
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    reader.close()
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p(tv, smpte170m/bt709/bt709")  # tagged
    width, height = meta["size"]
    assert width == 640 and height % 2 == 0 and height > 401  # the caption below; even for yuv420p
    head = out.read_bytes()[:4096]
    assert head.index(b"moov") < head.index(b"mdat") if b"mdat" in head else b"moov" in head  # faststart


def test_a_webp_plays_the_decoding(tmp_path):
    out = tmp_path / "decoding.webp"
    result = run("export", "transformer", "--animate", "--set", "tokens=4", "--set", "depth=2", "--fps", "4",
                 "--seconds", "1", "--size", "640x400", "-o", str(out))
    assert result.returncode == 0, result.stderr
    with Image.open(out) as webp:
        assert webp.is_animated and webp.n_frames == 4 and webp.size[0] == 640


@pytest.mark.parametrize("args, expected", [
    (["attention", "--sweep", "nope=1:2"], "--sweep nope: unknown parameter"),
    (["attention", "--sweep", "temperature=0:5"], "--sweep temperature: '0' is not allowed; Softmax temperature T (temperature) allows a number from 0.05 to 20"),
    (["attention", "--sweep", "temperature=3:3"], "--sweep temperature: FROM and TO are both 3"),
    (["attention", "--sweep", "heads=1:16"], "heads = 3"),  # d_model 32 is not divided by 3 heads
    (["attention"], "panel attention does not play"),
    (["optimizers", "--fps", "70"], "--fps 70"),
    (["optimizers", "--fps", "0"], "--fps 0: expected a whole number from 1 to 50"),
    (["optimizers", "--seconds", "0"], "--seconds 0"),
    (["optimizers", "--fps", "50", "--seconds", "100"], "5000 frames; at most 3600"),
    (["optimizers", "--data", "d.json"], "--data goes with a still export"),
])
def test_bad_animation_options_are_one_line_and_exit_2(tmp_path, args, expected):
    out = tmp_path / "x.gif"
    result = run("export", args[0], "--animate", "-o", str(out), *args[1:])
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in result.stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("args, expected", [
    (["-o", "x.gif", "--sweep", "temperature=1:2"], "--sweep goes with --animate"),
    (["-o", "x.gif"], ".png, .svg or .pdf (or add --animate)"),
    (["--animate", "-o", "x.png"], "must end in .gif, .mp4 or .webp"),
])
def test_animation_options_need_animate_and_its_formats(tmp_path, args, expected):
    result = run("export", "attention", *args)
    assert result.returncode == 2 and expected in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_an_unwritable_target_leaves_nothing_half_written(tmp_path):
    missing = tmp_path / "missing" / "x.gif"
    result = run("export", "optimizers", "--animate", "-o", str(missing))
    assert result.returncode == 2 and f"cannot write {missing}" in result.stderr
    target = tmp_path / "ro.mp4"
    target.write_bytes(b"keep")
    target.chmod(0o444)
    result = run("export", "optimizers", "--animate", "-o", str(target))
    assert result.returncode == 2 and "is read-only" in result.stderr
    assert target.read_bytes() == b"keep" and sorted(os.listdir(tmp_path)) == ["ro.mp4"]


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_a_cancelled_or_failed_export_writes_nothing(qapp, style, tmp_path, suffix, monkeypatch):
    out = tmp_path / f"x{suffix}"
    out.write_bytes(b"old")
    values = ATTENTION.defaults()
    with pytest.raises(Cancelled):
        export_animation("attention", values, style, out, fps=10, seconds=1, sweep="temperature=2:1", size=(400, 300),
                         progress=lambda done, total: done < 4)
    assert out.read_bytes() == b"old" and os.listdir(tmp_path) == [out.name]

    def broken(self, index):
        raise MemoryError("no room for a frame")
    monkeypatch.setattr(Frames, "frame", broken)
    with pytest.raises(MemoryError):
        export_animation("attention", values, style, out, fps=10, seconds=1, sweep="temperature=2:1", size=(400, 300))
    assert out.read_bytes() == b"old" and os.listdir(tmp_path) == [out.name]


# ---- the window ---------------------------------------------------------------------------------
def test_export_animation_from_the_window_with_progress_and_cancel(qtbot, store, style, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QProgressDialog

    from workbench.app import MainWindow

    window = MainWindow(style, "attention", store=store)
    qtbot.addWidget(window)
    window.show()
    assert tr_menu(window, "Export animation…")
    out = tmp_path / "a.gif"
    assert window.export_animation(str(out), sweep="temperature=5:0.5", fps=5, seconds=1)
    with Image.open(out) as gif:
        assert gif.n_frames == 5 and "Exported" in window.statusBar().currentMessage()
    monkeypatch.setattr(QProgressDialog, "wasCanceled", lambda self: True)
    assert not window.export_animation(str(tmp_path / "b.mp4"), sweep="temperature=5:0.5", fps=5, seconds=1)
    assert "cancelled" in window.statusBar().currentMessage() and not (tmp_path / "b.mp4").exists()
    window.close()


def tr_menu(window, text):
    return any(action.text() == text for menu in window.menuBar().actions() for action in menu.menu().actions())


def test_the_animation_dialog_refuses_a_bad_sweep_and_speaks_chinese(qtbot, style):
    from widgets.animation import AnimationDialog

    dialog = AnimationDialog(style, "attention", panel_class("attention").PARAMS.defaults())
    qtbot.addWidget(dialog)
    assert not dialog.play.isEnabled() and dialog.sweep.isChecked()  # attention does not play
    dialog.param.setCurrentIndex(dialog.param.findData("temperature"))
    assert dialog.spacing.currentData() == "log" and dialog.start.text() == "0.05" and dialog.stop.text() == "20"
    dialog.start.setText("3")
    dialog.stop.setText("3")
    dialog.accept()
    assert dialog.result() == 0 and dialog.error.isVisibleTo(dialog) and "FROM and TO are both 3" in dialog.error.text()
    dialog.stop.setText("0.1")
    dialog.format.setCurrentIndex(dialog.format.findData(".mp4"))
    dialog.accept()
    assert dialog.result() == 1
    assert dialog.options() == {"sweep": "temperature=3:0.1:log", "fps": 20, "seconds": 4.0, "scale": 1,
                                "caption": True, "suffix": ".mp4"}
    set_language("zh_CN")
    chinese = AnimationDialog(style, "optimizers", panel_class("optimizers").PARAMS.defaults())
    qtbot.addWidget(chinese)
    assert chinese.windowTitle() == "导出动画" and chinese.play.isChecked() and "优化器赛跑" in chinese.play.text()
    set_language("en")
