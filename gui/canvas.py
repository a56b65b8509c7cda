"""The image canvas: image, frontier overlay, selection and hover layers in a QGraphicsView.

Scene coordinates are image pixels. Ctrl+wheel zooms around the cursor, the middle button
or Space+drag pans. With the select tool a click emits `clicked(row, col, modifiers)` in
atom-map coordinates; with the brush or eraser a left-drag is drawn as a preview under a
circle cursor and emits `stroked(points, radius)` once, on release (atom-map coordinates).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (QColor, QImage, QKeyEvent, QMouseEvent, QPainter, QPainterPath, QPen, QPixmap,
                           QTransform, QWheelEvent)
from PySide6.QtWidgets import (QGraphicsEllipseItem, QGraphicsItem, QGraphicsPathItem, QGraphicsPixmapItem,
                               QGraphicsScene, QGraphicsView, QStyleOptionGraphicsItem, QWidget)

ZOOM_STEP = 1.25
MIN_ZOOM, MAX_ZOOM = 0.02, 64.0
SELECT, BRUSH, ERASER = "select", "brush", "eraser"
MIN_BRUSH, MAX_BRUSH = 1.0, 256.0          # brush radius in image pixels
STROKE_COLORS = {BRUSH: QColor(255, 220, 0, 110), ERASER: QColor(255, 60, 60, 110)}


class BufferItem(QGraphicsItem):
    """Paints a QImage that views a numpy ARGB32 buffer owned by the caller.

    The caller changes pixels in place and calls `changed(box)`: only that rectangle is
    repainted (a QGraphicsPixmapItem would convert and repaint the whole image each time).
    """

    def __init__(self) -> None:
        super().__init__()
        self._buffer = np.zeros((0, 0), dtype=np.uint32)
        self._image = QImage()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)   # for exposedRect

    def set_buffer(self, pixels: np.ndarray) -> None:
        """Show a new (H, W) uint32 premultiplied ARGB buffer (kept by reference, not copied)."""
        self.prepareGeometryChange()
        self._buffer = pixels
        h, w = pixels.shape
        self._image = QImage(pixels.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied)

    def shows(self, pixels: np.ndarray) -> bool:
        return pixels is self._buffer

    def changed(self, top: int, left: int, bottom: int, right: int) -> None:
        self.update(QRectF(left, top, right - left, bottom - top))

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self._image.width(), self._image.height())

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: Optional[QWidget] = None) -> None:
        exposed = option.exposedRect.toAlignedRect().intersected(self._image.rect())
        if not exposed.isEmpty():
            painter.drawImage(exposed, self._image, exposed)


class Canvas(QGraphicsView):
    """Shows one image and its layers; reports clicks and hover in atom-map coordinates."""

    clicked = Signal(int, int, object)     # row, col, Qt.KeyboardModifiers
    hovered = Signal(int, int)             # row, col (-1, -1 when outside)
    stroked = Signal(object, float)        # (n, 2) float (row, col) points, radius; atom-map units

    def __init__(self) -> None:
        super().__init__()
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setMouseTracking(True)
        self.setBackgroundBrush(Qt.GlobalColor.darkGray)
        self._image = QGraphicsPixmapItem()
        self._overlay = BufferItem()
        self._layers: dict[str, QGraphicsItem] = {"overlay": self._overlay, "selection": QGraphicsPixmapItem(),
                                                  "hover": QGraphicsPixmapItem()}
        self.scene().addItem(self._image)
        # the image is rendered once per zoom level; changing an overlay does not repaint it
        self._image.setCacheMode(QGraphicsPixmapItem.CacheMode.DeviceCoordinateCache)
        for z, item in enumerate(self._layers.values(), start=1):
            item.setZValue(z)
            self.scene().addItem(item)
        self._atom_scale = (1.0, 1.0)      # atom-map pixels per image pixel (rows, cols)
        self._atom_shape = (0, 0)
        self._pan_from: Optional[QPointF] = None
        self._space = False
        self.tool = SELECT
        self.brush_radius = 8.0
        self._stroke: Optional[list[QPointF]] = None      # scene points of the stroke being drawn
        self._preview = QGraphicsPathItem()
        self._preview.setZValue(len(self._layers) + 1)
        self._cursor = QGraphicsEllipseItem()
        self._cursor.setZValue(len(self._layers) + 2)
        self._cursor.setPen(QPen(Qt.GlobalColor.white, 0))   # cosmetic: one device pixel at any zoom
        self._cursor.hide()
        self.scene().addItem(self._preview)
        self.scene().addItem(self._cursor)

    # ------------------------------------------------------------------ content
    def set_image(self, image: QImage) -> None:
        self._image.setPixmap(QPixmap.fromImage(image))
        self.scene().setSceneRect(self._image.boundingRect())
        self._overlay.set_buffer(np.zeros((0, 0), dtype=np.uint32))
        for name in ("selection", "hover"):
            self._layers[name].setPixmap(QPixmap())

    def set_atom_shape(self, shape: tuple[int, int]) -> None:
        """Layers are drawn at atom-map resolution and stretched onto the image."""
        rect = self._image.boundingRect()
        self._atom_shape = shape
        sy, sx = rect.height() / max(shape[0], 1), rect.width() / max(shape[1], 1)
        self._atom_scale = (1 / sy if sy else 1.0, 1 / sx if sx else 1.0)
        for item in self._layers.values():
            item.setTransform(QTransform.fromScale(sx, sy))

    def set_overlay(self, pixels: np.ndarray, box: Optional[tuple[int, int, int, int]]) -> None:
        """Show the overlay buffer; `box` (top, left, bottom, right) is where its pixels changed."""
        if not self._overlay.shows(pixels):
            self._overlay.set_buffer(pixels)
            self._overlay.update()
        elif box is not None:
            self._overlay.changed(*box)

    def set_layer(self, name: str, image: Optional[QImage], top: int = 0, left: int = 0) -> None:
        """Show the selection or hover layer; `top`/`left` place a cropped layer in atom-map pixels."""
        item = self._layers[name]
        item.setPixmap(QPixmap.fromImage(image) if image is not None else QPixmap())
        item.setOffset(left, top)

    def set_layer_visible(self, name: str, visible: bool) -> None:
        self._layers[name].setVisible(visible)

    def layer_visible(self, name: str) -> bool:
        return self._layers[name].isVisible()

    # ------------------------------------------------------------------ tools
    def set_tool(self, tool: str) -> None:
        """SELECT, BRUSH or ERASER; a stroke in progress is dropped."""
        self.tool = tool
        self._end_stroke()
        painting = tool != SELECT
        self._cursor.setVisible(painting and self.underMouse())
        self.viewport().setCursor(Qt.CursorShape.CrossCursor if painting else Qt.CursorShape.ArrowCursor)

    def set_brush_radius(self, radius: float) -> None:
        self.brush_radius = min(max(radius, MIN_BRUSH), MAX_BRUSH)
        self._place_cursor(self._cursor.rect().center())

    def _place_cursor(self, scene_pos: QPointF) -> None:
        r = self.brush_radius
        self._cursor.setRect(scene_pos.x() - r, scene_pos.y() - r, 2 * r, 2 * r)

    def _begin_stroke(self, scene_pos: QPointF) -> None:
        self._stroke = [scene_pos]
        pen = QPen(STROKE_COLORS[self.tool], 2 * self.brush_radius, Qt.PenStyle.SolidLine,
                   Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin)
        self._preview.setPen(pen)
        self._extend_stroke(scene_pos)

    def _extend_stroke(self, scene_pos: QPointF) -> None:
        assert self._stroke is not None
        if scene_pos != self._stroke[-1]:
            self._stroke.append(scene_pos)
        path = QPainterPath(self._stroke[0])
        for point in self._stroke[1:]:
            path.lineTo(point)
        if len(self._stroke) == 1:          # a click: a dab (a zero-length line draws nothing)
            path.lineTo(self._stroke[0] + QPointF(0.01, 0))
        self._preview.setPath(path)

    def _finish_stroke(self) -> None:
        """Emit the stroke in atom-map coordinates and clear the preview."""
        points = self._stroke or []
        self._end_stroke()
        if points:
            sy, sx = self._atom_scale
            rows_cols = np.array([(p.y() * sy, p.x() * sx) for p in points], dtype=np.float64)
            self.stroked.emit(rows_cols, self.brush_radius * sx)

    def _end_stroke(self) -> None:
        self._stroke = None
        self._preview.setPath(QPainterPath())

    # ------------------------------------------------------------------ view
    def fit(self) -> None:
        self.fitInView(self._image, Qt.AspectRatioMode.KeepAspectRatio)

    def actual_size(self) -> None:
        self.setTransform(QTransform())

    def zoom(self, factor: float) -> None:
        current = self.transform().m11()
        factor = min(max(current * factor, MIN_ZOOM), MAX_ZOOM) / current
        self.scale(factor, factor)

    def atom_at(self, view_pos: QPointF) -> tuple[int, int]:
        """(row, col) in the atom map under a viewport position, or (-1, -1) outside."""
        scene = self.mapToScene(view_pos.toPoint())
        row = int(scene.y() * self._atom_scale[0])
        col = int(scene.x() * self._atom_scale[1])
        if 0 <= row < self._atom_shape[0] and 0 <= col < self._atom_shape[1]:
            return row, col
        return -1, -1

    def view_pos_of(self, row: int, col: int) -> QPointF:
        """Viewport position of the centre of an atom-map pixel (for tests and scripts)."""
        scene = QPointF((col + 0.5) / self._atom_scale[1], (row + 0.5) / self._atom_scale[0])
        return QPointF(self.mapFromScene(scene))

    # ------------------------------------------------------------------ events
    def wheelEvent(self, event: QWheelEvent) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom(ZOOM_STEP if event.angleDelta().y() > 0 else 1 / ZOOM_STEP)
        else:
            super().wheelEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.MiddleButton or (
                self._space and event.button() == Qt.MouseButton.LeftButton):
            self._pan_from = event.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        elif event.button() == Qt.MouseButton.LeftButton and self.tool != SELECT:
            self._begin_stroke(self.mapToScene(event.position().toPoint()))
        elif event.button() == Qt.MouseButton.LeftButton:
            row, col = self.atom_at(event.position())
            if row >= 0:
                self.clicked.emit(row, col, event.modifiers())
        else:
            super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(delta.y()))
            return
        if self.tool != SELECT:
            scene_pos = self.mapToScene(event.position().toPoint())
            self._place_cursor(scene_pos)
            self._cursor.show()
            if self._stroke is not None:
                self._extend_stroke(scene_pos)
        self.hovered.emit(*self.atom_at(event.position()))
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            self._pan_from = None
            self.unsetCursor()
            return
        if self._stroke is not None and event.button() == Qt.MouseButton.LeftButton:
            self._finish_stroke()
            return
        super().mouseReleaseEvent(event)

    def leaveEvent(self, event) -> None:  # noqa: ANN001 - QEvent
        self._cursor.hide()
        self.hovered.emit(-1, -1)
        super().leaveEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.setCursor(Qt.CursorShape.OpenHandCursor)
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.unsetCursor()
            return
        super().keyReleaseEvent(event)
