"""Receptive-field panel: growth layer by layer, the input region of a chosen unit, and the
effective receptive field (gradient of one output unit with respect to the input)."""

from __future__ import annotations

import dataclasses
import html
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Iterator, Mapping

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSignalBlocker, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPen
from PySide6.QtWidgets import (QAbstractItemView, QGraphicsItem, QGraphicsRectItem, QGraphicsScene, QHBoxLayout,
                               QHeaderView, QLabel, QPushButton, QSizePolicy, QSplitter, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from widgets.items import DecadeAxis, PixelCurve, never_widens
from widgets.panel import Panel
from workbench.compute import receptive_field as rf
from workbench.i18n import ntr, tr
from workbench.memo import bounded_cache
from workbench.params import Choice, Param, ParamSet, Preset

EDIT_COLUMNS = ("name", "kind", "kernel", "stride", "padding", "dilation", "channels")
RESULT_COLUMNS = ("size", "rf", "jump", "start", "params")
_ERF_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="workbench-erf")


def error_templates() -> dict[str, str]:
    """The backend's refusals (``rf.ERRORS``: reason -> English template) in the interface language."""
    return {
        "kind": tr("layer {layer} ({name}): kind must be one of {kinds}, got {value!r}"),
        "integer_at_least": tr("layer {layer} ({name}): {field} must be an integer >= {low}, got {value!r}"),
        "name": tr("layer {layer} ({name}): name must be text without whitespace, ';' or '=', got {value!r}"),
        "channels": tr("layer {layer} ({name}): channels must be None or an integer >= 1, got {value!r}"),
        "avgpool_dilation": tr("layer {layer} ({name}): dilation must be 1 for avgpool (torch's AvgPool2d has none), "
                               "got {value}"),
        "pool_padding": tr("layer {layer} ({name}): padding {padding} is more than half the kernel {kernel} "
                           "(torch's pooling allows at most {limit})"),
        "kernel_too_large": tr("layer {layer} ({name}): kernel {kernel} is larger than its padded input {padded}"),
        "dilated_kernel_too_large": tr("layer {layer} ({name}): kernel {kernel} (dilated to {dilated}) is larger than "
                                       "its padded input {padded}"),
        "groups_input": tr("layer {layer} ({name}): groups {groups} does not divide the {channels} input channels"),
        "groups_output": tr("layer {layer} ({name}): groups {groups} does not divide the {channels} output channels"),
        "kind_first": tr("layer {layer} ({name}): kind must come first, one of {kinds}, got {value!r}"),
        "not_key_value": tr("layer {layer} ({name}): {key!r} is not key=value"),
        "unknown_key": tr("layer {layer} ({name}): unknown key {key!r} (known: {known}, name)"),
        "given_twice": tr("layer {layer} ({name}): {field} given twice"),
        "not_an_integer": tr("layer {layer} ({name}): {field} must be an integer, got {value!r}"),
        "no_kernel": tr("layer {layer} ({name}): kernel is missing (write k=<size>)"),
        "empty_layer": tr("layer {layer}: empty (nothing between two ';')"),
        "not_a_layer": tr("layer {layer}: expected a Layer, got {type}"),
        "text_not_layers": tr("layers: expected Layer objects, got text (use parse_layers)"),
        "not_text": tr("layers: expected text, got {type}"),
        "empty_text": tr("layers: empty text; write e.g. 'conv k=3 p=1; maxpool k=2 s=2'"),
        "no_layers": tr("layers: need at least 1, got 0"),
        "too_many_layers": tr("layers: at most {limit}, got {count}"),
        "only_padding": tr("layers: the centre unit of the last layer sees only padding"),
        "size": tr("{argument}: must be an integer >= 1, got {value!r}"),
        "optional_size": tr("{argument}: must be None or an integer >= 1, got {value!r}"),
        "layer_index": tr("layer_index: must be an integer in [0, {last}], got {value!r}"),
        "unit": tr("unit: must be an integer in [0, {last}] (layer {layer} ({name}) has {size} units), got {value!r}"),
        "unit_of_one": tr("unit: must be 0 (layer {layer} ({name}) has 1 unit), got {value!r}"),
        "effective_input_size": tr("input_size: at most {limit} for the effective field, got {value}"),
        "effective_too_large": tr("input_size: {value} is too large for this stack's effective field "
                                  "({count:,} padded values, at most {limit:,})"),
        "weights": tr("weights: must be one of {known}, got {value!r}"),
        "seed": tr("seed: must be an integer >= 0, got {value!r}"),
        "n_max": tr("n_max: must be an integer in [1, {limit}], got {value!r}"),
        "unknown_preset": tr("preset: unknown {value!r} (known: {known})"),
    }


def error_text(error: Exception) -> str:
    """What the receptive-field backend refused, in the interface language (a layer's field by its
    column's name); any other error as it is."""
    if not isinstance(error, rf.ReceptiveFieldError):
        return str(error)
    fields = dict(error.fields)
    if "field" in fields:
        fields["field"] = tr(str(fields["field"]))  # "stride" -> the column header, 步长
    return error_templates()[error.reason].format(**fields)


def _check_layers(text: str) -> None:
    try:
        rf.parse_layers(text)
    except rf.ReceptiveFieldError as error:
        raise ValueError(error_text(error)) from None


def _table(values: Mapping[str, Any]) -> rf.Table:
    return _table_of(values["layers"], values["input_size"])


@lru_cache(maxsize=32)
def _table_of(text: str, input_size: int) -> rf.Table:
    return rf.receptive_field(rf.parse_layers(text), input_size)


def _preset_values(key: str, input_size: int = 224) -> dict:
    layers = rf.PRESETS[key]
    table = rf.receptive_field(layers, input_size)
    centre = (table.rows[-1].size - 1) // 2
    return {"layers": rf.format_layers(layers), "input_size": input_size, "layer": len(layers), "unit_x": centre,
            "unit_y": centre}


PARAMETERS = [
    Param("layers", "text", rf.format_layers(rf.PRESETS["vgg16"]), "Layers", "网络层",
          "The stack, one layer per ';': kind (conv, maxpool, avgpool) and k= s= p= d= c= g= name= (edit it in the table).",
          "网络结构，层之间用 ';' 分隔：类型（conv、maxpool、avgpool）以及 k= s= p= d= c= g= name=（可在表格中编辑）。",
          check=_check_layers, max_length=6000, group="Network"),
    Param("input_size", "int", 224, "Input size", "输入尺寸", "Height = width of the input image in pixels.",
          "输入图像的高和宽（像素）。", lo=8, hi=1024, group="Network"),
    Param("layer", "int", 18, "Chosen layer", "选定的层", "The layer whose unit is shown (1 = first layer).",
          "显示哪一层的单元（1 = 第一层）。", lo=1, hi=64, group="Unit"),
    Param("unit_x", "int", 3, "Unit column", "单元列号", "Column of the chosen unit in that layer's output (or click the image).",
          "选定单元在该层输出中的列（也可点击图像）。", lo=0, hi=1023, group="Unit"),
    Param("unit_y", "int", 3, "Unit row", "单元行号", "Row of the chosen unit in that layer's output (or click the image).",
          "选定单元在该层输出中的行（也可点击图像）。", lo=0, hi=1023, group="Unit"),
    Param("erf_weights", "choice", "uniform", "ERF weights", "ERF 权重",
          "Effective receptive field with every kernel uniform (1/k²) or random positive.",
          "计算有效感受野时，各卷积核取均匀值（1/k²）或随机正值。",
          choices=(Choice("uniform", "Uniform", "均匀"), Choice("random", "Random positive", "随机正值")),
          group="Effective field"),
    Param("erf_relu", "bool", False, "ReLU after each conv", "每个卷积后加 ReLU", "Insert ReLUs in the gradient path.",
          "在梯度路径上加入 ReLU。", group="Effective field"),
    Param("channels", "int", 64, "Channels C (comparison)", "通道数 C（对比）",
          "C in the weight counts of the comparison card (C input and C output channels).",
          "对比卡片中权重数的 C（输入、输出各 C 个通道）。", lo=1, hi=1024, group="Effective field"),
]


def _output_size(values: Mapping[str, Any]) -> int | None:
    try:
        table = _table(values)
    except ValueError:
        return None
    index = min(values["layer"], len(table.rows)) - 1
    return table.rows[index].size


def _follow(values: Mapping[str, Any], changes: Mapping[str, Any]) -> dict:
    """The chosen layer and unit stay inside the network and the layer's output."""
    follow = {}
    try:
        count = len(rf.parse_layers(values["layers"]))
    except ValueError:
        return follow
    if values["layer"] > count:
        follow["layer"] = count
    size = _output_size({**values, **follow})
    if size:
        for name in ("unit_x", "unit_y"):
            if values[name] > size - 1:
                follow[name] = (size - 1) // 2 if name not in changes else size - 1
    return follow


def _check(values: Mapping[str, Any]) -> list[str]:
    try:
        table = _table(values)
    except ValueError as error:
        return [f"layers: {error_text(error)}"]
    problems = []
    if values["layer"] > len(table.rows):
        problems.append(ntr("layer (layer): {layer} is more than the {n} layer",
                            "layer (layer): {layer} is more than the {n} layers", len(table.rows)).format(
            layer=values["layer"], n=len(table.rows)))
    else:
        size = table.rows[values["layer"] - 1].size
        for name in ("unit_x", "unit_y"):
            if values[name] > size - 1:
                problems.append(tr("{name} ({name}): {unit} is outside the layer's {size} x {size} output").format(
                    name=name, unit=values[name], size=size))
    return problems


PRESETS = [Preset(key, rf.PRESET_LABELS[key], rf.PRESET_LABELS[key], _preset_values(key, 227 if key == "alexnet" else 224))
           for key in rf.PRESETS]

PARAMS = ParamSet(PARAMETERS, check=_check, presets=PRESETS, follow=_follow)


@dataclass(frozen=True)
class RFScene:
    """What the panel draws: the layers and their table, the input region of the chosen unit at
    every layer up to the chosen one (rows, cols), the comparison numbers and the stacked-conv curve."""

    layers: tuple[rf.Layer, ...]
    table: rf.Table
    regions: tuple[tuple[rf.Region, rf.Region], ...]  # per layer up to the chosen one: (rows, cols)
    comparison: tuple[tuple[str, int, int, int], ...]  # (stack, rf, weights, non-linearities)
    stacked: tuple[np.ndarray, np.ndarray, np.ndarray]
    image: np.ndarray  # the input picture at input_size x input_size (scene_image): scaled on the worker, not at the draw


@lru_cache(maxsize=8)
def comparison(channels: int) -> tuple[tuple[str, int, int, int], ...]:
    """Single large kernels against stacks of 3 x 3 (and a 1 x 1) with C channels in and out:
    (stack, receptive field, weights without biases, non-linearities)."""
    stacks = {"7x7": [7], "3 x 3x3": [3, 3, 3], "5x5": [5], "2 x 3x3": [3, 3], "1x1": [1]}
    rows = []
    for label, kernels in stacks.items():
        layers = tuple(rf.Layer("conv", k, padding=k // 2, channels=channels) for k in kernels)
        field = rf.receptive_field(layers).rows[-1].rf
        rows.append((label, field, sum(k * k * channels * channels for k in kernels), len(kernels)))
    return tuple(rows)


def compute_scene(values: Mapping[str, Any]) -> RFScene:
    layers = rf.parse_layers(values["layers"])
    table = _table(values)
    regions = tuple((rf.input_region(layers, i, _scaled_unit(values["unit_y"], table, i, values["layer"]), values["input_size"]),
                     rf.input_region(layers, i, _scaled_unit(values["unit_x"], table, i, values["layer"]), values["input_size"]))
                    for i in range(values["layer"]))
    return RFScene(layers, table, regions, comparison(values["channels"]), rf.stacked_convs(),
                   scene_image(values["input_size"]))


def _scaled_unit(unit: int, table: rf.Table, index: int, chosen: int) -> int:
    """The unit of layer ``index`` (0-based) whose field is centred nearest the chosen unit's."""
    if index == chosen - 1:
        return unit
    row, target = table.rows[index], table.rows[chosen - 1]
    centre = target.start + unit * target.jump
    return int(min(max(round((centre - row.start) / row.jump), 0), row.size - 1))


@bounded_cache(maxsize=16, max_bytes=64 * 2 ** 20)
def _effective(text: str, input_size: int, layer: int, weights: str, relu: bool) -> rf.EffectiveRF:
    return rf.effective_rf(rf.parse_layers(text)[:layer], input_size, weights=weights, relu=relu)


@lru_cache(maxsize=2)
def scene_image(size: int) -> np.ndarray:
    """The bundled picture (assets/images/scene.png) resized to size x size, (size, size, 4) uint8 RGBA."""
    data = resources.files("assets").joinpath("images", "scene.png").read_bytes()
    image = QImage.fromData(data).convertToFormat(QImage.Format_RGBA8888)
    image = image.scaled(size, size, Qt.IgnoreAspectRatio, Qt.SmoothTransformation)
    array = np.frombuffer(image.constBits(), np.uint8, count=image.sizeInBytes())
    array = array.reshape(size, image.bytesPerLine() // 4, 4)[:, :size].copy()
    array.setflags(write=False)
    return array


class ReceptiveFieldPanel(Panel):
    NAME = "receptive_field"
    TITLE_EN = "Receptive field"
    TITLE_ZH = "感受野"
    PARAMS = PARAMS
    OPEN_GROUPS = ("Network", "Unit", "Effective field")
    BENCH_SWEEPS = {"unit_x": (0, 6), "layers (kernel of conv1_1: 3 / 5)": {
        "param": "layers", "sweep": [rf.format_layers((rf.Layer("conv", k, padding=k // 2, name="conv1_1", channels=64),
                                                        *rf.PRESETS["vgg16"][1:])) for k in (3, 5) * 30]}}
    BENCH_BUDGETS_MS = {"unit_x": 8.0, "layers (kernel of conv1_1: 3 / 5)": 8.0}

    compute = staticmethod(compute_scene)
    _erf_ready = Signal(object, object)  # key, result

    def __init__(self, style, values=None, parent=None):
        self._erf_key: tuple | None = None  # the field wanted
        self._erf_running: tuple | None = None
        self.erf_result: rf.EffectiveRF | None = None
        super().__init__(style, values, parent)
        self._erf_ready.connect(self._erf_arrived, Qt.QueuedConnection)

    # ---- figure ---------------------------------------------------------------------------------
    def build_figure(self) -> QWidget:
        st = self.style_
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(4, 4, 4, 0)
        buttons = QHBoxLayout()
        self.add_button = QPushButton(tr("Add layer"))
        self.add_button.setToolTip(tr("Insert a 3x3 conv below the selected row"))
        self.delete_button = QPushButton(tr("Delete layer"))
        self.up_button = QPushButton(tr("Move up"))
        self.down_button = QPushButton(tr("Move down"))
        for button, handler in ((self.add_button, self._add_layer), (self.delete_button, self._delete_layer),
                                (self.up_button, lambda: self._move_layer(-1)),
                                (self.down_button, lambda: self._move_layer(1))):
            button.clicked.connect(handler)
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.table_note = QLabel()
        self.table_note.setStyleSheet(f"color: {st.error};")
        self.table_note.setWordWrap(True)
        self.table_note.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.table = QTableWidget(0, len(EDIT_COLUMNS) + len(RESULT_COLUMNS))
        self.table.setObjectName("layer_table")
        headers = [tr("name"), tr("kind"), tr("kernel"), tr("stride"), tr("padding"), tr("dilation"), tr("channels"),
                   tr("output size"), tr("rf"), tr("jump"), tr("start"), tr("parameters")]
        self.table.setHorizontalHeaderLabels(headers)
        editable, computed = QTableWidgetItem(), QTableWidgetItem()  # new cells are copies: flags set once, not per cell
        editable.setFlags(Qt.ItemIsSelectable | Qt.ItemIsEnabled | Qt.ItemIsEditable)
        computed.setFlags(Qt.ItemIsSelectable | Qt.ItemIsEnabled)
        computed.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
        # copied with QTableWidgetItem(prototype), not clone(): a cell made in C++ has a wrapper that never
        # learns of its deletion, and a later object at its address got that stale wrapper (a crash)
        self._cell_prototypes = (editable, computed)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.Interactive)  # sized once per fill
        self.table.verticalHeader().setDefaultSectionSize(int(st.point_size * 2.2))
        self.table.setMinimumHeight(int(st.point_size * 2.2 * 5.5))  # header and four rows, even on a 768-pixel screen
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.itemChanged.connect(self._cell_edited)
        self.table.setToolTip(tr("Edit name, kind, kernel, stride, padding, dilation or channels; the rest is computed"))
        table_box = QWidget()
        table_column = QVBoxLayout(table_box)
        table_column.setContentsMargins(0, 0, 0, 0)
        table_column.addLayout(buttons)
        table_column.addWidget(self.table_note)
        table_column.addWidget(self.table, 1)
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setBackground(st.background)
        self.canvas.scene().setItemIndexMethod(QGraphicsScene.NoIndex)
        self.unit_label = QLabel()  # the chosen unit's field and the effective field, in words
        self.unit_label.setObjectName("unit_label")
        self.unit_label.setWordWrap(True)
        self.unit_label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        view_box = QWidget()
        view_column = QVBoxLayout(view_box)
        view_column.setContentsMargins(0, 0, 0, 0)
        view_column.addWidget(self.unit_label)
        view_column.addWidget(self.canvas, 1)
        splitter = QSplitter(Qt.Vertical)
        splitter.addWidget(table_box)
        splitter.addWidget(view_box)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 5)
        column.addWidget(splitter, 1)
        ci = self.canvas.ci
        # the input with the chosen unit's field at every layer
        self.input_view = ci.addPlot(row=0, col=0, rowspan=2, enableMenu=False)
        st.style_plot(self.input_view, tr("Input: the chosen unit's field at every layer"), "", "")
        self.input_view.showGrid(x=False, y=False)
        self.input_view.getViewBox().invertY(True)
        self.input_view.getViewBox().setAspectLocked(True)
        self.input_view.setMouseEnabled(x=False, y=False)
        self.input_view.hideButtons()
        self.input_view.setMenuEnabled(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.input_view.addItem(self.image)
        self.image_frame = QGraphicsRectItem()
        self.image_frame.setPen(pg.mkPen(st.foreground, width=1))
        self.input_view.addItem(self.image_frame, ignoreBounds=True)
        self.squares: list[QGraphicsRectItem] = []  # one per layer at most, made once
        for _ in range(rf.MAX_LAYERS):
            square = QGraphicsRectItem()
            square.setZValue(10)
            square.setVisible(False)
            self.input_view.addItem(square, ignoreBounds=True)
            self.squares.append(square)
        self.input_view.scene().sigMouseClicked.connect(self._clicked)
        self.input_view.setToolTip(tr("Click to choose the unit whose field is centred there"))
        # growth
        self.growth = ci.addPlot(row=0, col=1, axisItems={"left": DecadeAxis("left")})
        st.style_plot(self.growth, tr("Growth layer by layer"), tr("pixels"), tr("layer"))
        self.growth.showGrid(x=False, y=False)
        self.rf_curve = PixelCurve(pen=st.pen(st.series[0]))
        self.jump_curve = PixelCurve(pen=st.pen(st.series[1], style=Qt.DashLine))
        self.growth_dots = pg.ScatterPlotItem(size=st.marker_size, pen=pg.mkPen(st.foreground, width=1.5),
                                              brush=pg.mkBrush(st.background))
        for item in (self.rf_curve, self.jump_curve, self.growth_dots):
            self.growth.addItem(item, ignoreBounds=True)
        legend = pg.LegendItem(offset=(6, 6), labelTextColor=st.foreground, labelTextSize=f"{st.point_size * 0.85:.0f}pt",
                               brush=pg.mkBrush(st.background), pen=pg.mkPen(st.muted))
        legend.setParentItem(self.growth.vb)
        legend.addItem(self.rf_curve, tr("receptive field rf"))
        legend.addItem(self.jump_curve, tr("jump (stride product)"))
        # effective receptive field
        self.erf_plot = ci.addPlot(row=1, col=1, enableMenu=False)
        st.style_plot(self.erf_plot, tr("Effective field: |∂ unit / ∂ input|"), "", "")
        self.erf_plot.showGrid(x=False, y=False)
        self.erf_plot.getViewBox().invertY(True)
        self.erf_plot.getViewBox().setAspectLocked(True)
        self.erf_plot.setMouseEnabled(x=False, y=False)
        self.erf_plot.hideButtons()
        self.erf_plot.setMenuEnabled(False)
        self.erf_image = pg.ImageItem(axisOrder="row-major")
        self.erf_image.setLookupTable(pg.colormap.get("inferno").getLookupTable(nPts=256))
        self.erf_plot.addItem(self.erf_image)
        self.erf_square = QGraphicsRectItem()
        self.erf_square.setPen(pg.mkPen(st.series[2], width=2, style=Qt.DashLine))
        self.erf_plot.addItem(self.erf_square, ignoreBounds=True)
        # stacked 3x3: theoretical against effective
        self.stack_plot = ci.addPlot(row=2, col=0)
        st.style_plot(self.stack_plot, tr("n stacked 3x3 convs"), tr("pixels"), "n")
        self.stack_plot.showGrid(x=False, y=False)
        theory = PixelCurve(pen=st.pen(st.series[0]))
        effective = PixelCurve(pen=st.pen(st.series[3], style=Qt.DashLine))
        self.stack_curves = (theory, effective)
        for item in self.stack_curves:
            self.stack_plot.addItem(item)
        stack_legend = pg.LegendItem(offset=(6, 6), labelTextColor=st.foreground,
                                     labelTextSize=f"{st.point_size * 0.85:.0f}pt", brush=pg.mkBrush(st.background),
                                     pen=pg.mkPen(st.muted))
        stack_legend.setParentItem(self.stack_plot.vb)
        stack_legend.addItem(theory, tr("theoretical rf = 2n + 1"))
        stack_legend.addItem(effective, tr("effective: 4 std of the gradient"))
        # comparison card
        self.card = pg.LabelItem(justify="left", color=st.foreground, size=f"{st.point_size * 0.9:.0f}pt")
        ci.addItem(self.card, row=2, col=1)
        for col, stretch in enumerate((3, 2)):
            ci.layout.setColumnStretchFactor(col, stretch)
        for row, stretch in enumerate((3, 3, 2)):
            ci.layout.setRowStretchFactor(row, stretch)
        for plot in (self.growth, self.stack_plot, self.input_view, self.erf_plot):
            plot.titleLabel.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
            never_widens(plot.titleLabel)
        self._drawn_stack: tuple | None = None  # (layers, input_size) of the table and growth plot shown
        return box

    # ---- drawing ----------------------------------------------------------------------------------
    def draw(self, scene: RFScene) -> Iterator[None]:
        """In steps (see Panel): a new stack's table, then its growth plot, then the rest."""
        v = self.values
        if (v["layers"], v["input_size"]) != self._drawn_stack:
            self._drawn_stack = None  # until both are drawn (a newer result may replace this one between steps)
            self._fill_table(scene)
            yield
            self._draw_growth(scene)
            self._drawn_stack = (v["layers"], v["input_size"])
            yield
        self._select_row(v["layer"] - 1)
        if self._drawn_image_size != v["input_size"]:
            size = v["input_size"]
            self.image.setImage(scene.image, autoLevels=False)
            self.image.setRect(QRectF(0, 0, size, size))
            self.image_frame.setRect(QRectF(0, 0, size, size))
            self._drawn_image_size = size
        self._draw_squares(scene)
        self.growth_dots.setData([v["layer"]], [math.log10(scene.table.rows[v["layer"] - 1].rf)])
        self._draw_card(scene)
        yield
        if self._drawn_stacked is not scene.stacked:
            n, theory, std = scene.stacked
            self.stack_curves[0].setData(n, theory)
            self.stack_curves[1].setData(n, 4 * std)
            self._drawn_stacked = scene.stacked
        self._request_erf()

    _drawn_image_size: int | None = None
    _drawn_stacked: Any = None

    def _fill_table(self, scene: RFScene) -> None:
        """The table shows ``scene``'s layers; only cells whose text changes are touched (every change
        of a cell makes the view re-measure its columns)."""
        with QSignalBlocker(self.table):
            self.table.setUpdatesEnabled(False)
            self.table.setRowCount(len(scene.layers))
            for r, (layer, row) in enumerate(zip(scene.layers, scene.table.rows)):
                cells = [layer.name or f"{layer.kind}{r + 1}", layer.kind, layer.kernel, layer.stride, layer.padding,
                         layer.dilation, "" if layer.channels is None else layer.channels,
                         "" if row.size is None else row.size, row.rf, row.jump, f"{row.start:g}",
                         "" if row.params is None else f"{row.params:,}"]
                for c, value in enumerate(cells):
                    item = self.table.item(r, c)
                    if item is None:
                        item = QTableWidgetItem(self._cell_prototypes[c >= len(EDIT_COLUMNS)])
                        self.table.setItem(r, c, item)
                    if item.text() != str(value):
                        item.setText(str(value))
                    if c >= len(EDIT_COLUMNS) and item.toolTip() != row.formula:
                        item.setToolTip(row.formula)
            self.table.resizeColumnsToContents()
            self.table.setUpdatesEnabled(True)
        self.table_note.setText("")
        self.table_note.hide()

    def _select_row(self, index: int) -> None:
        with QSignalBlocker(self.table):
            if self.table.currentRow() != index:
                self.table.selectRow(index)

    def _draw_growth(self, scene: RFScene) -> None:
        rows = scene.table.rows
        x = np.arange(1, len(rows) + 1, dtype=float)
        rfs = np.log10([r.rf for r in rows])
        jumps = np.log10([r.jump for r in rows])
        self.rf_curve.setData(x, rfs)
        self.jump_curve.setData(x, jumps)
        self.growth.setRange(xRange=(0.5, len(rows) + 0.5), yRange=(0, math.ceil(max(rfs.max(), 1.0))), padding=0.02)
        self.growth.vb.prepareForPaint()  # the new view now: applied in the paint, it asks for a second one

    def _draw_squares(self, scene: RFScene) -> None:
        """Nested squares: the chosen unit's field at every layer up to the chosen one, outermost last."""
        st = self.style_
        size = self.values["input_size"]
        count = len(scene.regions)
        for index, square in enumerate(self.squares):
            square.setVisible(index < count)
            if index >= count:
                continue
            rows, cols = scene.regions[index]
            square.setRect(QRectF(cols.first - 0.5, rows.first - 0.5, cols.last - cols.first + 1, rows.last - rows.first + 1))
            color = QColor(st.series[index % len(st.series)] if index == count - 1 else st.foreground)
            color.setAlpha(255 if index == count - 1 else 110)
            pen = QPen(color)
            pen.setCosmetic(True)
            pen.setWidthF(st.line_width if index == count - 1 else 1.0)
            outside = rows.padding_pixels or cols.padding_pixels
            pen.setStyle(Qt.DashLine if outside else Qt.SolidLine)
            square.setPen(pen)
        last = scene.regions[-1]
        margin = max(0, -last[0].first, -last[1].first, last[0].last - size + 1, last[1].last - size + 1)
        self.input_view.setRange(xRange=(-margin - 1, size + margin), yRange=(-margin - 1, size + margin), padding=0.02)
        self.input_view.vb.prepareForPaint()
        row = scene.table.rows[self.values["layer"] - 1]
        rows, cols = last
        padding = max(rows.padding_pixels, cols.padding_pixels)
        text = tr("layer {k} ({name}), unit ({y}, {x}): rf {rf} px, pixels {r0}..{r1} x {c0}..{c1}").format(
            k=self.values["layer"], name=scene.layers[self.values["layer"] - 1].name or "-", y=self.values["unit_y"],
            x=self.values["unit_x"], rf=row.rf, r0=rows.first, r1=rows.last, c0=cols.first, c1=cols.last)
        if padding:
            text += " " + tr("({n} px per side on padding: dashed)").format(n=padding)
        self._unit_text = text
        self._show_unit_label()

    def _draw_card(self, scene: RFScene) -> None:
        c = self.values["channels"]
        head = "".join(f"<th align='right'>&nbsp;{html.escape(h)}</th>"
                       for h in (tr("rf"), tr("weights"), tr("non-linearities")))
        body = "".join(f"<tr><td>{html.escape(stack)}</td><td align='right'>{field}</td><td align='right'>&nbsp;{weights:,}</td>"
                       f"<td align='right'>{nonlin}</td></tr>" for stack, field, weights, nonlin in scene.comparison)
        text = (f"<b>{html.escape(tr('Same field, fewer weights'))}</b> (C = {c})"
                f"<table cellspacing='2'><tr><th></th>{head}</tr>{body}</table>")
        if self.card.text != text:
            self.card.setText(text)

    _unit_text = ""
    _erf_text = ""

    def _show_unit_label(self) -> None:
        text = "\n".join(t for t in (self._unit_text, self._erf_text) if t)
        if self.unit_label.text() != text:
            self.unit_label.setText(text)

    # ---- effective receptive field, off the GUI thread -------------------------------------------------
    def _request_erf(self) -> None:
        v = self.values
        key = (v["layers"], v["input_size"], v["layer"], v["erf_weights"], v["erf_relu"])
        self._erf_key = key
        if self._erf_running is None and self._erf_shown != key:
            self._erf_running = key
            _ERF_EXECUTOR.submit(self._run_erf, key)

    _erf_shown: tuple | None = None

    def busy(self) -> bool:
        """Also while the effective field is computed (its own worker): it is part of the figure."""
        return super().busy() or self._erf_running is not None

    def _run_erf(self, key: tuple) -> None:
        try:
            result = _effective(*key)
        except Exception as error:  # shown in the status bar, never a crash
            result = error
        self._erf_ready.emit(key, result)

    def _erf_arrived(self, key: tuple, result: Any) -> None:
        self._erf_running = None
        if key != self._erf_key:
            self._request_erf()  # the settings moved on: compute the newest once
            return
        if isinstance(result, Exception):  # e.g. too large to trace, or only padding seen: said beside the unit
            self.erf_result, self._erf_shown = None, key
            self.erf_image.clear()
            self.erf_square.setRect(QRectF())
            self._erf_text = tr("Effective field not shown: {reason}").format(reason=error_text(result))
            self._show_unit_label()
            return
        self.erf_result, self._erf_shown = result, key
        self.erf_image.setImage(result.gradient, levels=(0.0, 1.0), autoLevels=False)
        size = result.gradient.shape[0]
        self.erf_image.setRect(QRectF(0, 0, size, size))
        first, last = result.theoretical
        self.erf_square.setRect(QRectF(first - 0.5, first - 0.5, last - first + 1, last - first + 1))
        self.erf_plot.setRange(xRange=(min(first, 0) - 1, max(last, size - 1) + 1),
                               yRange=(min(first, 0) - 1, max(last, size - 1) + 1), padding=0.02)
        self.erf_plot.vb.prepareForPaint()
        self._erf_text = tr("Effective field: std {sy:.1f} x {sx:.1f} px; 95% of the gradient on {f:.0%} of the "
                            "theoretical square").format(sy=result.std[0], sx=result.std[1], f=result.fraction_95)
        self._show_unit_label()

    # ---- editing the layer table ----------------------------------------------------------------------
    def _current_layers(self) -> list[rf.Layer]:
        return list(self.result.layers) if self.result is not None else list(rf.parse_layers(self.values["layers"]))

    def _set_layers(self, layers: list[rf.Layer], row: int | None = None) -> None:
        if not layers:
            self._refuse(tr("layers: a network needs at least one layer"))
            return
        try:
            changes: dict[str, Any] = {"layers": rf.format_layers(tuple(layers))}
        except ValueError as error:  # an invalid row: flagged, the accepted network stays
            self._refuse(f"layers: {error_text(error)}")
            return
        if row is not None:
            changes["layer"] = row + 1
        if not self.set_values(changes):
            self._refuse(self.controls["layers"].error_label.text())

    def _refuse(self, message: str) -> None:
        self.table_note.setText(message)
        self.table_note.show()
        self.message.emit(message, True)
        if self.result is not None:
            self._fill_table(self.result)  # back to the accepted layers
            self.table_note.setText(message)
            self.table_note.show()

    def _cell_edited(self, item: QTableWidgetItem) -> None:
        r, c = item.row(), item.column()
        layers = self._current_layers()
        if r >= len(layers) or c >= len(EDIT_COLUMNS):
            return
        field = EDIT_COLUMNS[c]
        text = item.text().strip()
        layer = layers[r]
        try:
            if field in ("name", "kind"):
                value: Any = text
            elif field == "channels":
                value = None if text == "" else int(text)
            else:
                value = int(text)
        except ValueError:
            self._refuse(tr("layer {r} ({name}): {field} must be an integer, got {text!r}").format(
                r=r + 1, name=layer.name or layer.kind, field=tr(field), text=text))
            return
        try:
            layers[r] = dataclasses.replace(layer, **{field: value})
        except (TypeError, ValueError) as error:
            self._refuse(error_text(error))
            return
        self._set_layers(layers)

    def _selected(self) -> int:
        return max(self.table.currentRow(), 0)

    def _add_layer(self) -> None:
        layers = self._current_layers()
        at = self._selected() + 1
        layers.insert(at, rf.Layer("conv", 3, padding=1, name=f"conv{len(layers) + 1}"))
        self._set_layers(layers, at)

    def _delete_layer(self) -> None:
        layers = self._current_layers()
        at = self._selected()
        del layers[at]
        self._set_layers(layers, min(at, len(layers) - 1) if layers else None)

    def _move_layer(self, step: int) -> None:
        layers = self._current_layers()
        at = self._selected()
        to = at + step
        if not 0 <= to < len(layers):
            return
        layers[at], layers[to] = layers[to], layers[at]
        self._set_layers(layers, to)

    def _clicked(self, event) -> None:
        """A click on the input picks the unit of the chosen layer whose field is centred nearest."""
        if self.result is None or not self.input_view.vb.sceneBoundingRect().contains(event.scenePos()):
            return
        point = self.input_view.vb.mapSceneToView(event.scenePos())
        row = self.result.table.rows[self.values["layer"] - 1]
        pick_unit = lambda at: int(min(max(round((at - row.start) / row.jump), 0), row.size - 1))  # noqa: E731
        self.set_values({"unit_x": pick_unit(point.x()), "unit_y": pick_unit(point.y())})

    def caption(self) -> str:
        v = self.values
        row = self.result.table.rows[v["layer"] - 1] if self.result is not None else None
        extra = f"; rf {row.rf}, jump {row.jump}" if row is not None else ""
        return f"{self.title()}: {self.PARAMS.caption(v, ['input_size', 'layer', 'unit_x', 'unit_y', 'erf_weights', 'erf_relu'])}{extra}; {v['layers']}"

    def notes_html(self) -> str:
        text = super().notes_html()
        v = self.values
        try:
            table = _table(v)
            row = table.rows[v["layer"] - 1]
            numbers = {"layer": str(v["layer"]), "rf": str(row.rf), "jump": str(row.jump), "formula": row.formula}
        except (ValueError, IndexError):
            numbers = {"layer": "-", "rf": "-", "jump": "-", "formula": "-"}
        for key, value in numbers.items():
            text = text.replace("{" + key + "}", html.escape(value))
        return text

    def values_changed(self, names: list[str]) -> None:
        self.controls["layers"].hide()  # edited in the table
        if "layer" in names or "layers" in names:
            self.refresh_notes_later()  # the recurrence with numbers follows once an edit settles

    def bench_background(self) -> dict[str, tuple[list[float], float]]:
        """Milliseconds of the effective field for VGG16 at 224 x 224 (on the worker thread in the
        app), uncached, with its budget."""
        import time
        layers = rf.PRESETS["vgg16"]
        times = []
        for i in range(20):
            start = time.perf_counter()
            rf.effective_rf(layers, 224, weights="random" if i % 2 else "uniform", seed=i)
            times.append((time.perf_counter() - start) * 1000)
        return {"effective RF, VGG16 224x224": (times, 50.0)}
