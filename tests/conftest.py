"""Test configuration: offscreen Qt, a private settings folder, English by default."""

import os
import tempfile

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ["WORKBENCH_CONFIG_DIR"] = tempfile.mkdtemp(prefix="workbench-test-config-")

import pytest  # noqa: E402

from workbench.i18n import set_language  # noqa: E402


@pytest.fixture(autouse=True)
def english():
    set_language("en")
    yield
    set_language("en")


@pytest.fixture
def style():
    from widgets.style import Style
    return Style()
