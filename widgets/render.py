"""Render a panel's figure to a sharp PNG (1x/2x/3x), an SVG, a vector PDF, or the clipboard."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Mapping

from PySide6.QtCore import QByteArray, QBuffer, QIODevice, QMarginsF, QPoint, QRect, QRectF, QSize, QSizeF, Qt
from PySide6.QtGui import QColor, QFontMetrics, QImage, QPageLayout, QPageSize, QPainter, QPdfWriter, QRegion
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QGraphicsItem, QGraphicsView, QWidget

from widgets.style import Style
from workbench.i18n import tr
from workbench.scene import write_atomic


def _caption_height(style: Style, caption: str, width: int) -> int:
    if not caption:
        return 0
    metrics = QFontMetrics(style.font(0.95))
    rect = metrics.boundingRect(QRect(0, 0, width - 16, 10_000), Qt.TextWordWrap, caption)
    return rect.height() + 12


def _paint(painter: QPainter, widget: QWidget, style: Style, caption: str, vector: bool = False) -> None:
    """The widget and its caption below it. ``vector`` (SVG, PDF): each widget clipped to its own
    rectangle (see :func:`_render_clipped`)."""
    size = widget.size()
    painter.fillRect(QRect(QPoint(0, 0), size), QColor(style.background))
    if vector:
        _render_clipped(widget, painter, QPoint(0, 0), QWidget.DrawWindowBackground)
    else:
        QWidget.render(widget, painter, QPoint(0, 0))  # the QWidget overload: widget and children
    if caption:
        painter.setPen(QColor(style.foreground))
        painter.setFont(style.font(0.95))
        height = _caption_height(style, caption, size.width())
        painter.fillRect(QRect(0, size.height(), size.width(), height), QColor(style.background))
        painter.drawText(QRectF(8, size.height() + 6, size.width() - 16, height - 6),
                         Qt.TextWordWrap | Qt.AlignLeft | Qt.AlignTop, caption)


def _render_clipped(widget: QWidget, painter: QPainter, offset: QPoint, flags) -> None:
    """``widget`` at ``offset``, then its visible children, each clipped to its rectangle. The
    vector engines (QSvgGenerator, QPdfWriter) ignore the system clip that keeps a child's
    painting inside it on screen and in a PNG, so a plot's lines ran past its view (e.g. the
    attention panel's token axes up to the top of the figure). A clip that a widget itself
    replaces (an item view's cell text) still is not bounded by its parent."""
    painter.save()
    painter.setClipRect(QRect(offset, widget.size()), Qt.IntersectClip)
    QWidget.render(widget, painter, offset, QRegion(), flags)  # this widget alone
    for child in widget.children():  # in stacking order, bottom first
        if isinstance(child, QWidget) and child.isVisible() and not child.isWindow():
            _render_clipped(child, painter, offset + child.pos(), QWidget.RenderFlags())
    painter.restore()


@contextmanager
def _as_vectors(widget: QWidget, painter: QPainter):
    """While ``widget`` is rendered to SVG or PDF: its plots drawn as vector paths. Items cached as
    pixmaps for fast repaints (QGraphicsItem.DeviceCoordinateCache: titles, axes, static curves) and
    the views' cached backgrounds would be embedded as images, pyqtgraph's scatter symbols as
    fragments of a pixmap atlas; pyqtgraph's export mode draws symbols as paths and hides the plots'
    auto-range buttons. Images (heatmaps) are kept lossless in a PDF, not JPEG-compressed.
    Everything is put back on exit."""
    views = [view for view in (widget, *widget.findChildren(QGraphicsView)) if isinstance(view, QGraphicsView)]
    scenes = {id(scene): scene for scene in (view.scene() for view in views) if scene is not None}
    items = [item for scene in scenes.values() for item in scene.items()]
    cached_views = [(view, view.cacheMode(), view.renderHints()) for view in views]
    cached_items = [(item, item.cacheMode()) for item in items if item.cacheMode() != QGraphicsItem.NoCache]
    exported = [item for item in items if hasattr(item, "setExportMode")]
    try:
        for view, _, _ in cached_views:
            view.setCacheMode(QGraphicsView.CacheNone)
            view.setRenderHint(QPainter.LosslessImageRendering)
        for item, _ in cached_items:
            item.setCacheMode(QGraphicsItem.NoCache)
        for item in exported:
            item.setExportMode(True, {"painter": painter})
        yield
    finally:
        for item in exported:
            item.setExportMode(False)
        for item, mode in cached_items:
            item.setCacheMode(mode)
        for view, mode, hints in cached_views:
            view.setCacheMode(mode)
            view.setRenderHints(hints)


MAX_SIDE = 16384  # pixels a side of a rendered image: 1 GB as ARGB32. Qt's raster engine crashes
# (SIGSEGV) past 2 GB of pixels (e.g. 24000 x 24000), far below what --size and --scale allow.


class ImageTooLarge(ValueError):
    """The image asked for is larger than MAX_SIDE pixels a side; the message gives its size."""


def check_image_size(width: int, height: int, scale: int) -> None:
    """Raise ImageTooLarge unless a ``width`` x ``height`` figure (logical pixels) at ``scale``
    fits in MAX_SIDE pixels a side."""
    if max(width, height) * scale > MAX_SIDE:
        raise ImageTooLarge(tr("{width} x {height} at {scale}x is {pixels_w} x {pixels_h} pixels; "
                               "at most {limit} pixels a side can be rendered").format(
            width=width, height=height, scale=scale, pixels_w=width * scale, pixels_h=height * scale, limit=MAX_SIDE))


def caption_height(style: Style, caption: str, width: int) -> int:
    """Logical pixels the caption takes below a figure ``width`` wide (0 without a caption)."""
    return _caption_height(style, caption, width)


def render_image(widget: QWidget, style: Style, scale: int = 1, caption: str = "", height: int | None = None) -> QImage:
    """The widget as an image at ``scale`` x its logical size (vector-sharp text), caption below.
    ``height``: the image's logical height, the same for every frame of an animation (a longer
    caption is cut off at the bottom); default: the widget and all of its caption.
    ImageTooLarge when that is more than MAX_SIDE pixels a side, MemoryError when it cannot be had."""
    size = widget.size()
    if height is None:
        height = size.height() + _caption_height(style, caption, size.width())
    check_image_size(size.width(), height, scale)
    image = QImage(size.width() * scale, height * scale, QImage.Format_ARGB32_Premultiplied)
    if image.isNull():
        raise MemoryError(f"no memory for a {size.width() * scale} x {height * scale} image")
    image.setDevicePixelRatio(scale)
    image.fill(QColor(style.background))
    painter = QPainter(image)
    painter.setRenderHint(QPainter.Antialiasing)
    painter.setRenderHint(QPainter.TextAntialiasing)
    _paint(painter, widget, style, caption)
    painter.end()
    return image


def png_bytes(widget: QWidget, style: Style, scale: int = 1, caption: str = "") -> bytes:
    """The widget as PNG data (see :func:`render_image`)."""
    image = render_image(widget, style, scale, caption)
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise OSError("could not encode the image as PNG")
    buffer.close()
    return bytes(data)


def svg_bytes(widget: QWidget, style: Style, title: str, caption: str = "") -> bytes:
    """The widget as SVG data via QSvgGenerator (pyqtgraph 0.14's SVGExporter fails with current Qt)."""
    size = widget.size()
    height = size.height() + _caption_height(style, caption, size.width())
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.WriteOnly)
    generator = QSvgGenerator()
    generator.setOutputDevice(buffer)
    generator.setSize(QSize(size.width(), height))
    generator.setViewBox(QRect(0, 0, size.width(), height))
    generator.setTitle(title)
    generator.setDescription(caption)
    painter = QPainter(generator)
    with _as_vectors(widget, painter):
        _paint(painter, widget, style, caption, vector=True)
    painter.end()
    buffer.close()
    return bytes(data)


def pdf_page_size(widget: QWidget, style: Style, caption: str = "") -> QSizeF:
    """The PDF page of the figure and its caption, in points: the widget's logical pixels at its
    logical DPI (96 px = 72 pt where that is 96), so text keeps its size relative to the plots."""
    dpi = widget.logicalDpiX()
    size = widget.size()
    height = size.height() + _caption_height(style, caption, size.width())
    return QSizeF(size.width() * 72 / dpi, height * 72 / dpi)


def pdf_bytes(widget: QWidget, style: Style, title: str, caption: str = "") -> bytes:
    """The widget as a one-page vector PDF via QPdfWriter (the painting path of :func:`svg_bytes`):
    the page fitted to the figure and caption, no margins, fonts embedded (subsets)."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.WriteOnly)
    writer = QPdfWriter(buffer)
    writer.setResolution(widget.logicalDpiX())  # one device unit = one logical pixel of the widget
    page = QPageSize(pdf_page_size(widget, style, caption), QPageSize.Point, title, QPageSize.ExactMatch)
    if not writer.setPageLayout(QPageLayout(page, QPageLayout.Portrait, QMarginsF(0, 0, 0, 0), QPageLayout.Point)):
        raise OSError("could not set the PDF page size")
    writer.setTitle(title)
    writer.setCreator("dl-workbench")
    painter = QPainter()
    if not painter.begin(writer):
        raise OSError("could not start the PDF")
    painter.setRenderHint(QPainter.Antialiasing)
    painter.setRenderHint(QPainter.TextAntialiasing)
    painter.setRenderHint(QPainter.LosslessImageRendering)  # images as Flate, not JPEG (the views: _as_vectors)
    with _as_vectors(widget, painter):
        _paint(painter, widget, style, caption, vector=True)
    painter.end()
    buffer.close()
    return bytes(data)


def save_png(widget: QWidget, path: str, style: Style, scale: int = 1, caption: str = "") -> None:
    """Write a PNG; OSError naming the path when it cannot be written."""
    write_atomic(path, png_bytes(widget, style, scale, caption))


def save_svg(widget: QWidget, path: str, style: Style, title: str, caption: str = "") -> None:
    """Write an SVG; OSError naming the path when it cannot be written."""
    write_atomic(path, svg_bytes(widget, style, title, caption))


def save_pdf(widget: QWidget, path: str, style: Style, title: str, caption: str = "") -> None:
    """Write a one-page vector PDF; OSError naming the path when it cannot be written."""
    write_atomic(path, pdf_bytes(widget, style, title, caption))


DEFAULT_SIZE = (1280, 800)  # an exported figure's width and least height, logical pixels


@contextmanager
def offscreen_panel(name: str, values: Mapping[str, Any], style: Style, size: tuple[int, int] | None = None):
    """The panel ``name`` with ``values``, computed and laid out off screen, for export; closed and
    deleted on exit. ``size``: the figure's (width, height); default 1280 wide and as high as the
    figure needs, at least 800."""
    from PySide6.QtCore import QCoreApplication, QEvent
    from PySide6.QtWidgets import QApplication

    from workbench.registry import panel_class

    app = QApplication.instance()
    panel = panel_class(name)(style, values)
    panel.set_notes_visible(False)
    panel.setAttribute(Qt.WA_DontShowOnScreen)  # laid out and painted, never flashed on a real screen
    width, height = size or DEFAULT_SIZE
    panel.figure.setFixedWidth(width)
    if size:
        panel.figure.setFixedHeight(height)
    panel.show()
    panel.compute_now()
    app.processEvents()
    if not size:  # tall enough for everything the chosen parameters show (e.g. six bit strips)
        panel.figure.setFixedHeight(max(height, panel.figure.minimumSizeHint().height()))
        app.processEvents()
    try:
        yield panel
    finally:  # deleted before the interpreter exits (otherwise teardown order can segfault)
        panel.retire()
        panel.close()
        panel.deleteLater()
        QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)
