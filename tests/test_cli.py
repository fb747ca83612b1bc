"""The installed ``workbench`` command, run as a subprocess."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from PySide6.QtGui import QImage

WORKBENCH = shutil.which("workbench") or pytest.fail("the workbench entry point is not installed")


def run(*args, env=None, timeout=120):
    return subprocess.run([WORKBENCH, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_export_png_scale_2_is_twice_scale_1(tmp_path):
    one, two = tmp_path / "one.png", tmp_path / "two.png"
    assert run("export", "optimizers", "-o", str(one), "--scale", "1", "--size", "900x600").returncode == 0
    result = run("export", "optimizers", "-o", str(two), "--scale", "2", "--size", "900x600",
                 "--set", "surface=saddle", "--data", str(tmp_path / "d.json"))
    assert result.returncode == 0, result.stderr
    a, b = QImage(str(one)), QImage(str(two))
    assert a.width() == 900 and b.width() == 1800 and b.height() == 2 * a.height()
    data = json.loads((tmp_path / "d.json").read_text())
    assert data["params"]["surface"] == "saddle" and data["result"]["surface"] == "saddle"


def test_export_without_a_size_grows_to_what_the_figure_needs(tmp_path):
    few, many = tmp_path / "few.png", tmp_path / "many.png"
    assert run("export", "floats", "-o", str(few), "--scale", "1", "--no-caption").returncode == 0
    shown = [f"--set=show_{name}=true" for name in ("fp64", "tf32", "fp8_e5m2", "fp4_e2m1")]
    result = run("export", "floats", "-o", str(many), "--scale", "1", "--no-caption", *shown)
    assert result.returncode == 0, result.stderr
    a, b = QImage(str(few)), QImage(str(many))
    assert a.width() == b.width() == 1280 and a.height() >= 800 and b.height() > a.height() + 150


def test_export_svg_in_chinese(tmp_path):
    out = tmp_path / "o.svg"
    result = run("export", "optimizers", "-o", str(out), "--lang", "zh_CN")
    assert result.returncode == 0, result.stderr
    assert "优化器" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize("args, expected", [
    (["export", "nope", "-o", "x.png"], "unknown panel 'nope'"),
    (["export", "optimizers", "-o", "x.png", "--set", "adam_lr=abc"], "adam_lr"),
    (["export", "optimizers", "-o", "x.png", "--set", "adam_lr=nan"], "adam_lr"),
    (["export", "optimizers", "-o", "x.png", "--set", "steps=99999"], "steps"),
    (["export", "optimizers", "-o", "x.png", "--set", "bogus=1"], "bogus: unknown parameter"),
    (["export", "optimizers", "-o", "x.png", "--set", "start_x=90"], "outside the surface's window"),
    (["export", "optimizers", "-o", "x.gif"], ".png, .svg or .pdf"),
    (["export", "optimizers", "-o", "x.png", "--scale", "5"], "--scale"),
    (["export", "optimizers", "-o", "/nonexistent-dir/x.png"], "cannot write"),
    (["export", "optimizers", "-o", "x.png", "--scene", "/nonexistent.json"], "cannot read scene"),
    (["--panel", "nope"], "unknown panel"),
    (["--set", "sgd_lr"], "expected name=value"),
    (["list", "nope"], "unknown panel"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, expected):
    result = run(*args, env={"QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in result.stderr


def test_export_attention_in_chinese_with_a_scene_and_data(tmp_path):
    scene = tmp_path / "cross.json"
    scene.write_text(json.dumps({"format": "dl-workbench-scene", "version": 1, "panel": "attention",
                                 "params": {"mode": "cross", "text": "the cat sat", "query_text": "猫坐着",
                                            "mask": "padding", "pad_to": 4}}, ensure_ascii=False), encoding="utf-8")
    out, data = tmp_path / "a.png", tmp_path / "a.json"
    result = run("export", "attention", "-o", str(out), "--scene", str(scene), "--set", "heads=2", "--lang", "zh_CN",
                 "--data", str(data))
    assert result.returncode == 0, result.stderr
    assert QImage(str(out)).width() == 2 * 1280  # --scale 2 by default
    written = json.loads(data.read_text(encoding="utf-8"))
    assert written["result"]["queries"] == ["猫", "坐", "着"] and written["result"]["keys"][-1] == "[PAD]"
    assert len(written["result"]["result"]["weights"]) == 2


@pytest.mark.parametrize("settings, expected", [
    (["heads=3"], "does not divide d_model"),
    (["text= "], "text"),
    (["temperature=inf"], "temperature"),
    (["mask=custom", "custom_mask=11/11"], "custom_mask"),
])
def test_attention_bad_input_on_the_command_line(tmp_path, settings, expected):
    args = [arg for setting in settings for arg in ("--set", setting)]
    result = run("export", "attention", "-o", str(tmp_path / "x.png"), *args, env={"QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 2 and expected in result.stderr and "Traceback" not in result.stderr


def test_export_activations_preset_values_and_data(tmp_path):
    out, data = tmp_path / "a.svg", tmp_path / "a.json"
    result = run("export", "activations", "-o", str(out), "--set", "depth_activation=relu", "--set", "init=kaiming_normal",
                 "--set", "depth=50", "--data", str(data), "--lang", "zh_CN")
    assert result.returncode == 0, result.stderr
    assert "激活函数" in out.read_text(encoding="utf-8")
    written = json.loads(data.read_text(encoding="utf-8"))
    assert len(written["result"]["flow"]["activation_std"]) == 50 and written["params"]["init"] == "kaiming_normal"


@pytest.mark.parametrize("settings, expected", [
    (["x_min=5", "x_max=1"], "x_min"),
    (["depth=0"], "depth"),
    (["init=orthogonal"], "init"),
    (["swish_beta=nan"], "swish_beta"),
])
def test_activations_bad_input_on_the_command_line(tmp_path, settings, expected):
    args = [arg for setting in settings for arg in ("--set", setting)]
    result = run("export", "activations", "-o", str(tmp_path / "x.png"), *args, env={"QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 2 and expected in result.stderr and "Traceback" not in result.stderr


def test_export_receptive_field_preset_and_bad_layers(tmp_path):
    out = tmp_path / "rf.png"
    result = run("export", "receptive_field", "-o", str(out), "--scale", "1", "--set", "layers=conv k=3 p=1; maxpool k=2 s=2",
                 "--set", "input_size=32", "--set", "layer=2", "--set", "unit_x=3", "--set", "unit_y=3")
    assert result.returncode == 0, result.stderr
    assert QImage(str(out)).width() == 1280
    bad = run("export", "receptive_field", "-o", str(out), "--set", "layers=conv k=3 s=0",
              env={"QT_QPA_PLATFORM": "offscreen"})
    assert bad.returncode == 2 and "stride" in bad.stderr and "Traceback" not in bad.stderr


def test_corrupt_scene_on_the_command_line(tmp_path):
    scene = tmp_path / "bad.json"
    scene.write_text("{oops")
    result = run("export", "optimizers", "-o", str(tmp_path / "x.png"), "--scene", str(scene))
    assert result.returncode == 2 and "not valid JSON" in result.stderr


def test_no_display_points_at_export():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run([WORKBENCH], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 1 and "no display" in result.stderr and "workbench export" in result.stderr


def test_list_panels_and_parameters():
    result = run("list")
    assert result.returncode == 0 and result.stdout.split()[0] == "optimizers"
    params = run("list", "optimizers").stdout
    assert "adam_lr" in params and "a number from 1e-05 to 10" in params and "default 0.05" in params


def test_python_dash_m_works():
    result = subprocess.run([sys.executable, "-m", "workbench", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and "workbench" in result.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_freed_temporaries_are_reused_without_page_faults():
    import resource

    import numpy as np

    from workbench.cli import keep_freed_memory

    keep_freed_memory()

    def touch_and_free() -> int:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        a = np.ones(2 ** 20)  # 8 MB, above glibc's default 128 KB mmap threshold
        del a
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    touch_and_free()
    assert touch_and_free() < 200  # 2048 pages: fresh memory would fault on every one of them


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_free_memory_kept_for_reuse_goes_back_to_the_os():
    """keep_freed_memory keeps up to 64 MB of freed blocks; hand_back_freed_memory returns them
    (in a fresh interpreter: the allocator's settings are process-wide)."""
    script = """
import numpy as np
from workbench.cli import hand_back_freed_memory, keep_freed_memory
def rss():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096 / 2 ** 20
keep_freed_memory()
held = [np.ones(2 ** 17) for _ in range(48)]  # 48 x 1 MB, each below the 32 MB mmap threshold
del held
kept = rss()
hand_back_freed_memory()
print(kept - rss())
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert float(result.stdout) > 32  # MB returned


def test_startup_report_quits_after_the_first_drawn_panel(tmp_path):
    """What the benchmark's start-up row runs: it must end by itself (a first compute drawn while
    the window was still being built used to leave it waiting forever)."""
    import os
    import subprocess
    import sys
    report = tmp_path / "startup.txt"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "WORKBENCH_STARTUP_REPORT": str(report),
           "WORKBENCH_CONFIG_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-m", "workbench", "--lang", "en"], env=env, check=True, timeout=60,
                   capture_output=True)
    paint, drawn = map(float, report.read_text().split())
    assert 0 < paint <= drawn
