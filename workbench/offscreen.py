"""Qt's offscreen platform with a screen of a chosen size (Qt-free: set before Qt is imported).

Qt's own offscreen screen is 800 x 800 logical pixels, smaller than the workbench's first window,
which fits itself to its screen's available geometry (``MainWindow.fit_to_screen``). The tests, the
benchmark and the soak run on a desktop-sized screen so that the window keeps its default size
(1500 x 920) there; a test of a laptop's screen asks for 1366 x 768.
"""

from __future__ import annotations

import json
import os
import tempfile

DESKTOP = (1920, 1080)


def platform(width: int = DESKTOP[0], height: int = DESKTOP[1]) -> str:
    """A ``QT_QPA_PLATFORM`` value: the offscreen platform with one screen of ``width`` x
    ``height`` logical pixels at 96 dpi, described in a JSON file in the temporary folder (the
    platform's ``configfile`` option)."""
    path = os.path.join(tempfile.gettempdir(), f"workbench-offscreen-{int(width)}x{int(height)}.json")
    screen = {"name": f"offscreen-{width}x{height}", "x": 0, "y": 0, "width": int(width), "height": int(height),
              "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1}
    text = json.dumps({"screens": [screen]})
    try:
        with open(path, encoding="utf-8") as file:
            current = file.read()
    except OSError:
        current = None
    if current != text:  # written whole and then renamed: a process reading it never sees half a file
        fd, temporary = tempfile.mkstemp(prefix=".workbench-offscreen-", dir=os.path.dirname(path))
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    return f"offscreen:configfile={path}"
