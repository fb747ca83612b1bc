"""Receptive fields of convolution and pooling stacks: the theoretical field layer by layer, the
input pixels one unit sees, and the effective field measured by autograd.

Qt-free and torch-free: numpy + stdlib. The effective field is backpropagated here, layer by
layer as torch does it; the tests check it against torch autograd through torch.nn layers.

Coordinates are along one axis of a square input: pixel indices 0 .. input_size - 1, pixel
centres at the integers. Every kernel is square and acts the same on both axes.

Theoretical field (Dang Ha The Hien, "A guide to receptive field arithmetic", 2017; Araujo et al.,
"Computing receptive fields of convolutional neural networks", Distill 2019). With the effective
kernel k_eff = d (k - 1) + 1 of layer l (stride s, padding p, dilation d)::

    rf_l    = rf_{l-1} + (k_eff - 1) jump_{l-1}                 rf_0 = 1
    jump_l  = jump_{l-1} s                                      jump_0 = 1
    start_l = start_{l-1} + ((k_eff - 1) / 2 - p) jump_{l-1}     start_0 = 0
    size_l  = floor((size_{l-1} + 2 p - k_eff) / s) + 1         (torch, ceil_mode=False)

rf is the width in input pixels of what one unit sees, jump the distance in input pixels between
adjacent units, start the input coordinate of the centre of the first unit's field. Unit u of
layer l sees pixels start + u jump -+ (rf - 1) / 2. That range always has integer ends, even when
an even kernel makes rf even and start a half-integer: the first pixel is the first pixel of the
first unit it reads, so it is an integer sum. A dilated kernel, or a stride larger than the field
below, leaves holes inside the range (pixels no path reaches); the range is the span, as autograd
shows it: the smallest and largest pixel with a non-zero gradient.

Effective field (Luo et al. 2016): :func:`effective_rf` runs the stack forward and backward, one
channel per layer, and takes the gradient of one output unit with respect to the input. It is concentrated
near the centre of the theoretical field: for n stacked 3x3 convs its width grows as sqrt(n)
while the theoretical field grows as n (:func:`stacked_convs`).

Text form (scene files, the CLI): layers separated by ";", each its kind and then key=value pairs,
only the fields that differ from the defaults::

    conv k=11 s=4 p=2 c=64 name=conv1; maxpool k=3 s=2 name=pool1

Keys: k kernel, s stride, p padding, d dilation, c channels, g groups, name. Names have no
whitespace, ";" or "=".
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Iterable, Mapping

import numpy as np

__all__ = [
    "KINDS",
    "MAX_EFFECTIVE_ACTIVATIONS",
    "MAX_EFFECTIVE_INPUT",
    "MAX_LAYERS",
    "PRESETS",
    "PRESET_LABELS",
    "WEIGHTS",
    "ERRORS",
    "EffectiveRF",
    "Layer",
    "ReceptiveFieldError",
    "Region",
    "Row",
    "Table",
    "effective_rf",
    "format_layers",
    "input_region",
    "parse_layers",
    "preset",
    "receptive_field",
    "stacked_convs",
    "validate",
]

KINDS = ("conv", "maxpool", "avgpool")
WEIGHTS = ("uniform", "random")
MAX_LAYERS = 64
MAX_EFFECTIVE_INPUT = 1024  # pixels per side for effective_rf
MAX_EFFECTIVE_ACTIVATIONS = 2**23  # effective_rf's padded inputs, summed over layers (float64, kept for backward)
_INPUT_NOISE = 0.01  # effective_rf's input is 1 + this * uniform(0, 1)


class ReceptiveFieldError(ValueError):
    """A stack, a layer or an argument this module refuses. ``reason`` is a key of :data:`ERRORS`
    and ``fields`` fill its message, so an interface can word it in its own language; ``str(error)``
    is the English message. Where a layer is at fault, ``fields["layer"]`` is its 1-based index and
    ``fields["name"]`` its name (its kind when unnamed); ``fields["field"]``, where present, names
    the layer's field ("kernel", "stride", "padding", "dilation", "channels", "groups"); the other
    fields are numbers, the value refused, or lists of the words allowed."""

    def __init__(self, reason: str, **fields: object):
        self.reason, self.fields = reason, fields
        super().__init__(ERRORS[reason].format(**fields))


_AT = "layer {layer} ({name}): "
ERRORS = MappingProxyType({  # reason -> English message template (str.format with the error's fields)
    "kind": _AT + "kind must be one of {kinds}, got {value!r}",
    "integer_at_least": _AT + "{field} must be an integer >= {low}, got {value!r}",
    "name": _AT + "name must be text without whitespace, ';' or '=', got {value!r}",
    "channels": _AT + "channels must be None or an integer >= 1, got {value!r}",
    "avgpool_dilation": _AT + "dilation must be 1 for avgpool (torch's AvgPool2d has none), got {value}",
    "pool_padding": _AT + "padding {padding} is more than half the kernel {kernel} (torch's pooling allows at most {limit})",
    "kernel_too_large": _AT + "kernel {kernel} is larger than its padded input {padded}",
    "dilated_kernel_too_large": _AT + "kernel {kernel} (dilated to {dilated}) is larger than its padded input {padded}",
    "groups_input": _AT + "groups {groups} does not divide the {channels} input channels",
    "groups_output": _AT + "groups {groups} does not divide the {channels} output channels",
    "kind_first": _AT + "kind must come first, one of {kinds}, got {value!r}",
    "not_key_value": _AT + "{key!r} is not key=value",
    "unknown_key": _AT + "unknown key {key!r} (known: {known}, name)",
    "given_twice": _AT + "{field} given twice",
    "not_an_integer": _AT + "{field} must be an integer, got {value!r}",
    "no_kernel": _AT + "kernel is missing (write k=<size>)",
    "empty_layer": "layer {layer}: empty (nothing between two ';')",
    "not_a_layer": "layer {layer}: expected a Layer, got {type}",
    "text_not_layers": "layers: expected Layer objects, got text (use parse_layers)",
    "not_text": "layers: expected text, got {type}",
    "empty_text": "layers: empty text; write e.g. 'conv k=3 p=1; maxpool k=2 s=2'",
    "no_layers": "layers: need at least 1, got 0",
    "too_many_layers": "layers: at most {limit}, got {count}",
    "only_padding": "layers: the centre unit of the last layer sees only padding",
    "size": "{argument}: must be an integer >= 1, got {value!r}",
    "optional_size": "{argument}: must be None or an integer >= 1, got {value!r}",
    "layer_index": "layer_index: must be an integer in [0, {last}], got {value!r}",
    "unit": "unit: must be an integer in [0, {last}] (layer {layer} ({name}) has {size} units), got {value!r}",
    "unit_of_one": "unit: must be 0 (layer {layer} ({name}) has 1 unit), got {value!r}",
    "effective_input_size": "input_size: at most {limit} for the effective field, got {value}",
    "effective_too_large": "input_size: {value} is too large for this stack's effective field "
                           "({count:,} padded values, at most {limit:,})",
    "weights": "weights: must be one of {known}, got {value!r}",
    "seed": "seed: must be an integer >= 0, got {value!r}",
    "n_max": "n_max: must be an integer in [1, {limit}], got {value!r}",
    "unknown_preset": "preset: unknown {value!r} (known: {known})",
})


@dataclass(frozen=True)
class Layer:
    """One convolution or pooling layer with a square kernel.

    kind: one of :data:`KINDS`. kernel >= 1, stride >= 1, padding >= 0 (zeros for conv and
    avgpool, -inf for maxpool, as torch), dilation >= 1 (conv and maxpool; avgpool has none, so
    it must be 1). name: free text without whitespace, ";" or "=" ("" = unnamed).
    channels: output channels of a conv (None = unknown: no parameter count); groups: a conv's
    groups (depthwise: groups = channels = input channels). Both are ignored for pools.
    """

    kind: str
    kernel: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    name: str = ""
    channels: int | None = None
    groups: int = 1

    @property
    def effective_kernel(self) -> int:
        """Span of the (dilated) kernel in its input's pixels: dilation * (kernel - 1) + 1."""
        return self.dilation * (self.kernel - 1) + 1


# ---- validation ---------------------------------------------------------------------------------
def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _where(index: int, layer: Layer) -> dict[str, object]:
    """The place for messages, "layer 3 (conv3)": 1-based index and name (the kind when unnamed)."""
    name = layer.name if isinstance(layer.name, str) and layer.name else layer.kind
    return {"layer": index + 1, "name": name}


_NAME = re.compile(r"[^\s;=]*")


def _check_fields(where: dict[str, object], layer: Layer) -> None:
    """Each field on its own; relations between layers are :func:`_walk`'s."""
    if layer.kind not in KINDS:
        raise ReceptiveFieldError("kind", **where, kinds=", ".join(KINDS), value=layer.kind)
    for field, low in (("kernel", 1), ("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1)):
        value = getattr(layer, field)
        if not (_is_int(value) and value >= low):
            raise ReceptiveFieldError("integer_at_least", **where, field=field, low=low, value=value)
    if not (isinstance(layer.name, str) and _NAME.fullmatch(layer.name)):
        raise ReceptiveFieldError("name", **where, value=layer.name)
    if layer.channels is not None and not (_is_int(layer.channels) and layer.channels >= 1):
        raise ReceptiveFieldError("channels", **where, field="channels", value=layer.channels)
    if layer.kind == "avgpool" and layer.dilation != 1:
        raise ReceptiveFieldError("avgpool_dilation", **where, field="dilation", value=layer.dilation)
    if layer.kind != "conv" and layer.padding > layer.kernel // 2:
        raise ReceptiveFieldError("pool_padding", **where, field="padding", padding=layer.padding,
                                  kernel=layer.kernel, limit=layer.kernel // 2)


def _as_layers(layers: Iterable[Layer]) -> tuple[Layer, ...]:
    if isinstance(layers, (str, bytes)):
        raise ReceptiveFieldError("text_not_layers")
    layers = tuple(layers)
    if not layers:
        raise ReceptiveFieldError("no_layers")
    if len(layers) > MAX_LAYERS:
        raise ReceptiveFieldError("too_many_layers", limit=MAX_LAYERS, count=len(layers))
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise ReceptiveFieldError("not_a_layer", layer=i + 1, type=type(layer).__name__)
    return layers


def _check_size(name: str, value: object, optional: bool) -> None:
    if (value is None and optional) or (_is_int(value) and value >= 1):
        return
    raise ReceptiveFieldError("optional_size" if optional else "size", argument=name, value=value)


def validate(layers: Iterable[Layer], input_size: int | None = None, input_channels: int = 3) -> None:
    """Raise ValueError (a :class:`ReceptiveFieldError`, as every refusal here) for the first problem
    in the stack, in layer order; return None if none.

    Checks each field, avgpool's dilation and torch's pooling limit (padding <= kernel // 2);
    with channels known, that a conv's groups divide its input and output channels; with
    ``input_size``, that no kernel is larger than its padded input. Messages start with the
    place, e.g. "layer 3 (conv3): kernel must be an integer >= 1, got 0".
    """
    _walk(layers, input_size, input_channels)


# ---- the theoretical field ------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """The stack up to and including one layer.

    name, kind: the layer's (name "" when unnamed). rf: receptive field width in input pixels.
    jump: input pixels between adjacent units of this layer's output. start: input coordinate of
    the centre of the first output unit's field (a half-integer when rf is even). size: output
    width in units (torch floor semantics), None without an input size. params: weights + biases
    of a conv whose input and output channels are known, 0 for pools, None otherwise. formula:
    the recurrence with this layer's numbers.
    """

    name: str
    kind: str
    rf: int
    jump: int
    start: float
    size: int | None
    params: int | None
    formula: str


@dataclass(frozen=True)
class Table:
    """One :class:`Row` per layer, for an input of ``input_size`` pixels per side (None: any)."""

    rows: tuple[Row, ...]
    input_size: int | None

    @property
    def total_params(self) -> int | None:
        """Sum of the rows' parameter counts; None when a conv's count is unknown."""
        counts = [row.params for row in self.rows]
        return None if None in counts else sum(counts)


def _walk(layers: Iterable[Layer], input_size: int | None, input_channels: int) -> tuple[Row, ...]:
    layers = _as_layers(layers)
    plain = all(type(v) is int for v in (input_size or 0, input_channels)) and all(
        type(v) is int or (v is None and field == "channels")
        for layer in layers for field, v in (("kernel", layer.kernel), ("stride", layer.stride),
                                             ("padding", layer.padding), ("dilation", layer.dilation),
                                             ("channels", layer.channels), ("groups", layer.groups)))
    if plain:  # True == 1 as a cache key: only exact ints share cached rows (Layers are frozen)
        return _walk_cached(layers, input_size, input_channels)
    return _walk_checked(layers, input_size, input_channels)


@lru_cache(maxsize=64)
def _walk_cached(layers: tuple[Layer, ...], input_size: int | None, input_channels: int) -> tuple[Row, ...]:
    return _walk_checked(layers, input_size, input_channels)


def _walk_checked(layers: tuple[Layer, ...], input_size: int | None, input_channels: int) -> tuple[Row, ...]:
    _check_size("input_size", input_size, optional=True)
    _check_size("input_channels", input_channels, optional=False)
    rf, jump, start, size = 1, 1, 0.0, input_size
    channels: int | None = input_channels  # output channels of the last conv so far
    rows = []
    for i, layer in enumerate(layers):
        where = _where(i, layer)
        _check_fields(where, layer)
        k, s, p = int(layer.effective_kernel), int(layer.stride), int(layer.padding)
        params: int | None = 0
        if layer.kind == "conv":
            params = _conv_params(where, layer, channels)
            channels = layer.channels
        if size is not None:
            padded = size + 2 * p
            if padded < k:
                if layer.dilation > 1:
                    raise ReceptiveFieldError("dilated_kernel_too_large", **where, field="kernel", kernel=layer.kernel,
                                              dilated=k, padded=padded)
                raise ReceptiveFieldError("kernel_too_large", **where, field="kernel", kernel=layer.kernel, padded=padded)
            size = (padded - k) // s + 1
        formula = f"rf = {rf} + ({k} - 1) x {jump} = {rf + (k - 1) * jump}, jump = {jump} x {s} = {jump * s}"
        rf, jump, start = rf + (k - 1) * jump, jump * s, start + ((k - 1) / 2 - p) * jump
        rows.append(Row(layer.name, layer.kind, rf, jump, start, size, params, formula))
    return tuple(rows)


def _conv_params(where: dict[str, object], layer: Layer, in_channels: int | None) -> int | None:
    g, out = layer.groups, layer.channels
    if in_channels is not None and in_channels % g:
        raise ReceptiveFieldError("groups_input", **where, field="groups", groups=g, channels=in_channels)
    if out is not None and out % g:
        raise ReceptiveFieldError("groups_output", **where, field="groups", groups=g, channels=out)
    if in_channels is None or out is None:
        return None
    return layer.kernel * layer.kernel * (in_channels // g) * out + out


def receptive_field(layers: Iterable[Layer], input_size: int | None = None, input_channels: int = 3) -> Table:
    """The theoretical receptive field after each layer (see the module docstring).

    ``input_size`` (pixels per side) adds the output sizes and checks that every kernel fits;
    ``input_channels`` is the first conv's input (3: RGB) for the parameter counts. Raises
    ValueError as :func:`validate`.
    """
    return Table(_walk(layers, input_size, input_channels), input_size)


# ---- what one unit sees ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Region:
    """The input pixels one unit sees along one axis (the other is the same for a square input).

    first, last: the field's ends, before clipping (< 0 or >= input_size where it reaches into
    padding). clipped: (first, last) clipped to the image, 0 .. input_size - 1; empty (first >
    last) if the unit sees only padding. padding_pixels: how many of the rf pixels fall outside
    the image.
    """

    first: int
    last: int
    clipped: tuple[int, int]
    padding_pixels: int


def input_region(layers: Iterable[Layer], layer_index: int, unit: int, input_size: int) -> Region:
    """The input pixels that unit ``unit`` (0-based) of layer ``layer_index`` (0-based) sees,
    start + unit * jump -+ (rf - 1) / 2. Raises ValueError for a bad stack, a layer index outside
    the stack or a unit outside that layer's output."""
    _check_size("input_size", input_size, optional=False)
    rows = _walk(layers, input_size, 3)
    if not (_is_int(layer_index) and 0 <= layer_index < len(rows)):
        raise ReceptiveFieldError("layer_index", last=len(rows) - 1, value=layer_index)
    row = rows[layer_index]
    if not (_is_int(unit) and 0 <= unit < row.size):
        where = {"layer": layer_index + 1, "name": row.name or row.kind}
        if row.size == 1:
            raise ReceptiveFieldError("unit_of_one", **where, value=unit)
        raise ReceptiveFieldError("unit", **where, last=row.size - 1, size=row.size, value=unit)
    return _region(row, int(unit), input_size)


def _region(row: Row, unit: int, input_size: int) -> Region:
    first = round(row.start - (row.rf - 1) / 2) + unit * row.jump  # exact: an integer in half-integer arithmetic
    last = first + row.rf - 1
    low, high = max(first, 0), min(last, input_size - 1)
    return Region(first, last, (low, high), row.rf - max(high - low + 1, 0))


# ---- the effective field ----------------------------------------------------------------------------
@dataclass(frozen=True)
class EffectiveRF:
    """How strongly each input pixel moves one output unit (Luo et al., "Understanding the
    effective receptive field in deep convolutional neural networks", NeurIPS 2016).

    gradient: (input_size, input_size) |d out / d input| for the unit ``centre`` of the last
    layer, divided by its maximum (so max 1). std: (rows, cols) standard deviation in pixels of
    the gradient as a distribution over each axis (its marginal). fraction_95: the smallest set
    of pixels carrying 95% of the summed gradient, as a fraction of the theoretical field's area
    (rf x rf clipped to the image). centre: the output unit (row, col). theoretical: (first,
    last) pixel of that unit's theoretical field, unclipped, on either axis.
    """

    gradient: np.ndarray
    std: tuple[float, float]
    fraction_95: float
    centre: tuple[int, int]
    theoretical: tuple[int, int]


def effective_rf(layers: Iterable[Layer], input_size: int, weights: str = "uniform", relu: bool = False,
                 seed: int = 0) -> EffectiveRF:
    """The effective receptive field of the centre unit of the last layer: |d unit / d input|.

    The stack runs one channel per layer, float64, forward and backward exactly as torch autograd
    through ``conv2d(x, w, stride, padding, dilation)`` without bias and ``max_pool2d`` /
    ``avg_pool2d`` with the layer's parameters would (channels and groups do not apply). ``weights``:
    "uniform" = every conv weight 1 / k^2; "random" = uniform(0, 1) draws, seeded by ``seed``
    and the layer index, divided by their sum. Both are positive and sum to 1, so no paths cancel
    and every pixel of the theoretical field that some path reaches gets a non-zero gradient.
    ``relu`` puts a ReLU after each conv. ``seed`` (>= 0) draws the input and the random weights.

    Without ReLU the input (1, 1, input_size, input_size) is 1 + 0.01 uniform(0, 1), seeded: not
    constant, so that each max pool has one clear winner, to which its gradient goes (torch breaks
    ties by position). With ReLU a positive input would keep every pre-activation positive and
    ReLU would pass everything; so, as in Luo et al., the input is then zero-mean: a batch of
    RELU_SAMPLES seeded standard-normal images, and the gradient is the mean over them of
    |d centre / d input|. About half the units are switched off in each image, so the field gets
    sparser and less regular.

    The centre unit is ((size - 1) // 2, (size - 1) // 2) of the last output. Raises ValueError
    as :func:`validate`, for ``input_size`` beyond :data:`MAX_EFFECTIVE_INPUT` or a stack whose
    padded inputs add up to more than :data:`MAX_EFFECTIVE_ACTIVATIONS` values (64 MB), an
    unknown ``weights``, a bad ``seed``, or a centre unit that sees only padding.
    """
    _check_size("input_size", input_size, optional=False)
    if input_size > MAX_EFFECTIVE_INPUT:
        raise ReceptiveFieldError("effective_input_size", limit=MAX_EFFECTIVE_INPUT, value=input_size)
    if weights not in WEIGHTS:
        raise ReceptiveFieldError("weights", known=", ".join(WEIGHTS), value=weights)
    if not (_is_int(seed) and seed >= 0):
        raise ReceptiveFieldError("seed", value=seed)
    layers = _as_layers(layers)
    rows = _walk(layers, input_size, 3)
    sizes = (input_size,) + tuple(row.size for row in rows[:-1])
    activations = sum((size + 2 * layer.padding) ** 2 for layer, size in zip(layers, sizes))
    if activations > MAX_EFFECTIVE_ACTIVATIONS:
        raise ReceptiveFieldError("effective_too_large", value=input_size, count=activations,
                                  limit=MAX_EFFECTIVE_ACTIVATIONS)
    gradient = _gradient(layers, input_size, weights, bool(relu), seed, rows[-1].size, activations)
    total = gradient.sum()
    if total == 0:
        raise ReceptiveFieldError("only_padding")
    centre = (rows[-1].size - 1) // 2
    region = _region(rows[-1], centre, input_size)
    low, high = region.clipped
    return EffectiveRF(gradient / gradient.max(), (_axis_std(gradient, 0), _axis_std(gradient, 1)),
                       _smallest_share(gradient, 0.95) / (high - low + 1) ** 2, (centre, centre),
                       (region.first, region.last))


RELU_SAMPLES = 8  # zero-mean input images averaged over when ReLUs gate the paths


def _kernel(layer: Layer, weights: str, seed: int, index: int) -> np.ndarray:
    k = layer.kernel
    if weights == "uniform":
        return np.full((1, 1, k, k), 1.0 / (k * k))
    w = np.random.default_rng([seed, 1 + index]).uniform(0.0, 1.0, (1, 1, k, k))
    return w / w.sum()


def _gradient(layers: tuple[Layer, ...], input_size: int, weights: str, relu: bool, seed: int,
              out_size: int, per_image: int) -> np.ndarray:
    """|d centre / d input| (input_size, input_size), averaged over the input images: the stack
    run forward and backward here in numpy, operation by operation as torch's conv2d (zero
    padding), max_pool2d (-inf padding, the first maximum in the window wins, as torch's CPU
    kernel), avg_pool2d (count_include_pad) and relu (slope 0 at 0) do it; the tests check it
    against torch autograd through torch.nn layers. The images go through in groups whose padded
    inputs (``per_image`` values each) stay within MAX_EFFECTIVE_ACTIVATIONS: what the backward
    pass keeps is bounded whatever the number of images."""
    rng = np.random.default_rng([seed, 0])
    if relu:
        x = rng.standard_normal((RELU_SAMPLES, input_size, input_size))
    else:
        x = 1.0 + _INPUT_NOISE * rng.uniform(0.0, 1.0, (1, input_size, input_size))
    group = max(1, MAX_EFFECTIVE_ACTIVATIONS // per_image)
    total = np.zeros((input_size, input_size))
    for start in range(0, len(x), group):
        total += np.abs(_backpropagate(layers, x[start: start + group], weights, relu, seed, out_size)).sum(axis=0)
    return total / len(x)


def _backpropagate(layers: tuple[Layer, ...], x: np.ndarray, weights: str, relu: bool, seed: int,
                   out_size: int) -> np.ndarray:
    """d centre / d x for the images x (batch, n, n), each on its own: (batch, n, n)."""
    tape = []
    for i, layer in enumerate(layers):
        x, backward = _forward(layer, x, _kernel(layer, weights, seed, i)[0, 0] if layer.kind == "conv" else None)
        tape.append(backward)
        if relu and layer.kind == "conv":
            active = x > 0
            x = np.where(active, x, 0.0)
            tape.append(lambda g, active=active: np.where(active, g, 0.0))
    c = (out_size - 1) // 2
    g = np.zeros_like(x)
    g[:, c, c] = 1.0  # the images are independent: one gradient each
    for backward in reversed(tape):
        g = backward(g)
    return g


def _windows(size: int, layer: Layer) -> tuple[int, int, int, int]:
    """(output size, stride, padding, dilation) of ``layer`` on a ``size`` x ``size`` input."""
    s, p, d = layer.stride, layer.padding, layer.dilation
    return (size + 2 * p - (d * (layer.kernel - 1) + 1)) // s + 1, s, p, d


def _forward(layer: Layer, x: np.ndarray, w: np.ndarray | None):
    """One layer on x (batch, n, n): (output, backward) where backward maps the gradient of the
    output to the gradient of x."""
    n = x.shape[-1]
    out, s, p, d = _windows(n, layer)
    k = layer.kernel
    fill = -np.inf if layer.kind == "maxpool" else 0.0
    padded = np.full((x.shape[0], n + 2 * p, n + 2 * p), fill)
    padded[:, p: p + n, p: p + n] = x
    span = s * (out - 1) + 1

    def view(a: int, b: int) -> tuple[slice, slice, slice]:
        return slice(None), slice(a * d, a * d + span, s), slice(b * d, b * d + span, s)

    offsets = [(a, b) for a in range(k) for b in range(k)]  # row-major, as torch scans a window
    if layer.kind == "maxpool":
        y = np.full((x.shape[0], out, out), -np.inf)
        winner = np.zeros(y.shape, dtype=np.intp)
        for index, (a, b) in enumerate(offsets):
            values = padded[view(a, b)]
            better = values > y  # strictly: the first maximum keeps the gradient
            y = np.where(better, values, y)
            winner = np.where(better, index, winner)

        def backward(g: np.ndarray) -> np.ndarray:
            grad = np.zeros(padded.shape)
            for index, (a, b) in enumerate(offsets):
                grad[view(a, b)] += np.where(winner == index, g, 0.0)
            return grad[:, p: p + n, p: p + n]
        return y, backward
    weights = w if layer.kind == "conv" else np.full((k, k), 1.0 / (k * k))  # avg_pool2d divides by k^2
    y = np.zeros((x.shape[0], out, out))
    for a, b in offsets:
        y += weights[a, b] * padded[view(a, b)]

    def backward(g: np.ndarray) -> np.ndarray:
        grad = np.zeros(padded.shape)
        for a, b in offsets:
            grad[view(a, b)] += weights[a, b] * g
        return grad[:, p: p + n, p: p + n]
    return y, backward


def _axis_std(g: np.ndarray, axis: int) -> float:
    """Standard deviation (pixels) of the marginal of g (non-negative, not all 0) along ``axis``."""
    marginal = g.sum(axis=1 - axis)
    position = np.arange(marginal.size, dtype=np.float64)
    mean = marginal @ position / marginal.sum()
    return float(math.sqrt(marginal @ (position - mean) ** 2 / marginal.sum()))


def _smallest_share(g: np.ndarray, share: float) -> int:
    """How many of the largest entries of g it takes to reach ``share`` of its sum."""
    cumulative = np.cumsum(np.sort(g, axis=None)[::-1])
    return int(np.searchsorted(cumulative, share * cumulative[-1], side="left")) + 1


@lru_cache(maxsize=8)
def stacked_convs(n_max: int = 20, input_size: int = 129) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For n = 1 .. n_max stacked 3x3 convs (stride 1, padding 1, uniform weights): (n, the
    theoretical field 2n + 1, the effective field's standard deviation in pixels), each (n_max,).

    The effective field is the n-fold convolution of a 3x3 box, so its std is sqrt(2n / 3) (the
    sum of n uniform{-1, 0, 1}) while the theoretical field grows as 2n + 1: the effective field
    shrinks relative to it as 1 / sqrt(n) (it is exact while 2n + 1 <= input_size). Cached;
    read-only.
    """
    if not (_is_int(n_max) and 1 <= n_max <= MAX_LAYERS):
        raise ReceptiveFieldError("n_max", limit=MAX_LAYERS, value=n_max)
    n = np.arange(1, n_max + 1)
    conv = Layer("conv", 3, padding=1)
    std = np.array([np.mean(effective_rf((conv,) * int(depth), input_size).std) for depth in n])
    rf = 2 * n + 1
    for array in (n, rf, std):
        array.setflags(write=False)
    return n, rf, std


# ---- text form ------------------------------------------------------------------------------------
_KEYS = {"k": "kernel", "s": "stride", "p": "padding", "d": "dilation", "c": "channels", "g": "groups"}
_DEFAULTS = {"stride": 1, "padding": 0, "dilation": 1, "channels": None, "groups": 1}
_INTEGER = re.compile(r"[+-]?[0-9]+")


@lru_cache(maxsize=64)
def parse_layers(text: str) -> tuple[Layer, ...]:
    """Layers from their text form (module docstring). Whitespace is free around words, "=" and
    ";", a trailing ";" is allowed, kinds and keys ignore case. Raises ValueError naming the layer
    (1-based index and name) and the field for empty text or layers, unknown kinds or keys,
    non-integers, a missing kernel, a field given twice, and anything :func:`validate` refuses
    (without an input size)."""
    if not isinstance(text, str):
        raise ReceptiveFieldError("not_text", type=type(text).__name__)
    if not text.strip():
        raise ReceptiveFieldError("empty_text")
    segments = text.split(";")
    if len(segments) > 1 and not segments[-1].strip():
        segments.pop()
    if len(segments) > MAX_LAYERS:
        raise ReceptiveFieldError("too_many_layers", limit=MAX_LAYERS, count=len(segments))
    layers = []
    for i, segment in enumerate(segments):
        layer = _parse_layer(i, segment)
        _check_fields(_where(i, layer), layer)
        layers.append(layer)
    validate(layers)
    return tuple(layers)


def _parse_layer(index: int, segment: str) -> Layer:
    words = re.sub(r"\s*=\s*", "=", segment.strip()).split()
    if not words:
        raise ReceptiveFieldError("empty_layer", layer=index + 1)
    kind, pairs = words[0].lower(), [w.partition("=") for w in words[1:]]
    names = [value for key, _, value in pairs if key.lower() == "name"]
    where = {"layer": index + 1, "name": names[0] if names and names[0] else kind}
    if "=" in kind:
        raise ReceptiveFieldError("kind_first", **where, kinds=", ".join(KINDS), value=words[0])
    fields: dict[str, object] = {}
    for key, equals, value in pairs:
        field = "name" if key.lower() == "name" else _KEYS.get(key.lower())
        if not equals:
            raise ReceptiveFieldError("not_key_value", **where, key=key)
        if field is None:
            raise ReceptiveFieldError("unknown_key", **where, key=key, known=", ".join(_KEYS))
        if field in fields:
            raise ReceptiveFieldError("given_twice", **where, field=field)
        if field != "name" and not _INTEGER.fullmatch(value):
            raise ReceptiveFieldError("not_an_integer", **where, field=field, value=value)
        fields[field] = value if field == "name" else int(value)
    if "kernel" not in fields:
        raise ReceptiveFieldError("no_kernel", **where, field="kernel")
    return Layer(kind, **fields)


def format_layers(layers: Iterable[Layer]) -> str:
    """The text form: ``parse_layers(format_layers(x)) == x``. Raises ValueError as :func:`validate`."""
    layers = _as_layers(layers)
    validate(layers)
    return "; ".join(_format_layer(layer) for layer in layers)


def _format_layer(layer: Layer) -> str:
    words = [layer.kind, f"k={layer.kernel}"]
    for key, field in _KEYS.items():
        value = getattr(layer, field)
        if field != "kernel" and value != _DEFAULTS[field]:
            words.append(f"{key}={value}")
    if layer.name:
        words.append(f"name={layer.name}")
    return " ".join(words)


# ---- presets --------------------------------------------------------------------------------------
def _conv(name: str, kernel: int, channels: int, stride: int = 1, padding: int | None = None, dilation: int = 1,
          groups: int = 1) -> Layer:
    """A conv; padding None = "same" for stride 1, dilation * (kernel - 1) // 2."""
    padding = dilation * (kernel - 1) // 2 if padding is None else padding
    return Layer("conv", kernel, stride, padding, dilation, name, channels, groups)


def _vgg16() -> tuple[Layer, ...]:
    layers = []
    for stage, (convs, channels) in enumerate(((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)), start=1):
        layers += [_conv(f"conv{stage}_{i}", 3, channels) for i in range(1, convs + 1)]
        layers.append(Layer("maxpool", 2, 2, name=f"pool{stage}"))
    return tuple(layers)


def _resnet50(stride_on_3x3: bool) -> tuple[Layer, ...]:
    """Main path only: a shortcut adds its input to the block's output unit by unit, so it never
    widens the field (the main path's field contains the shortcut's)."""
    layers = [_conv("conv1", 7, 64, stride=2, padding=3), Layer("maxpool", 3, 2, 1, name="pool1")]
    for stage, (blocks, width) in enumerate(((3, 64), (4, 128), (6, 256), (3, 512)), start=2):
        for block in range(blocks):
            stride = 2 if stage > 2 and block == 0 else 1
            prefix = f"res{stage}{'abcdef'[block]}_branch2"
            layers += [_conv(prefix + "a", 1, width, stride=1 if stride_on_3x3 else stride),
                       _conv(prefix + "b", 3, width, stride=stride if stride_on_3x3 else 1, padding=1),
                       _conv(prefix + "c", 1, 4 * width)]
    return tuple(layers)


def _mobilenet_v1() -> tuple[Layer, ...]:
    """Howard et al. 2017, Table 1. Its last depthwise conv is listed with stride 2, but its
    input and output are both 7x7: stride 1, as every implementation has it."""
    layers = [_conv("conv1", 3, 32, stride=2, padding=1)]
    channels = 32
    blocks = ((1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512)) + ((1, 512),) * 5 + ((2, 1024), (1, 1024))
    for i, (stride, out) in enumerate(blocks, start=1):
        layers += [_conv(f"conv_dw{i}", 3, channels, stride=stride, padding=1, groups=channels),
                   _conv(f"conv_pw{i}", 1, out)]
        channels = out
    return tuple(layers)


PRESETS: Mapping[str, tuple[Layer, ...]] = MappingProxyType({
    # torchvision's alexnet features
    "alexnet": (_conv("conv1", 11, 64, stride=4, padding=2), Layer("maxpool", 3, 2, name="pool1"),
                _conv("conv2", 5, 192), Layer("maxpool", 3, 2, name="pool2"),
                _conv("conv3", 3, 384), _conv("conv4", 3, 256), _conv("conv5", 3, 256),
                Layer("maxpool", 3, 2, name="pool5")),
    "vgg16": _vgg16(),
    # v1 (He et al. 2015, Caffe): the stride of a stage's first block on its first 1x1 conv
    "resnet50_v1": _resnet50(stride_on_3x3=False),
    # v1.5 (torchvision): on the 3x3 conv, which then sees every pixel; a larger jump comes later
    "resnet50_v1_5": _resnet50(stride_on_3x3=True),
    "mobilenet_v1": _mobilenet_v1(),
    # Yu & Koltun's context module: the field doubles with each layer
    "dilated": tuple(_conv(f"conv_d{d}", 3, 64, dilation=d) for d in (1, 2, 4, 8)),
})
"""Well-known stacks by name. Only the layers that shape the field: no activations,
normalisation, fully connected layers or shortcuts (a residual shortcut adds its input unit by
unit and never widens the field). Channels and groups are the real ones, for parameter counts."""

PRESET_LABELS: Mapping[str, str] = MappingProxyType({
    "alexnet": "AlexNet",
    "vgg16": "VGG-16",
    "resnet50_v1": "ResNet-50 v1",
    "resnet50_v1_5": "ResNet-50 v1.5",
    "mobilenet_v1": "MobileNet v1",
    "dilated": "Dilated 3x3 stack (1, 2, 4, 8)",
})


def preset(name: str) -> tuple[Layer, ...]:
    """The preset stack ``name``; ValueError naming the known ones otherwise."""
    if not isinstance(name, str) or name not in PRESETS:
        raise ReceptiveFieldError("unknown_preset", value=name, known=", ".join(PRESETS))
    return PRESETS[name]
