"""One repaint of a window per change: its layouts first, then every plot's changes in one go.

Qt repaints a window whenever one of its graphics scenes has gathered its changed items:
QGraphicsView sends the window's UpdateRequest at once, from inside the scene's queued update. A
change that redraws four plots (four scenes) so repaints the window four times, and a relayout that
follows it (a legend or a wrapped label grew) repaints every plot once more: one activations change
painted its plots twice over in 110 ms. :class:`RepaintGate` keeps the order a frame should have:
when the window is about to repaint, the pending layouts run and every scene gathers its changes,
and then the window repaints once (35 ms for that change)."""

from __future__ import annotations

from typing import Callable, Iterable

from PySide6.QtCore import QCoreApplication, QEvent, QObject
from PySide6.QtWidgets import QGraphicsScene, QWidget

LAYOUT_ROUNDS = 3  # a layout can ask for its parent's (the figure, then its scroll area): each round runs one level


class RepaintGate(QObject):
    """An event filter on ``window``: before the window repaints (its UpdateRequest), the layouts
    waiting to run are run and each of ``scenes()`` (the scenes that may have changed: those on
    show) gathers its changed items; the repaints those scenes ask for meanwhile are the one that
    follows. ``scenes`` is called at every repaint, so it should be quick; a scene deleted since
    it was listed is passed over."""

    def __init__(self, window: QWidget, scenes: Callable[[], Iterable[QGraphicsScene]]):
        super().__init__(window)
        self.window = window
        self.scenes = scenes
        self.gathering = False
        window.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() != QEvent.Type.UpdateRequest or watched is not self.window:
            return False
        if self.gathering:
            return True  # a scene's "repaint now": the repaint this gathering is for paints it
        self.gathering = True
        try:
            for _ in range(LAYOUT_ROUNDS):
                QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
            for scene in self.scenes():
                try:
                    if hasattr(scene, "prepareForPaint"):  # pyqtgraph's: views fit their new size (else at paint: a 2nd repaint)
                        scene.prepareForPaint()
                    QCoreApplication.sendPostedEvents(scene, QEvent.Type.MetaCall)  # its queued gathering of changed items
                except RuntimeError:  # deleted since it was looked up (a page rebuilt): nothing of it to paint
                    continue
        finally:
            self.gathering = False
        return False
