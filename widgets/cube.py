"""An N x C x (H x W) tensor drawn as a block of cells, as in the GroupNorm paper's figure.

The block is seen from above and turned by a yaw angle: the front face shows channels across and
spatial positions down for the first sample, the top face channels across and samples into the
depth, the right face samples and spatial positions of the last channel. Each face is one small
image (one pixel per cell) painted through an affine transform, so even 8 x 64 x 64 cells cost
three image draws and a few grid lines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QLineF, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontMetricsF, QImage, QPainter, QPen, QTransform
from PySide6.QtWidgets import QSizePolicy, QWidget

from widgets.style import Style

PITCH_DEGREES = 28.0  # how far the viewer looks down onto the top face


@dataclass(frozen=True)
class CubePicture:
    """What the cube shows. ``colors`` (N, C, S, 4) uint8 RGBA per cell; ``box`` the highlighted
    block as ((n0, n1), (c0, c1), (s0, s1)) half-open cell ranges or None; ``cell`` the hovered cell
    (n, c, s) or None; ``axes`` the names of the N, C and S axes (e.g. "N", "C", "H×W")."""

    colors: np.ndarray
    box: tuple[tuple[int, int], tuple[int, int], tuple[int, int]] | None
    cell: tuple[int, int, int] | None
    axes: tuple[str, str, str]
    title: str = ""


def _image(rgba: np.ndarray) -> QImage:
    """(rows, cols, 4) uint8 -> QImage sharing a copy of the data (kept on the image object)."""
    data = np.ascontiguousarray(rgba[..., [2, 1, 0, 3]])  # opaque BGRA: the raster engine's own format, no conversion
    image = QImage(data.data, data.shape[1], data.shape[0], data.shape[1] * 4, QImage.Format_ARGB32_Premultiplied)
    image._keep = data  # the QImage does not own its buffer
    return image


class CubeView(QWidget):
    """Paints a CubePicture; ``hovered(n, c, s)`` when the pointer is over a visible cell."""

    hovered = Signal(int, int, int)

    def __init__(self, style: Style, parent: QWidget | None = None):
        super().__init__(parent)
        self.style_ = style
        self.picture: CubePicture | None = None
        self.yaw = math.radians(35.0)
        self._faces: list[tuple[str, QTransform, QImage, int, int]] = []
        self.setMouseTracking(True)
        self.setMinimumSize(240, 220)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(int(self.style_.point_size * 60), int(self.style_.point_size * 50))

    def show_picture(self, picture: CubePicture, yaw_degrees: float) -> None:
        self.picture = picture
        self.yaw = math.radians(yaw_degrees)
        self.update()

    # ---- geometry -----------------------------------------------------------------------------------
    def _axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Screen vectors of one cell step along c (right), s (down) and n (into the depth)."""
        pitch = math.radians(PITCH_DEGREES)
        cy, sy = math.cos(self.yaw), math.sin(self.yaw)
        along_c = np.array([cy, sy * math.sin(pitch)])
        along_s = np.array([0.0, math.cos(pitch)])
        along_n = np.array([sy, -cy * math.sin(pitch)])
        return along_c, along_s, along_n

    def _layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(origin, along_c, along_s, along_n) in pixels, the block fitted into the widget."""
        n, c, s = self.picture.colors.shape[:3]
        along_c, along_s, along_n = self._axes()
        corners = np.array([i * c * along_c + j * s * along_s + k * n * along_n
                            for i in (0, 1) for j in (0, 1) for k in (0, 1)])
        low, high = corners.min(axis=0), corners.max(axis=0)
        metrics = QFontMetricsF(self.style_.font(1.0, bold=True))
        name_n, name_c, name_s = self.picture.axes
        left = metrics.horizontalAdvance(f"{name_s} = {s}") + self.style_.point_size * 1.5
        right = metrics.horizontalAdvance(f"{name_n} = {n}") + self.style_.point_size * 1.5
        top = self.style_.point_size * (3.2 if self.picture.title else 1.0)
        bottom = metrics.height() * 2
        width, height = max(self.width() - left - right, 10), max(self.height() - top - bottom, 10)
        scale = min(width / max(high[0] - low[0], 1e-9), height / max(high[1] - low[1], 1e-9))
        extent = (high - low) * scale
        origin = np.array([left + (width - extent[0]) / 2, top + (height - extent[1]) / 2]) - low * scale
        return origin, along_c * scale, along_s * scale, along_n * scale

    def _point(self, geometry, n: float, c: float, s: float) -> QPointF:
        origin, along_c, along_s, along_n = geometry
        p = origin + c * along_c + s * along_s + n * along_n
        return QPointF(p[0], p[1])

    @staticmethod
    def _transform(origin, eu, ev) -> QTransform:
        return QTransform(eu[0], eu[1], ev[0], ev[1], origin[0], origin[1])

    def _visible_faces(self, geometry) -> list[tuple[str, QTransform, np.ndarray]]:
        """(name, cell-to-screen transform, (rows, cols, 4) colours) of each face the viewer sees,
        back to front."""
        origin, along_c, along_s, along_n = geometry
        colors = self.picture.colors
        n, c, s = colors.shape[:3]
        faces = [("top", self._transform(origin, along_c, along_n), colors[:, :, 0])]  # rows n, cols c
        if math.sin(self.yaw) > 1e-3:  # rows s, cols n
            faces.append(("right", self._transform(origin + c * along_c, along_n, along_s),
                          colors[:, c - 1, :].transpose(1, 0, 2)))
        if math.cos(self.yaw) > 1e-3:  # rows s, cols c
            faces.append(("front", self._transform(origin, along_c, along_s), colors[0].transpose(1, 0, 2)))
        return faces

    # ---- painting -------------------------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        st = self.style_
        painter.fillRect(self.rect(), QColor(st.background))
        if self.picture is None:
            return
        geometry = self._layout()
        self._faces = []
        grid = QColor(st.background)
        for name, transform, colors in self._visible_faces(geometry):
            rows, cols = colors.shape[:2]
            image = _image(colors)
            painter.setTransform(transform)
            painter.drawImage(QRectF(0, 0, cols, rows), image)
            cell_px = min(math.hypot(transform.m11(), transform.m12()), math.hypot(transform.m21(), transform.m22()))
            if cell_px >= 4:  # grid lines between cells where cells are big enough to tell apart
                painter.resetTransform()  # lines mapped here: a pen through a sheared transform is slow
                painter.setPen(QPen(grid, 1.0))
                lines = [QLineF(transform.map(QPointF(i, 0)), transform.map(QPointF(i, rows))) for i in range(1, cols)]
                lines += [QLineF(transform.map(QPointF(0, j)), transform.map(QPointF(cols, j))) for j in range(1, rows)]
                painter.drawLines(lines)
            self._faces.append((name, transform, image, rows, cols))
        painter.resetTransform()
        painter.setRenderHint(QPainter.Antialiasing, True)
        self._draw_outline(painter, geometry, ((0, self.picture.colors.shape[0]), (0, self.picture.colors.shape[1]),
                                               (0, self.picture.colors.shape[2])), QColor(st.foreground), 1.5, False)
        if self.picture.box is not None:
            self._draw_outline(painter, geometry, self.picture.box, QColor(st.foreground), st.line_width + 1, True)
        if self.picture.cell is not None:
            n, c, s = self.picture.cell
            self._draw_outline(painter, geometry, ((n, n + 1), (c, c + 1), (s, s + 1)), QColor(st.error),
                               st.line_width, True)
        self._draw_labels(painter, geometry)

    def _draw_outline(self, painter: QPainter, geometry, box, color: QColor, width: float, hidden_dashed: bool) -> None:
        """The 12 edges of a block of cells; edges the block hides from the viewer dashed."""
        (n0, n1), (c0, c1), (s0, s1) = box
        corner = {(i, j, k): self._point(geometry, (n0, n1)[k], (c0, c1)[i], (s0, s1)[j])
                  for i in (0, 1) for j in (0, 1) for k in (0, 1)}
        # hidden from the viewer: the back-bottom-left corner, and when a side is edge-on its far bottom corner too
        hidden_corners = {(0, 1, 1)}
        if math.sin(self.yaw) <= 1e-3:
            hidden_corners.add((1, 1, 1))
        if math.cos(self.yaw) <= 1e-3:
            hidden_corners.add((0, 1, 0))
        edges = []
        for a in corner:
            for axis in range(3):
                if a[axis] == 0:
                    b = tuple(1 if i == axis else v for i, v in enumerate(a))
                    edges.append((a, b))
        solid = QPen(color, width)
        solid.setJoinStyle(Qt.RoundJoin)
        dashed = QPen(color, max(width * 0.6, 1.0), Qt.DashLine)
        for a, b in edges:
            hidden = a in hidden_corners or b in hidden_corners
            if hidden and not hidden_dashed:
                continue
            painter.setPen(dashed if hidden else solid)
            painter.drawLine(corner[a], corner[b])

    def _draw_labels(self, painter: QPainter, geometry) -> None:
        st = self.style_
        n, c, s = self.picture.colors.shape[:3]
        name_n, name_c, name_s = self.picture.axes
        painter.setPen(QColor(st.foreground))
        painter.setFont(st.font(1.0, bold=True))
        metrics = painter.fontMetrics()
        gap = st.point_size * 0.8
        if self.picture.title:
            painter.drawText(QRectF(0, 0, self.width(), st.point_size * 2.6), Qt.AlignCenter, self.picture.title)
        # C under the front bottom edge, S left of the front left edge, N along the top-right edge
        bottom_mid = self._point(geometry, 0, c / 2, s)
        text = f"{name_c} = {c}"
        painter.drawText(QPointF(bottom_mid.x() - metrics.horizontalAdvance(text) / 2, bottom_mid.y() + gap + metrics.ascent()), text)
        left_mid = self._point(geometry, 0, 0, s / 2)
        text = f"{name_s} = {s}"
        painter.drawText(QPointF(left_mid.x() - gap - metrics.horizontalAdvance(text), left_mid.y() + metrics.ascent() / 2), text)
        edge_mid = self._point(geometry, n / 2, c, 0)
        text = f"{name_n} = {n}"
        painter.drawText(QPointF(edge_mid.x() + gap * 0.6, edge_mid.y() - gap * 0.4), text)

    # ---- hover ------------------------------------------------------------------------------------------
    def cell_at(self, x: float, y: float) -> tuple[int, int, int] | None:
        """The cell (n, c, s) under the widget point (x, y), front faces first; None off the block."""
        if self.picture is None:
            return None
        n, c, s = self.picture.colors.shape[:3]
        for name, transform, _, rows, cols in reversed(self._faces):
            inverse, ok = transform.inverted()
            if not ok:
                continue
            p = inverse.map(QPointF(x, y))
            u, v = p.x(), p.y()
            if 0 <= u < cols and 0 <= v < rows:
                col, row = int(u), int(v)
                if name == "front":
                    return 0, col, row
                if name == "top":
                    return row, col, 0
                return col, c - 1, row
        return None

    def mouseMoveEvent(self, event) -> None:
        cell = self.cell_at(event.position().x(), event.position().y())
        if cell is not None and (self.picture is None or cell != self.picture.cell):
            self.hovered.emit(*cell)
        super().mouseMoveEvent(event)

    def mousePressEvent(self, event) -> None:
        cell = self.cell_at(event.position().x(), event.position().y())
        if cell is not None:
            self.hovered.emit(*cell)
        super().mousePressEvent(event)
