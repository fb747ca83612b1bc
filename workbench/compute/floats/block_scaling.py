"""A whole tensor in low precision: per-tensor, per-row, per-block and per-tile scaling.

:func:`quantize` stores a tensor as elements of a small format times shared scales, one per
tensor, row, block (``block_size`` values along ``axis``) or tile (``block_size`` x
``block_size`` over the last two axes); :func:`quantize_recipe` applies the recipes used in
practice (``RECIPES``): OCP Microscaling MXFP8 / MXFP6 / MXFP4, NVIDIA's NVFP4, FP8 with one
scale per tensor (current or delayed scaling) and DeepSeek-V3's fine-grained FP8.

How a scale is chosen (``amax`` is the largest |value| of the block, row, tile or tensor):

* ``scale_format="e8m0"`` (OCP MX v1.0): ``X = 2^(floor(log2(amax)) - emax)``, emax the
  exponent of the element format's largest normal (E4M3 8, E5M2 15, E2M3 2, E3M2 4, E2M1 2), so
  the largest value lands in the element's top binade.  X below 2^-127 is clamped to 2^-127
  (the block's small values then flush to zero); above 2^127 the scale overflows to NaN and so
  does the block, as in the MX reference implementation (microsoft/microxcaling).  An all-zero
  block gets X = 2^-127 (and stores zeros).
* any other scale format (``"fp8_e4m3"`` for NVFP4, ``"fp32"`` for per-tensor FP8 and
  DeepSeek-V3): ``s = amax / max_element`` rounded to nearest even in that format (E4M3
  saturates at 448, as torch casts).  A scale that rounds to 0 flushes its whole block to
  zero; one that overflows (inf) makes the block NaN.  An all-zero block gets s = 0 (and
  stores zeros).

Elements: ``v / scale`` rounded to nearest even and clamped to the element's largest finite
value (the MX spec's saturating conversion); ``dequantized = element * scale``.

NaN and +-inf are values, not errors: a block (row, tile, tensor) holding one has no finite
amax, so its scale is NaN and the whole block dequantizes to NaN, as in the MX reference and as
torch's ``amax``-based FP8 scaling gives (448 / inf = 0, 0 / 0 = NaN).  Delayed scaling
(``quantize_recipe(..., "fp8_tensor", amax_history=...)``) takes its scale from earlier steps,
so there a NaN stays NaN and +-inf saturates to +-448 x scale, element by element.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import numpy as np

from .codec import _codes, encode_array, round_to_format
from .formats import E8M0, FORMATS, FloatFormat

__all__ = ["SCALINGS", "QuantStats", "Quantized", "quantize", "Recipe", "RECIPES", "quantize_recipe",
           "parse_tensor", "TensorTextError", "TENSOR_TEXT_ERRORS", "TENSOR_KINDS", "example_tensor",
           "MAX_TENSOR_VALUES", "ROLES"]

#: Granularities of :func:`quantize`.
SCALINGS = ("tensor", "row", "block", "tile")
#: Kinds of :func:`example_tensor`.
TENSOR_KINDS = ("gaussian", "heavy_tailed", "outliers", "activation")
MAX_TENSOR_VALUES = 1 << 24
MAX_BLOCK_SIZE = 1 << 16
_MX_SCALE_EXPONENTS = (-127, 127)


@dataclass(frozen=True)
class QuantStats:
    """Summary of one quantization (shares are fractions in [0, 1]; None where undefined).

    ``sqnr_db``: 10 log10(sum v^2 / sum (q - v)^2) over the finite inputs that came out finite
    (+inf when they are stored exactly; None without a non-zero one); ``mean_rel_error`` /
    ``max_rel_error``: |q - v| / |v| over those with v != 0; ``flushed``: share of the non-zero
    finite inputs stored as 0; ``saturated``: share of the finite inputs that the clamp to the
    element's largest value changed (scaled beyond it by more than rounding would absorb); ``nan``: share of all values that came out NaN
    (NaN inputs and whole NaN blocks); ``bits_per_value``: element bits plus every scale's bits
    (and the tensor scale's) spread over the n values; ``nan_blocks``, ``clamped_scales``
    (MX scales raised to 2^-127) and ``zero_scales`` (scales that rounded to 0 though their
    block was not all zero) count blocks (rows, tiles).
    """

    n: int
    finite: int
    sqnr_db: float | None
    mean_rel_error: float | None
    max_rel_error: float | None
    flushed: float
    saturated: float
    nan: float
    bits_per_value: float
    nan_blocks: int
    clamped_scales: int
    zero_scales: int


@dataclass(frozen=True, eq=False)
class Quantized:
    """The result of :func:`quantize` / :func:`quantize_recipe` (arrays read-only, float64 unless said).

    ``values``: the input (shape S, at least 1-D); ``dequantized``: ``element * scale`` (shape S);
    ``codes``: the elements' bit patterns in ``element`` (int64, shape S; in a block whose scale
    is NaN they are the element's NaN pattern, or 0 where it has none: the scale carries the
    NaN); ``error``: ``dequantized - values`` (shape S; NaN where either is not finite);
    ``scales``: one decoded scale per block, row, tile or tensor, with S's number of axes: the
    scaled axis (or the last two for tiles) holds one entry per block, the others keep their
    length (per row: the scaled axis has length 1; per tensor every axis does);
    ``scale_codes``: their bit patterns in ``scale_format`` (int64); ``element_scale``: the
    factor each element was multiplied by (block scale times ``tensor_scale``, shape S);
    ``tensor_scale``: NVFP4's second-level FP32 scale (1.0 in the other recipes);
    ``amax_used``: the amax a delayed per-tensor scale was taken from (None otherwise).
    """

    values: np.ndarray
    dequantized: np.ndarray
    codes: np.ndarray
    error: np.ndarray
    scales: np.ndarray
    scale_codes: np.ndarray
    element_scale: np.ndarray
    element: FloatFormat
    scale_format: FloatFormat
    scaling: str
    block_size: tuple[int, int]
    axis: int
    tensor_scale: float
    amax_used: float | None
    stats: QuantStats
    recipe: str | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.values.shape


@dataclass(frozen=True)
class Recipe:
    """A quantization recipe: element format, granularity, scale format, and NVFP4's tensor scale."""

    name: str
    label: str
    element: FloatFormat
    scaling: str
    block_size: int
    scale_format: FloatFormat
    tensor_scale: bool
    en: str
    zh: str


def _recipe(name, label, element, scaling, block_size, scale_format, en, zh, tensor_scale=False) -> Recipe:
    return Recipe(name, label, FORMATS[element], scaling, block_size, FORMATS[scale_format], tensor_scale, en, zh)


#: The recipes by name.
RECIPES: Mapping[str, Recipe] = MappingProxyType({r.name: r for r in (
    _recipe("mxfp8_e4m3", "MXFP8 (E4M3)", "fp8_e4m3", "block", 32, "e8m0",
            "OCP MX: 32 FP8 E4M3 values share one E8M0 power-of-two scale (8.25 bits per value)",
            "OCP MX：32 个 FP8 E4M3 值共享一个 E8M0（2 的幂）缩放因子（每值 8.25 位）"),
    _recipe("mxfp8_e5m2", "MXFP8 (E5M2)", "fp8_e5m2", "block", 32, "e8m0",
            "OCP MX: 32 FP8 E5M2 values share one E8M0 scale (8.25 bits per value)",
            "OCP MX：32 个 FP8 E5M2 值共享一个 E8M0 缩放因子（每值 8.25 位）"),
    _recipe("mxfp6_e2m3", "MXFP6 (E2M3)", "fp6_e2m3", "block", 32, "e8m0",
            "OCP MX: 32 FP6 E2M3 values share one E8M0 scale (6.25 bits per value)",
            "OCP MX：32 个 FP6 E2M3 值共享一个 E8M0 缩放因子（每值 6.25 位）"),
    _recipe("mxfp6_e3m2", "MXFP6 (E3M2)", "fp6_e3m2", "block", 32, "e8m0",
            "OCP MX: 32 FP6 E3M2 values share one E8M0 scale (6.25 bits per value)",
            "OCP MX：32 个 FP6 E3M2 值共享一个 E8M0 缩放因子（每值 6.25 位）"),
    _recipe("mxfp4", "MXFP4", "fp4_e2m1", "block", 32, "e8m0",
            "OCP MX: 32 FP4 E2M1 values share one E8M0 scale (4.25 bits per value)",
            "OCP MX：32 个 FP4 E2M1 值共享一个 E8M0 缩放因子（每值 4.25 位）"),
    _recipe("nvfp4", "NVFP4", "fp4_e2m1", "block", 16, "fp8_e4m3",
            "NVIDIA NVFP4: 16 FP4 E2M1 values share an FP8 E4M3 scale (max|v| / 6), times one FP32 scale "
            "per tensor (max|tensor| / (448 x 6)): 4.5 bits per value plus the tensor scale",
            "NVIDIA NVFP4：16 个 FP4 E2M1 值共享一个 FP8 E4M3 缩放因子（max|v| / 6），再乘上整个张量的一个 FP32 "
            "缩放因子（max|张量| / (448 × 6)）：每值 4.5 位，另加张量缩放因子", tensor_scale=True),
    _recipe("fp8_tensor", "FP8 per tensor", "fp8_e4m3", "tensor", 1, "fp32",
            "FP8 E4M3 with one FP32 scale per tensor, max|v| / 448 (current scaling), or from the amax "
            "history of earlier steps (delayed scaling, TransformerEngine)",
            "FP8 E4M3，整个张量一个 FP32 缩放因子 max|v| / 448（即时缩放），或取自之前若干步的 amax 历史"
            "（延迟缩放，TransformerEngine）"),
    _recipe("deepseek_fp8", "DeepSeek-V3 FP8", "fp8_e4m3", "block", 128, "fp32",
            "DeepSeek-V3: FP8 E4M3 with an FP32 scale per 1 x 128 tile of activations and per 128 x 128 "
            "block of weights",
            "DeepSeek-V3：FP8 E4M3，激活每 1 × 128 一个 FP32 缩放因子，权重每 128 × 128 块一个"),
)})


# ---------------------------------------------------------------- validation


def _as_format(name: str, value: Any) -> FloatFormat:
    if isinstance(value, FloatFormat):
        return value
    if isinstance(value, str) and value in FORMATS:
        return FORMATS[value]
    raise ValueError(f"{name}: unknown format {value!r}; expected a FloatFormat or one of {', '.join(FORMATS)}")


def _as_tensor(values: Any) -> np.ndarray:
    if isinstance(values, (str, bytes)):
        raise ValueError("values: text is not a tensor (parse_tensor reads typed numbers)")
    try:
        array = np.asarray(values)
    except (ValueError, TypeError) as error:
        raise ValueError(f"values: not a tensor of numbers ({error})") from None
    if array.dtype.kind not in "iuf":
        raise ValueError(f"values: expected real numbers, got {array.dtype} elements")
    if array.size == 0:
        raise ValueError("values: empty tensor")
    if array.size > MAX_TENSOR_VALUES:
        raise ValueError(f"values: at most {MAX_TENSOR_VALUES} values, got {array.size}")
    array = np.array(array, dtype=np.float64)
    return array.reshape(1) if array.ndim == 0 else array


def _positive_int(name: str, value: Any, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 1 <= value <= hi:
        raise ValueError(f"{name} must be a positive integer up to {hi}, got {value!r}")
    return int(value)


def _block_shape(block_size: Any, scaling: str) -> tuple[int, int]:
    if scaling == "tile" and isinstance(block_size, (tuple, list)):
        if len(block_size) != 2:
            raise ValueError(f"block_size: a tile is (rows, columns), got {block_size!r}")
        return (_positive_int("block_size", block_size[0], MAX_BLOCK_SIZE),
                _positive_int("block_size", block_size[1], MAX_BLOCK_SIZE))
    size = _positive_int("block_size", block_size, MAX_BLOCK_SIZE)
    return (size, size) if scaling == "tile" else (1, size)


def _check_element(element: FloatFormat) -> FloatFormat:
    if not element.signed or not element.has_zero:
        raise ValueError(f"element: {element.name} has no sign or no zero, so it cannot hold tensor elements")
    return element


def _check_scale_format(scale_format: FloatFormat) -> FloatFormat:
    if scale_format != E8M0 and (not scale_format.signed or not scale_format.has_zero):
        raise ValueError(f"scale_format: {scale_format.name} cannot hold a scale (e8m0 or a signed format with zero)")
    return scale_format


# ---------------------------------------------------------------- grouping


def _groups(x: np.ndarray, scaling: str, block: tuple[int, int], axis: int) -> tuple[np.ndarray, tuple, tuple]:
    """Reshape ``x`` (already moved so the scaled axes are last) into (..., groups..., members) form.

    Returns (grouped array of shape ``lead + grid + (members,)``, grid shape, padded shape)."""
    if scaling == "tensor":
        return x.reshape((1, x.size)), (1,), x.shape
    if scaling == "row":
        return x.reshape(x.shape + (1,)).reshape(x.shape[:-1] + (1, x.shape[-1])), x.shape[:-1] + (1,), x.shape
    if scaling == "block":
        n, size = x.shape[-1], block[1]
        count = -(-n // size)
        padded = np.zeros(x.shape[:-1] + (count * size,))
        padded[..., :n] = x
        return padded.reshape(x.shape[:-1] + (count, size)), x.shape[:-1] + (count,), padded.shape
    rows, cols = x.shape[-2], x.shape[-1]
    br, bc = block
    tr, tc = -(-rows // br), -(-cols // bc)
    padded = np.zeros(x.shape[:-2] + (tr * br, tc * bc))
    padded[..., :rows, :cols] = x
    grouped = padded.reshape(x.shape[:-2] + (tr, br, tc, bc)).swapaxes(-3, -2)
    return grouped.reshape(x.shape[:-2] + (tr, tc, br * bc)), x.shape[:-2] + (tr, tc), padded.shape


def _ungroup(per_group: np.ndarray, grouped_shape: tuple, scaling: str, block: tuple[int, int],
             moved_shape: tuple) -> np.ndarray:
    """Broadcast one value per group back to every element of the moved-axis tensor."""
    full = np.broadcast_to(per_group[..., None], grouped_shape)
    if scaling == "tensor":
        return full.reshape(moved_shape)
    if scaling == "row":
        return full.reshape(moved_shape)
    if scaling == "block":
        return full.reshape(moved_shape[:-1] + (-1,))[..., :moved_shape[-1]]
    br, bc = block
    tr, tc = grouped_shape[-3], grouped_shape[-2]
    tiles = full.reshape(grouped_shape[:-1] + (br, bc)).swapaxes(-3, -2)
    return tiles.reshape(grouped_shape[:-3] + (tr * br, tc * bc))[..., :moved_shape[-2], :moved_shape[-1]]


# ---------------------------------------------------------------- the scales


def _mx_scales(amax: np.ndarray, element: FloatFormat) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scales, E8M0 codes, clamped mask) for block maxima: 2^(floor(log2 amax) - emax), clamped below."""
    finite = np.isfinite(amax)
    with np.errstate(divide="ignore", invalid="ignore"):
        _, frexp_exponent = np.frexp(np.where(finite & (amax > 0), amax, 1.0))
    exponent = frexp_exponent.astype(np.int64) - 1 - element.max_exponent
    lo, hi = _MX_SCALE_EXPONENTS
    zero = finite & (amax == 0)
    clamped = finite & ~zero & (exponent < lo)
    exponent = np.where(zero, lo, np.maximum(exponent, lo))
    nan = ~finite | (exponent > hi)
    scales = np.ldexp(1.0, np.clip(exponent, lo, hi))
    scales[nan] = np.nan
    codes = np.where(nan, E8M0.nan_bits, np.clip(exponent, lo, hi) + E8M0.bias).astype(np.int64)
    return scales, codes, clamped


def _rounded_scales(raw: np.ndarray, scale_format: FloatFormat) -> tuple[np.ndarray, np.ndarray]:
    """(scales, codes): raw scales rounded to nearest even in the scale format (a saturating format
    clamps, an IEEE one overflows to inf); NaN where the raw scale or the rounded one is not finite."""
    finite = np.isfinite(raw)
    scales = round_to_format(np.where(finite, raw, 0.0), scale_format)
    scales[~finite | ~np.isfinite(scales)] = np.nan
    codes = encode_array(scales, scale_format)
    return scales, codes


# ---------------------------------------------------------------- quantize


def quantize(values: Any, element: FloatFormat | str, *, scaling: str = "block", block_size: int | tuple[int, int] = 32,
             scale_format: FloatFormat | str = "e8m0", axis: int = -1) -> Quantized:
    """Quantize a tensor to ``element`` values times shared scales (see the module doc for the rules).

    ``values``: real numbers of any shape (a scalar is shape (1,)); NaN and +-inf allowed.
    ``element``: the element format (a FloatFormat or a ``FORMATS`` name, signed, with zero).
    ``scaling``: ``"tensor"`` (one scale), ``"row"`` (one per slice along ``axis``: per
    channel), ``"block"`` (1-D blocks of ``block_size`` values along ``axis``; a length that is
    not a multiple leaves a shorter last block, as padding with zeros would) or ``"tile"``
    (``block_size`` x ``block_size`` tiles over the last two axes, or ``(rows, cols)``; a 1-D
    tensor is one row).  ``scale_format``: ``"e8m0"`` (MX power-of-two scales) or the format
    the scale ``amax / max_element`` is rounded to (``"fp8_e4m3"``, ``"fp32"``, ...).
    ``axis``: the axis rows and blocks run along.  ValueError names the bad parameter.
    """
    element = _check_element(_as_format("element", element))
    scale_format = _check_scale_format(_as_format("scale_format", scale_format))
    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {', '.join(SCALINGS)}, got {scaling!r}")
    block = _block_shape(block_size, scaling)
    x = _as_tensor(values)
    axis = _check_axis(axis, x.ndim)
    return _quantize(x, element, scaling, block, scale_format, axis)


def _check_axis(axis: Any, ndim: int) -> int:
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral) or not -ndim <= axis < ndim:
        raise ValueError(f"axis must be an integer in {-ndim}..{ndim - 1} for a {ndim}-D tensor, got {axis!r}")
    return int(axis) % ndim


def _quantize(x: np.ndarray, element: FloatFormat, scaling: str, block: tuple[int, int], scale_format: FloatFormat,
              axis: int, *, tensor_scale: bool = False, amax_history: Sequence[float] | None = None,
              recipe: str | None = None) -> Quantized:
    original_shape = x.shape
    if scaling == "tile":
        moved = x.reshape((1,) + x.shape) if x.ndim == 1 else x
    else:
        moved = np.moveaxis(x, axis, -1)
    grouped, grid, _ = _groups(moved, scaling, block, axis)
    magnitudes = np.abs(grouped)
    with np.errstate(invalid="ignore"):
        amax = magnitudes.max(axis=-1)  # NaN or inf where the group holds one
    finite_x = x[np.isfinite(x)]
    t_scale = 1.0
    amax_used = None
    if tensor_scale:  # NVFP4: the FP32 tensor scale maps the tensor's amax to 448 x 6
        tensor_amax = float(np.abs(finite_x).max()) if finite_x.size else 0.0
        t_scale = _fp32(tensor_amax / (scale_format.max_value * element.max_value)) if tensor_amax > 0 else 1.0
        if t_scale == 0 or not math.isfinite(t_scale):
            t_scale = 1.0
    clamped = np.zeros(amax.shape, bool)
    if amax_history is not None:  # delayed scaling: the scale comes from earlier steps, not from this tensor
        amax_used = max(amax_history)
        amax = np.full(amax.shape, amax_used)
    if scale_format == E8M0:
        scales, scale_codes, clamped = _mx_scales(amax, element)
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            scales, scale_codes = _rounded_scales(amax / element.max_value / t_scale, scale_format)
    zero_scales = int(np.count_nonzero((scales == 0) & (amax > 0)))
    per_element = _ungroup(scales, grouped.shape, scaling, block, moved.shape)
    if scaling == "tile":
        per_element = per_element.reshape(original_shape)
        scales_out, codes_out = scales, scale_codes
        if x.ndim == 1:
            scales_out, codes_out = scales.reshape(scales.shape[-1:]), scale_codes.reshape(scale_codes.shape[-1:])
    elif scaling == "tensor":
        per_element = per_element.reshape(original_shape)
        scales_out, codes_out = scales.reshape((1,) * x.ndim), scale_codes.reshape((1,) * x.ndim)
    else:
        per_element = np.moveaxis(per_element, -1, axis)
        scales_out, codes_out = np.moveaxis(scales, -1, axis), np.moveaxis(scale_codes, -1, axis)
    element_scale = per_element * t_scale
    dequantized, codes, saturated = _elements(x, element_scale, element)
    with np.errstate(invalid="ignore", over="ignore"):
        error = dequantized - x
    scale_bits = scale_format.total_bits * scales.size + (32 if tensor_scale else 0)
    bits = (x.size * element.total_bits + scale_bits) / x.size
    stats = _stats(x, dequantized, saturated, bits, nan_blocks=int(np.count_nonzero(np.isnan(scales))),
                   clamped=int(np.count_nonzero(clamped)), zero_scales=zero_scales)
    arrays = [x, dequantized, codes, error, np.ascontiguousarray(scales_out), np.ascontiguousarray(codes_out),
              np.ascontiguousarray(element_scale)]
    for array in arrays:
        array.setflags(write=False)
    return Quantized(*arrays, element=element, scale_format=scale_format, scaling=scaling, block_size=block,
                     axis=axis, tensor_scale=t_scale, amax_used=amax_used, stats=stats, recipe=recipe)


def _fp32(value: float) -> float:
    with np.errstate(over="ignore", under="ignore"):
        return float(np.float32(value))


def _elements(x: np.ndarray, scale: np.ndarray, element: FloatFormat) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dequantized, element codes, saturated mask) of ``x`` with per-element ``scale``."""
    usable = np.isfinite(scale) & (scale > 0)
    finite = np.isfinite(x)
    top = element.max_value
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        scaled = np.where(usable, x / np.where(usable, scale, 1.0), 0.0)
        # clamped: beyond what rounding alone keeps at the largest value (past half its spacing above it)
        quantum = math.ldexp(1.0, element.max_exponent - element.mantissa_bits)
        odd_top = bool(int(top / quantum) & 1)  # a tie at top + quantum / 2 rounds away from an odd top
        limit = np.abs(scaled)
        saturated = usable & finite & ((limit > top + quantum / 2) | ((limit == top + quantum / 2) & odd_top))
        clipped = np.clip(scaled, -top, top)  # NaN stays NaN, +-inf becomes +-max (delayed scaling)
        stored = round_to_format(clipped, element)
        dequantized = stored * np.where(usable, scale, 0.0)
    dequantized[np.isnan(scale) | np.isnan(x)] = np.nan  # a NaN scale: the whole block is NaN
    safe = np.where(np.isnan(stored), 0.0, stored)
    codes = _codes(safe, safe, element)  # already on the element's grid: only the fields to read off
    nan_code = element.nan_bits if element.nan_bits is not None else 0
    codes[np.isnan(dequantized)] = nan_code
    return dequantized, codes, saturated


def _stats(x: np.ndarray, q: np.ndarray, saturated: np.ndarray, bits: float, *, nan_blocks: int, clamped: int,
           zero_scales: int) -> QuantStats:
    finite_in = np.isfinite(x)
    ok = finite_in & np.isfinite(q)
    v, d = x[ok], q[ok]
    sqnr = None
    if v.size and np.any(v != 0):
        peak = np.abs(v).max()
        with np.errstate(under="ignore", over="ignore"):
            signal = float(np.sum(np.square(v / peak)))
            noise = float(np.sum(np.square((d - v) / peak)))
        sqnr = math.inf if noise == 0 else 10 * math.log10(signal / noise)
    nonzero = v != 0
    rel = np.abs(d[nonzero] - v[nonzero]) / np.abs(v[nonzero]) if nonzero.any() else np.empty(0)
    n_nonzero_finite = int(np.count_nonzero(finite_in & (x != 0)))
    n_finite = int(np.count_nonzero(finite_in))
    flushed = int(np.count_nonzero(ok & (x != 0) & (q == 0)))
    return QuantStats(
        n=int(x.size),
        finite=n_finite,
        sqnr_db=sqnr,
        mean_rel_error=float(rel.mean()) if rel.size else None,
        max_rel_error=float(rel.max()) if rel.size else None,
        flushed=flushed / n_nonzero_finite if n_nonzero_finite else 0.0,
        saturated=int(np.count_nonzero(saturated)) / n_finite if n_finite else 0.0,
        nan=int(np.count_nonzero(np.isnan(q))) / x.size,
        bits_per_value=bits,
        nan_blocks=nan_blocks,
        clamped_scales=clamped,
        zero_scales=zero_scales,
    )


# ---------------------------------------------------------------- recipes


ROLES = ("activation", "weight")


def quantize_recipe(values: Any, recipe: Recipe | str, *, amax_history: Sequence[float] | None = None,
                    role: str = "activation") -> Quantized:
    """Quantize ``values`` with a recipe of ``RECIPES`` (a :class:`Recipe` or its name).

    Blocks run along the last axis.  ``amax_history`` (``fp8_tensor`` only): the amax of earlier
    steps, non-negative finite numbers; when given and not all zero the scale is
    ``max(amax_history) / 448`` (delayed scaling) instead of this tensor's own amax.  ``role``
    (``deepseek_fp8`` only): ``"activation"`` (1 x 128 tiles along the last axis) or
    ``"weight"`` (128 x 128 tiles over the last two axes).  ValueError names the bad parameter.
    """
    if isinstance(recipe, str):
        if recipe not in RECIPES:
            raise ValueError(f"recipe: unknown recipe {recipe!r}; expected one of {', '.join(RECIPES)}")
        recipe = RECIPES[recipe]
    elif not isinstance(recipe, Recipe):
        raise ValueError(f"recipe: expected a Recipe or one of {', '.join(RECIPES)}, got {type(recipe).__name__}")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    history = None
    if amax_history is not None:
        if recipe.scaling != "tensor":
            raise ValueError(f"amax_history: delayed scaling needs a per-tensor recipe (fp8_tensor), not {recipe.name}")
        try:
            history = [float(a) for a in amax_history]
        except (TypeError, ValueError):
            raise ValueError(f"amax_history: expected numbers, got {amax_history!r}") from None
        if not history or not all(math.isfinite(a) and a >= 0 for a in history):
            raise ValueError(f"amax_history: expected at least one finite amax >= 0, got {amax_history!r}")
        if max(history) == 0:
            history = None  # nothing seen yet: current scaling
    x = _as_tensor(values)
    scaling, block = recipe.scaling, (1, recipe.block_size)
    if recipe.name == "deepseek_fp8" and role == "weight":
        scaling, block = "tile", (recipe.block_size, recipe.block_size)
    return _quantize(x, recipe.element, scaling, block, recipe.scale_format, x.ndim - 1,
                     tensor_scale=recipe.tensor_scale, amax_history=history, recipe=recipe.name)


# ---------------------------------------------------------------- tensors to look at

_TOKEN = re.compile(r"[^\s,;]+")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:inf|infinity|nan)", re.IGNORECASE)

TENSOR_TEXT_ERRORS = {  # reason -> English message template (after "<name>: ")
    "empty": "empty tensor: type numbers separated by commas",
    "not_a_number": "{token!r} is not a number",
    "too_many": "at most {limit} values, got {count}",
    "ragged": "rows of different lengths ({lengths})",
}


class TensorTextError(ValueError):
    """Typed tensor text that cannot be read: ``reason`` (a key of ``TENSOR_TEXT_ERRORS``) and
    ``fields`` word the message, so a front end can say it in its own language."""

    def __init__(self, name: str, reason: str, **fields: Any):
        self.name, self.reason, self.fields = name, reason, fields
        super().__init__(f"{name}: " + TENSOR_TEXT_ERRORS[reason].format(**fields))


def parse_tensor(text: str, *, name: str = "values", limit: int = MAX_TENSOR_VALUES) -> np.ndarray:
    """Numbers typed as text: separated by commas or spaces, rows by ``;`` or new lines (all rows
    the same length: a 2-D tensor; one row: 1-D).  ``inf``, ``-inf`` and ``nan`` are values.
    :class:`TensorTextError` (a ValueError naming ``name``) for anything else, an empty text,
    more than ``limit`` values or ragged rows."""
    if not isinstance(text, str):
        raise ValueError(f"{name}: expected text, got {type(text).__name__}")
    rows = [row for row in re.split(r"[;\n]", text) if row.strip()]
    if not rows:
        raise TensorTextError(name, "empty")
    parsed = []
    for row in rows:
        tokens = _TOKEN.findall(row)
        for token in tokens:
            if not _NUMBER.fullmatch(token):
                raise TensorTextError(name, "not_a_number", token=token if len(token) <= 20 else token[:19] + "…")
        parsed.append([float(t) for t in tokens])
    count = sum(len(r) for r in parsed)
    if count > limit:
        raise TensorTextError(name, "too_many", limit=limit, count=count)
    if len(parsed) == 1:
        return np.array(parsed[0], dtype=np.float64)
    if len({len(r) for r in parsed}) != 1:
        raise TensorTextError(name, "ragged", lengths=", ".join(str(len(r)) for r in parsed))
    return np.array(parsed, dtype=np.float64)


def example_tensor(kind: str, rows: int, cols: int, *, std: float = 1.0, outliers: int = 4, outlier_size: float = 100.0,
                   seed: int = 0) -> np.ndarray:
    """A (rows, cols) float64 tensor to quantize: ``"gaussian"`` (N(0, std^2)), ``"heavy_tailed"``
    (Student t with 3 degrees of freedom, scaled to standard deviation ``std``), ``"outliers"``
    (Gaussian with ``outliers`` values of +-``outlier_size`` x std at random places) or
    ``"activation"`` (a transformer activation: rows are tokens, columns channels; ``outliers``
    channels carry ``outlier_size`` times the others' magnitude in every token, as the "massive
    activations" of LLMs do)."""
    if kind not in TENSOR_KINDS:
        raise ValueError(f"kind must be one of {', '.join(TENSOR_KINDS)}, got {kind!r}")
    rows = _positive_int("rows", rows, 1 << 12)
    cols = _positive_int("cols", cols, 1 << 16)
    if rows * cols > MAX_TENSOR_VALUES:
        raise ValueError(f"rows x cols: at most {MAX_TENSOR_VALUES} values")
    if not (isinstance(std, numbers.Real) and math.isfinite(std) and std > 0):
        raise ValueError(f"std must be a positive finite number, got {std!r}")
    if not (isinstance(outlier_size, numbers.Real) and math.isfinite(outlier_size) and outlier_size > 0):
        raise ValueError(f"outlier_size must be a positive finite number, got {outlier_size!r}")
    if isinstance(outliers, bool) or not isinstance(outliers, numbers.Integral) or outliers < 0:
        raise ValueError(f"outliers must be an integer >= 0, got {outliers!r}")
    rng = np.random.default_rng(seed)
    with np.errstate(over="ignore"):
        if kind == "heavy_tailed":
            return rng.standard_t(3, (rows, cols)) * (std / math.sqrt(3.0))
        base = rng.standard_normal((rows, cols))
        if kind == "outliers":
            k = min(int(outliers), rows * cols)
            where = rng.choice(rows * cols, size=k, replace=False)
            base.flat[where] = rng.choice([-1.0, 1.0], size=k) * outlier_size
        elif kind == "activation":
            k = min(int(outliers), cols)
            channels = rng.choice(cols, size=k, replace=False)
            base[:, channels] *= outlier_size
        return base * std
