"""One repaint of a window per change, its layouts first, and a frame's worth of plots per repaint.

Qt repaints a window whenever one of its graphics scenes has gathered its changed items:
QGraphicsView sends the window's UpdateRequest at once, from inside the scene's queued update. A
change that redraws four plots (four scenes) so repaints the window four times, and a relayout that
follows it (a legend or a wrapped label grew) repaints every plot once more: one activations change
painted its plots twice over in 110 ms. :class:`RepaintGate` keeps the order a frame should have:
when the window is about to repaint, the pending layouts run and every scene gathers its changes,
and then the window repaints once (35 ms for that change).

A repaint that has spent PAINT_BUDGET_MS leaves the plots still to come for the next pass of the
event loop (their old picture stays on screen for that frame), so a change that redraws several
plots does not hold the GUI thread for all of them at once; the plots of one view (the cells of a
pyqtgraph layout) are painted one cell at a time. Each pass paints at least one cell, the cells
left over first; a view left over in one pass paints at least one cell in the next. Only a view
whose old picture is still where it was waits: one just shown, resized or moved paints at once.
Work on the GUI thread in one pass of the event loop adds up: a repaint that would follow more
than PAINT_BUDGET_MS of work (drawing, see :func:`work_done`) in the same pass waits for the next
pass once, and a draw step that would follow it waits too (:func:`work_in_pass`)."""

from __future__ import annotations

import time
import weakref
from typing import Callable, Iterable

import pyqtgraph as pg
from PySide6.QtCore import QAbstractEventDispatcher, QCoreApplication, QEvent, QObject, QPoint, QRect, Qt, QTimer
from PySide6.QtGui import QPainter, QPaintEvent, QRegion
from PySide6.QtWidgets import QGraphicsView, QWidget

LAYOUT_ROUNDS = 3  # a layout can ask for its parent's (the figure, then its scroll area): each round runs one level
PAINT_BUDGET_MS = 4.0  # a repaint that has spent this long (plots and all) leaves the plots still to come for the next pass

_pass_work_ms = 0.0  # GUI-thread work done in this pass of the event loop (work_done)
_painting_part = False  # a part's paint event (clipped_painting) is on its way to the viewport
_watching_passes = False


def _new_pass() -> None:
    global _pass_work_ms
    _pass_work_ms = 0.0


def work_done(ms: float) -> None:
    """Add ``ms`` of GUI-thread work (a draw step, a repaint) to this pass of the event loop's."""
    global _pass_work_ms, _watching_passes
    if not _watching_passes:  # each pass begins with one of these (processEvents: awake; exec: aboutToBlock)
        dispatcher = QAbstractEventDispatcher.instance()
        if dispatcher is None:
            return
        dispatcher.awake.connect(_new_pass)
        dispatcher.aboutToBlock.connect(_new_pass)
        _watching_passes = True
    _pass_work_ms += ms


def work_in_pass() -> float:
    """The GUI-thread work done in this pass of the event loop so far, ms: more work (a repaint,
    a draw step) that would take the pass past a frame waits for the next once this is over
    PAINT_BUDGET_MS."""
    return _pass_work_ms


def plot_cells(view: QGraphicsView) -> list[QRect]:
    """The rectangles (viewport pixels) of the cells of a pyqtgraph view's layout, nested layouts
    opened: its plots, each painted on its own. One rectangle for any other view."""
    cells: list[QRect] = []
    top = getattr(view, "ci", None) or getattr(view, "centralWidget", None)
    items = [top] if top is not None else []
    while items:
        item = items.pop(0)
        if isinstance(item, pg.GraphicsLayout):
            items[:0] = list(item.items)
        elif item is not None and item.isVisible():
            cells.append(view.mapFromScene(item.sceneBoundingRect()).boundingRect())
    return cells or [view.viewport().rect()]


def clipped_painting(view: QGraphicsView, viewport: QWidget) -> Callable[[QRegion], None] | None:
    """During a paint event of ``viewport``: a function that paints a part of it, and nothing
    outside that part. A QGraphicsView paints every item that meets the region of its paint event
    whole, and its background over the region's bounding rectangle: a part painted after another
    would paint over it. Each part's painting is clipped to it by the paint engine's system clip
    (Qt's own clip for a widget's paint event, in the window's device pixels). None where the
    engine has no such clip (then the view is painted whole, at once)."""
    painter = QPainter(viewport)
    engine = painter.paintEngine()
    painter.end()
    whole = engine.systemClip() if engine is not None else QRegion()
    if whole.isEmpty():
        return None
    offset = viewport.mapTo(viewport.window(), QPoint(0, 0))
    ratio = viewport.devicePixelRatioF()

    def paint(part: QRegion) -> None:
        clip = QRegion()
        for rect in part:  # edges scaled, not sizes: parts that touch still touch in device pixels
            rect = rect.translated(offset)
            left, top = round(rect.x() * ratio), round(rect.y() * ratio)
            clip += QRect(left, top, round((rect.x() + rect.width()) * ratio) - left,
                          round((rect.y() + rect.height()) * ratio) - top)
        engine.setSystemClip(whole.intersected(clip))
        global _painting_part
        _painting_part = True
        try:  # sent, not called: other event filters on the viewport see each part's paint event
            QCoreApplication.sendEvent(viewport, QPaintEvent(part))
        finally:
            _painting_part = False
            engine.setSystemClip(whole)
    return paint


class RepaintGate(QObject):
    """An event filter on ``window`` and on the viewports of ``views()`` (the plots that may have
    changed: those on show; called at every repaint, so it should be quick; a view deleted since
    it was listed is passed over). Before the window repaints (its UpdateRequest), the layouts
    waiting to run are run and each view's scene gathers its changed items; the repaints those
    scenes ask for meanwhile are the one that follows. During that repaint, a plot (a cell of a
    view's layout) whose turn comes after PAINT_BUDGET_MS of painting keeps its old picture and is
    painted in the next pass."""

    def __init__(self, window: QWidget, views: Callable[[], Iterable[QGraphicsView]],
                 budget_ms: float = PAINT_BUDGET_MS):
        super().__init__(window)
        self.window = window
        self.views = views
        self.budget_ms = budget_ms
        self.gathering = False
        self.repainting_since: float | None = None  # perf_counter() when the gated repaint began
        self.plots_painted = 0  # cells painted in this repaint
        self.deferred = False  # whether the window's pending repaint was put off to the next pass once
        self.left_over: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # viewport -> QRegion left for the next pass
        self.waited: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # viewport -> QRegion it left last pass
        self.painted_where: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # viewport -> (its rect in the window, its cells)
        self.watched: weakref.WeakSet = weakref.WeakSet()
        # The next pass: a timer. A call or event posted now can still come in this pass (a nested
        # sendPostedEvents, as the gathering's, takes in whatever was posted before it).
        self.next_pass = QTimer(self, singleShot=True, interval=1)
        self.next_pass.timeout.connect(self._repaint_left_over)
        window.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if watched is not self.window:
            if kind == QEvent.Type.Paint:
                return not _painting_part and self._paint_in_cells(watched, event)
            if kind in (QEvent.Type.Show, QEvent.Type.Hide):  # what is on screen there is no longer its picture
                self.painted_where.pop(watched, None)
            return False
        if kind != QEvent.Type.UpdateRequest:
            return False
        if self.gathering or self.repainting_since is not None:
            return True  # a scene's "repaint now": the repaint this gathering is for paints it
        if work_in_pass() > self.budget_ms and not self.deferred:
            self.deferred = True  # drawn at length in this pass: painted in the next
            self.next_pass.start()
            return True
        self.deferred = False
        self.gathering = True
        try:
            for _ in range(LAYOUT_ROUNDS):
                QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
            for view in self.views():
                try:
                    scene = view.scene()
                    if hasattr(scene, "prepareForPaint"):  # pyqtgraph's: views fit their new size (else at paint: a 2nd repaint)
                        scene.prepareForPaint()
                    QCoreApplication.sendPostedEvents(scene, QEvent.Type.MetaCall)  # its queued gathering of changed items
                    self._watch(view)
                except RuntimeError:  # deleted since it was looked up (a page rebuilt): nothing of it to paint
                    continue
        finally:
            self.gathering = False
        self.repainting_since, self.plots_painted = time.perf_counter(), 0
        try:
            self.window.event(event)  # the repaint, here: its paint events are known to be the window's repaint
        finally:
            work_done((time.perf_counter() - self.repainting_since) * 1000)
            self.repainting_since = None
        return True

    def _watch(self, view: QGraphicsView) -> None:
        viewport = view.viewport()
        if viewport not in self.watched:
            self.watched.add(viewport)
            viewport.installEventFilter(self)
            if view.backgroundBrush().isOpaque():  # the view paints every pixel: nothing beneath needs painting first
                viewport.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def _paint_in_cells(self, viewport: QWidget, event: QPaintEvent) -> bool:
        """Paint ``viewport`` cell by cell while the repaint is within its budget; what is left
        waits for the next pass (its old picture stays). Cells that moved in the view (a relayout)
        and the margins between cells are painted at once. Whether the paint event was handled here."""
        view = viewport.parent()
        if self.repainting_since is None or not isinstance(view, QGraphicsView):
            return False  # a render or grab (an export), or a paint outside the gated repaint
        where, cells = QRect(viewport.mapTo(self.window, QPoint(0, 0)), viewport.size()), plot_cells(view)
        before_where, before_cells = self.painted_where.get(viewport, (None, []))
        self.painted_where[viewport] = (where, cells)
        waited = self.waited.pop(viewport, None)
        paint = None
        if before_where == where and viewport.testAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent):
            paint = clipped_painting(view, viewport)
        if paint is None:  # nothing on screen to keep (just shown, or moved), or no clip: all of it now
            self.plots_painted += 1
            return False
        left = QRegion(event.region())
        kept = [cell for cell in cells if cell in before_cells]  # the others moved: their old picture is elsewhere
        now = left.subtracted(sum((QRegion(cell) for cell in kept), QRegion()))
        if len(kept) < len(cells) and not now.isEmpty():
            paint(now)
            left -= now
            self.plots_painted += 1
        if waited is not None:  # the cells left over last pass first
            kept.sort(key=lambda cell: not waited.intersects(cell))
        painted_here = 0
        for cell in kept:
            part = left.intersected(cell)
            if part.isEmpty():
                continue
            late = (time.perf_counter() - self.repainting_since) * 1000 > self.budget_ms
            if late and self.plots_painted and (painted_here or waited is None):  # one left over paints one
                break
            paint(part)
            left -= part
            painted_here += 1
            self.plots_painted += 1
        else:
            if not left.isEmpty():  # between the cells (margins)
                paint(left)
            return True
        # What an earlier pass left and the next has not yet asked for stays left too (outside this
        # paint's region, it cannot be painted here).
        self.left_over[viewport] = self.left_over.get(viewport, QRegion()).united(left)
        self.next_pass.start()
        return True

    def _repaint_left_over(self) -> None:
        """Ask for the repaint put off, and for the cells left over (one repaint, in the next pass)."""
        self.waited = self.left_over
        self.left_over = weakref.WeakKeyDictionary()
        for viewport, region in list(self.waited.items()):
            viewport.update(region)
        if self.deferred:
            QCoreApplication.postEvent(self.window, QEvent(QEvent.Type.UpdateRequest))
