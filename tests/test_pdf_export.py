"""Vector PDF export: `workbench export ... -o out.pdf`, `--card`, `note --pdf`, the File menu."""

import os
import re
import shutil
import subprocess
import zlib

import pytest
from PySide6.QtGui import QImage

WORKBENCH = shutil.which("workbench") or pytest.fail("the workbench entry point is not installed")


def run(*args, timeout=180):
    return subprocess.run([WORKBENCH, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})


# ---- a small reader of the PDFs QPdfWriter writes (uncompressed object table, Flate streams) ----

def pdf_objects(data: bytes) -> dict[int, tuple[bytes, bytes | None]]:
    """Object number -> (its dictionary text, its decoded stream or None)."""
    integers = {int(n): int(v) for n, v in re.findall(rb"(\d+) 0 obj\s*(\d+)\s*endobj", data)}  # indirect lengths
    objects, pos = {}, 0
    header = re.compile(rb"(\d+) 0 obj\b")
    while match := header.search(data, pos):
        start = match.end()
        end = data.find(b"endobj", start)
        stream = re.compile(rb">>\s*stream\r?\n").search(data, start, end if end != -1 else len(data))
        if stream is None:
            objects[int(match.group(1))] = (data[start:end], None)
            pos = end + 6
            continue
        head = data[start:stream.start() + 2]
        length = re.search(rb"/Length\s+(\d+)(\s+0\s+R)?", head)
        size = integers[int(length.group(1))] if length.group(2) else int(length.group(1))
        body = data[stream.end():stream.end() + size]
        if b"/FlateDecode" in head:
            body = zlib.decompress(body)
        objects[int(match.group(1))] = (head, body)
        pos = data.find(b"endobj", stream.end() + size) + 6
    return objects


PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z])")


def pages(objects):
    return [head for head, _ in objects.values() if PAGE.search(head)]


def page_content(objects, page: bytes) -> bytes:
    contents = re.search(rb"/Contents\s*(?:\[([^\]]*)\]|(\d+)\s+0\s+R)", page)
    refs = re.findall(rb"(\d+)\s+0\s+R", contents.group(1)) if contents.group(1) else [contents.group(2)]
    return b"\n".join(objects[int(ref)][1] for ref in refs)


def media_box(page: bytes) -> tuple[float, float]:
    x0, y0, x1, y1 = map(float, re.search(rb"/MediaBox\s*\[([^\]]*)\]", page).group(1).split())
    return x1 - x0, y1 - y0


def operators(content: bytes) -> dict[str, int]:
    """How often each path-construction, painting and image operator ends a line of the content."""
    counts = {}
    for op in (b"m", b"l", b"c", b"re", b"S", b"f", b"f*", b"B", b"Do", b"Tj"):
        counts[op.decode()] = len(re.findall(rb"(?:^|[\s\]>)])" + re.escape(op) + rb"\n", content))
    return counts


def check_one_vector_page(path) -> tuple[bytes, dict, tuple[float, float]]:
    data = path.read_bytes()
    assert data.startswith(b"%PDF-")
    objects = pdf_objects(data)
    found = pages(objects)
    assert len(found) == 1, f"{len(found)} pages"
    ops = operators(page_content(objects, found[0]))
    assert ops["l"] + ops["c"] + ops["re"] > 200 and ops["S"] > 20 and ops["f"] + ops["f*"] > 5, ops
    assert ops["Do"] < (ops["l"] + ops["c"] + ops["re"]) / 20, ops  # drawn, not one picture of the figure
    return data, ops, media_box(found[0])


# ---- the command line --------------------------------------------------------------------------

def test_export_pdf_is_one_vector_page_of_the_figures_aspect(tmp_path):
    pdf, png = tmp_path / "paths.pdf", tmp_path / "paths.png"
    common = ("export", "optimizers", "--size", "900x600", "--set", "surface=saddle")
    result = run(*common, "-o", str(pdf))
    assert result.returncode == 0, result.stderr
    assert "QPdfEngine" not in result.stderr and "Traceback" not in result.stderr
    assert run(*common, "-o", str(png), "--scale", "1").returncode == 0
    _, ops, (width, height) = check_one_vector_page(pdf)
    image = QImage(str(png))  # the figure and its caption, one pixel per logical pixel
    assert image.width() == 900 and image.height() > 600
    assert width / height == pytest.approx(image.width() / image.height(), rel=0.01)
    assert ops["l"] > 1000  # the optimizers' paths are polylines, not pixels
    assert "Optimizers".encode("utf-16-be") in pdf.read_bytes()  # the panel's title as the document's


def test_export_pdf_in_chinese_embeds_its_fonts(qapp, tmp_path):
    from PySide6.QtGui import QFontDatabase
    if not QFontDatabase.families(QFontDatabase.WritingSystem.SimplifiedChinese):
        pytest.skip("no font with Chinese glyphs is installed (e.g. Debian's fonts-noto-cjk): nothing to embed")
    out = tmp_path / "注意力.pdf"
    result = run("export", "attention", "--lang", "zh_CN", "-o", str(out))
    assert result.returncode == 0, result.stderr
    data, ops, _ = check_one_vector_page(out)
    assert ops["Do"] <= 10  # heatmaps and colour bars; the turned token labels are text, not pictures
    assert "注意力".encode("utf-16-be") in data  # the panel's Chinese title as the document's
    objects = pdf_objects(data)
    descriptors = [head for head, _ in objects.values() if re.search(rb"/Type\s*/FontDescriptor", head)]
    assert descriptors and all(re.search(rb"/FontFile[23]?\s", head) for head in descriptors)  # every font embedded
    cmaps = b"".join(body for _, body in objects.values() if body and b"begincmap" in body)
    codes = {int(code, 16) for code in re.findall(rb"<([0-9A-Fa-f]{4})>", cmaps)}
    assert any(0x4E00 <= code <= 0x9FFF for code in codes)  # Chinese text as text, with its glyphs embedded


def test_export_card_as_pdf(tmp_path):
    out = tmp_path / "card.pdf"
    result = run("export", "--card", "receptive_field.stacked-3x3", "-o", str(out))
    assert result.returncode == 0, result.stderr
    check_one_vector_page(out)


def test_wrong_suffix_names_pdf(tmp_path):
    result = run("export", "optimizers", "-o", str(tmp_path / "x.eps"))
    assert result.returncode == 2 and ".pdf" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.eps").exists()


def test_note_with_pdf_figures(tmp_path):
    folder = tmp_path / "notes"
    result = run("note", "floats.range", "-o", str(folder), "--pdf")
    assert result.returncode == 0, result.stderr
    text = (folder / "floats.range.md").read_text(encoding="utf-8")
    assert re.findall(r"\]\(([^)]+)\)", text) == ["floats.range.pdf"]
    assert sorted(p.name for p in folder.iterdir()) == ["floats.range.md", "floats.range.pdf"]  # no PNG
    check_one_vector_page(folder / "floats.range.pdf")


# ---- in the process --------------------------------------------------------------------------

def test_topic_markdown_links_pdf_figures():
    from workbench.cards import cards_in_topic, load_cards
    from workbench.notes import image_name, topic_markdown

    topics, cards = load_cards()
    topic = topics[0]
    chosen = cards_in_topic(cards, topic.id)
    text = topic_markdown(topic, chosen, "en", {card.id: "caption" for card in chosen}, "pdf")
    assert re.findall(r"\]\(([^)]+)\)", text) == [f"{card.id}.pdf" for card in chosen]
    assert image_name(chosen[0]) == f"{chosen[0].id}.png"  # PNG stays the default
    with pytest.raises(ValueError):
        image_name(chosen[0], "gif")


def test_pdf_export_leaves_the_live_figure_as_it_was(qapp, style):
    """Caches and pyqtgraph's export mode are switched off for the PDF only: afterwards every item
    repaints from its cache again and scatter symbols come from their atlas."""
    from PySide6.QtWidgets import QGraphicsView

    from widgets.render import offscreen_panel, pdf_bytes, pdf_page_size
    from workbench.registry import panel_class

    with offscreen_panel("optimizers", panel_class("optimizers").PARAMS.resolve({}), style) as panel:
        views = panel.figure.findChildren(QGraphicsView)
        items = [item for view in views for item in view.scene().items()]
        before = [(item.cacheMode(), getattr(item, "_exportOpts", False)) for item in items]
        view_modes = [(view.cacheMode(), view.renderHints()) for view in views]
        data = pdf_bytes(panel.figure, style, panel.title(), panel.caption())
        assert [(item.cacheMode(), getattr(item, "_exportOpts", False)) for item in items] == before
        assert [(view.cacheMode(), view.renderHints()) for view in views] == view_modes
        size = pdf_page_size(panel.figure, style, panel.caption())
    objects = pdf_objects(data)
    (page,) = pages(objects)
    assert media_box(page) == pytest.approx((size.width(), size.height()), abs=0.01)
    images = [head for head, _ in objects.values() if re.search(rb"/Subtype\s*/Image", head)]
    assert all(b"/DCTDecode" not in head for head in images)  # the heatmap kept lossless, not JPEG


def test_file_menu_exports_pdf(window, tmp_path):
    file_menu = window.menuBar().actions()[0].menu()
    assert "Export PDF…" in [action.text() for action in file_menu.actions()]
    assert window.export(str(tmp_path / "a.pdf"), "pdf")
    check_one_vector_page(tmp_path / "a.pdf")
    assert "a.pdf" in window.statusBar().currentMessage()
