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
plots does not hold the GUI thread for all of them at once. A plot waits at most one pass, and only
one whose old picture is still where it was: one just shown, resized or moved paints at once."""

from __future__ import annotations

import time
import weakref
from typing import Callable, Iterable

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QPoint, QRect, Qt, QTimer
from PySide6.QtWidgets import QGraphicsView, QWidget

LAYOUT_ROUNDS = 3  # a layout can ask for its parent's (the figure, then its scroll area): each round runs one level
PAINT_BUDGET_MS = 4.0  # a repaint that has spent this long (plots and all) leaves the plots still to come for the next pass


class RepaintGate(QObject):
    """An event filter on ``window`` and on the viewports of ``views()`` (the plots that may have
    changed: those on show; called at every repaint, so it should be quick; a view deleted since
    it was listed is passed over). Before the window repaints (its UpdateRequest), the layouts
    waiting to run are run and each view's scene gathers its changed items; the repaints those
    scenes ask for meanwhile are the one that follows. During that repaint, a plot whose turn comes
    after PAINT_BUDGET_MS of painting keeps its old picture and is painted in the next pass."""

    def __init__(self, window: QWidget, views: Callable[[], Iterable[QGraphicsView]],
                 budget_ms: float = PAINT_BUDGET_MS):
        super().__init__(window)
        self.window = window
        self.views = views
        self.budget_ms = budget_ms
        self.gathering = False
        self.repainting_since: float | None = None  # perf_counter() when the gated repaint began
        self.plots_painted = 0  # in this repaint
        self.waiting: weakref.WeakSet = weakref.WeakSet()  # viewports left for the next pass
        self.painted_where: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # viewport -> its rect in the window
        self.watched: weakref.WeakSet = weakref.WeakSet()
        window.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if watched is not self.window:
            if kind == QEvent.Type.Paint:
                return self._leave_for_next_pass(watched)
            if kind in (QEvent.Type.Show, QEvent.Type.Hide):  # what is on screen there is no longer its picture
                self.painted_where.pop(watched, None)
            return False
        if kind != QEvent.Type.UpdateRequest:
            return False
        if self.gathering or self.repainting_since is not None:
            return True  # a scene's "repaint now": the repaint this gathering is for paints it
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
            self.repainting_since = None
        return True

    def _watch(self, view: QGraphicsView) -> None:
        viewport = view.viewport()
        if viewport not in self.watched:
            self.watched.add(viewport)
            viewport.installEventFilter(self)
            if view.backgroundBrush().isOpaque():  # the view paints every pixel: nothing beneath needs painting first
                viewport.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def _leave_for_next_pass(self, viewport: QWidget) -> bool:
        """Whether this paint of ``viewport`` waits for the next pass (it is then asked for there)."""
        if self.repainting_since is None or not isinstance(viewport.parent(), QGraphicsView):
            return False  # a render or grab (an export), or a paint outside the gated repaint
        where = QRect(viewport.mapTo(self.window, QPoint(0, 0)), viewport.size())
        late = (time.perf_counter() - self.repainting_since) * 1000 > self.budget_ms
        if (late and self.plots_painted and viewport not in self.waiting and self.painted_where.get(viewport) == where
                and viewport.testAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)):
            self.waiting.add(viewport)
            QTimer.singleShot(0, viewport, viewport.update)
            return True
        self.waiting.discard(viewport)
        self.painted_where[viewport] = where
        self.plots_painted += 1
        return False
