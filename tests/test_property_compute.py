"""What the declaration accepts, the compute accepts (DESIGN.md, "One update path").

For every panel, hypothesis draws changes from the panel's own declaration (ranges with their
ends, every choice, and for text the awkward inputs each field accepts), applies them one by one
through ``PARAMS.update`` as a user would (a change the declaration refuses, cross-field rules
included, is skipped: refusing is the declaration's job) and calls the panel's ``compute``: it
must return without raising and without a warning (warnings are errors in the test configuration).
A second test draws a few extreme scenes on a real panel.

Examples per panel are bounded for CI (the whole file takes well under a minute on two cores);
``WORKBENCH_PROPERTY_EXAMPLES=2000`` runs that many per panel, at the full declared sizes.
"""

from __future__ import annotations

import math
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.compute import attention as att
from workbench.compute import receptive_field as rf
from workbench.params import Param, ParamError, ParamSet
from workbench.registry import PANELS, panel_class

LONG_RUN = int(os.environ.get("WORKBENCH_PROPERTY_EXAMPLES", "0"))
settings.register_profile("workbench-property", deadline=None, database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROFILE = settings.get_profile("workbench-property")
EXAMPLES = {"optimizers": 250, "floats": 300, "attention": 150, "activations": 100, "receptive_field": 200,
            "normalization": 300, "training": 200, "transformer": 120}  # per panel in CI: a few seconds each
# Sizes that only cost time (the numerics at the extremes come from depth, gain, bias, ...): capped
# in CI, where a 100 x 256 x 256 gradient-flow MLP alone takes seconds. Not capped in a long run.
CI_CAPS = {("activations", "width"): 64, ("activations", "batch"): 64, ("transformer", "d_model"): 96,
           ("transformer", "depth"): 8, ("transformer", "batch"): 4}

FLOAT_TEXTS = ["0x7e00", "0xffff", "0xfc00", "0x7c00", "0x8000", "0x0001", "0x7f800000", "0xffc00001", "0x7fc00000",
               "0x00000001", "0x7ff8000000000000", "0xfff0000000000000", "0xff", "0x80", "0x7f", "0xf", "0x1",
               "0b1", "0b0111_1100_0000_0000", "nan", "-nan", "NaN", "inf", "-inf", "+Infinity", "1e309", "-1e309",
               "1e-400", "1e99999", "-1e-99999", "-0", "0", "65504", "65520", "448", "464", "57344", "6.0", "6.5",
               "1.0625", "5e-324", "2.2250738585072014e-308", "1.7976931348623157e308", "3.4028235e38",
               "0.1", " 2.5 ", "1" + "0" * 190]


def _float_text() -> st.SearchStrategy[str]:
    numbers = st.floats(allow_nan=True, allow_infinity=True).map(repr)
    patterns = st.integers(0, 2**64 - 1).map(hex)
    return st.one_of(st.sampled_from(FLOAT_TEXTS), numbers, patterns)


def _tokens_text() -> st.SearchStrategy[str]:
    words = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=12)
    return st.one_of(
        st.sampled_from(["a", "我", "[PAD]", "  the\tcat\n", "我喜欢深度学习", "😀 🙃", "Ǆ ﬁ ß",
                         " ".join(f"w{i}" for i in range(att.MAX_TOKENS)), "字" * att.MAX_TOKENS]),
        st.lists(words, min_size=1, max_size=att.MAX_TOKENS).map(" ".join))


def _mask_text() -> st.SearchStrategy[str]:
    def rows(shape):
        n_q, n_k = shape
        fill = st.sampled_from(["1" * n_k, "0" * n_k])  # all visible, fully masked rows
        row = st.one_of(fill, st.text("01", min_size=n_k, max_size=n_k))
        return st.lists(row, min_size=n_q, max_size=n_q).map("/".join)
    side = st.one_of(st.integers(1, 16), st.sampled_from([att.MAX_TOKENS]))
    return st.tuples(side, side).flatmap(rows)


def _layers_text() -> st.SearchStrategy[str]:
    layer = st.builds(
        lambda kind, k, s, p, d, c: " ".join([kind, f"k={k}", f"s={s}", f"p={min(p, k // 2)}",
                                              f"d={1 if kind == 'avgpool' else d}"] + ([f"c={c}"] if c else [])),
        st.sampled_from(rf.KINDS), st.integers(1, 33), st.integers(1, 8), st.integers(0, 16), st.integers(1, 12),
        st.one_of(st.none(), st.integers(1, 2048)))
    presets = [rf.format_layers(layers) for layers in rf.PRESETS.values()]
    extremes = ["conv k=1", "; ".join(["conv k=3 p=1"] * rf.MAX_LAYERS), "; ".join(["conv k=2 s=2"] * 10),
                "conv k=1024", "conv k=3 d=400", "maxpool k=2 s=2; " * 10 + "conv k=1"]
    return st.one_of(st.sampled_from(presets + extremes), st.lists(layer, min_size=1, max_size=rf.MAX_LAYERS).map("; ".join))


def _lengths_text() -> st.SearchStrategy[str]:
    lists = st.lists(st.integers(1, 16), min_size=1, max_size=8).map(lambda ns: ",".join(map(str, ns)))
    return st.one_of(st.sampled_from(["1", "16", ",".join(["16"] * 8), ",".join(["1"] * 8), " 3 , 4 "]), lists)


def _hidden_text() -> st.SearchStrategy[str]:
    sizes = st.lists(st.integers(1, 64), min_size=0, max_size=8).map(lambda s: ",".join(map(str, s)) or "0")
    return st.one_of(sizes, st.sampled_from(["0", "none", " 8 , 8 ", "64,64,64,64,64,64,64,64", "8;8", "1", "8 relu, 8 linear",
                                             "64 gelu, 2 softplus", "3 relu6,3,3 selu"]))


def _milestones_text() -> st.SearchStrategy[str]:
    steps = st.lists(st.integers(1, 5000), min_size=1, max_size=32).map(lambda ns: ", ".join(map(str, ns)))
    return st.one_of(st.sampled_from(["1", "5000", "150 300", " 2,2 , 2 ", "0", "5001", "1.5", "a", ""]), steps)


def _tensor_text() -> st.SearchStrategy[str]:
    """Typed tensors: any floats (NaN, +-inf and float64's extremes included), one row or rows of equal length."""
    number = st.floats(allow_nan=True, allow_infinity=True).map(repr)
    row = st.lists(number, min_size=1, max_size=40)
    rows = st.integers(1, 6).flatmap(lambda n: st.lists(st.lists(number, min_size=n, max_size=n), min_size=2,
                                                         max_size=5))
    return st.one_of(st.sampled_from(["0", "nan", "inf, -inf", "0, 0, 0", "1e-320, 5e-324", "1.7976931348623157e308, 1",
                                      "1, nan; 2, 3"]),
                     row.map(", ".join), rows.map(lambda r: "; ".join(" ".join(x) for x in r)))


TEXTS = {("floats", "value"): _float_text, ("floats", "typed_values"): _tensor_text, ("optimizers", "milestones"): _milestones_text, ("attention", "text"): _tokens_text,
         ("attention", "query_text"): _tokens_text, ("attention", "custom_mask"): _mask_text,
         ("receptive_field", "layers"): _layers_text, ("normalization", "lengths"): _lengths_text,
         ("training", "hidden"): _hidden_text}


def top(panel: str, param: Param) -> float:
    """The high end drawn: the declared one, or its CI cap."""
    return param.hi if LONG_RUN else CI_CAPS.get((panel, param.name), param.hi)


def values_of(panel: str, param: Param) -> st.SearchStrategy[Any]:
    """Values (some of them refused, e.g. text that fails the check) for one declared parameter."""
    if param.kind == "bool":
        return st.booleans()
    if param.kind == "choice":
        return st.sampled_from([c.value for c in param.choices])
    if param.kind == "text":
        typed = TEXTS.get((panel, param.name), lambda: st.text(max_size=param.max_length))()
        return st.one_of(st.just(param.default), typed)
    hi = top(panel, param)
    ends = st.sampled_from([param.lo, hi])
    if param.kind == "int":
        return st.one_of(ends, st.integers(int(param.lo), int(hi)))
    inside = st.floats(param.lo, hi)
    if param.log:  # as many draws per decade as the slider gives
        inside = st.floats(math.log10(param.lo), math.log10(hi)).map(lambda e: min(max(10.0 ** e, param.lo), hi))
    return st.one_of(ends, inside)


def changes_of(panel: str, params: ParamSet) -> st.SearchStrategy[list[tuple[str, Any]]]:
    """A sequence of (name, value) changes, in the order a user might make them."""
    names = list(params.params) + [p.name for p in params if p.kind == "text"] * 4  # text is where the surprises are
    change = st.sampled_from(names).flatmap(
        lambda name: st.tuples(st.just(name), values_of(panel, params[name])))
    return st.lists(change, max_size=2 * len(params.params))


def accepted(params: ParamSet, changes: list[tuple[str, Any]]) -> dict[str, Any]:
    """The defaults with each change applied that the declaration accepts (the others refused, as
    the panel refuses them: nothing changes). Validation itself raises nothing but ParamError."""
    values = params.defaults()
    for name, raw in changes:
        try:
            values = params.update(values, {name: raw})
        except ParamError:
            pass
    return values


@pytest.mark.parametrize("name", PANELS)
def test_compute_accepts_whatever_the_declaration_accepts(name):
    cls = panel_class(name)

    @settings(PROFILE, max_examples=LONG_RUN or EXAMPLES[name])
    @given(changes_of(name, cls.PARAMS))
    def check(changes):
        cls.compute(accepted(cls.PARAMS, changes))

    check()


def extreme_scenes(name: str, params: ParamSet) -> list[dict[str, Any]]:
    """Every number at its low end, every number at its high end (each applied if the declaration
    accepts it, in declaration order), and each interesting text of the panel on the defaults."""
    def ends(pick) -> list[tuple[str, Any]]:
        return [(p.name, pick(p)) for p in params if p.kind in ("float", "int")]
    scenes = [ends(lambda p: p.lo), ends(lambda p: top(name, p)),
              [(p.name, not p.default) for p in params if p.kind == "bool"] + ends(lambda p: top(name, p))]
    if name == "floats":
        scenes += [[("value", text), ("pattern_format", fmt)] for text in ("0x7e00", "0xffff", "0x7f800000", "nan")
                   for fmt in ("fp16", "fp32")] + [[("value", "1e309")], [("value", "-inf"), ("show_fp4_e2m1", True)]]
        scaling = [("view", "scaling")]
        scenes += [scaling + [("tensor_kind", "typed"), ("typed_values", text), ("recipe", recipe)]
                   for text in ("nan, inf, -inf", "0, 0", "1e308, -1e308, 5e-324") for recipe in ("mxfp4", "nvfp4", "fp8_tensor")]
        scenes += [scaling + [("inject", inject), ("recipe", "fp8_tensor"), ("amax_history", 8)] for inject in ("nan", "inf")]
        scenes += [scaling + [("tensor_std", std), ("outlier_size", 1e4), ("recipe", recipe)]
                   for std in (1e-40, 1e36) for recipe in ("mxfp8_e4m3", "deepseek_fp8")]
        scenes += [[("show_e8m0", True), ("show_fp8_e4m3fnuz", True), ("value", text), ("density_format", "e8m0")]
                   for text in ("0", "-1", "nan", "0x80", "3")]
    if name == "attention":
        scenes += [[("mask", "custom"), ("custom_mask", "/".join(["0" * 12] * 12))],
                   [("text", " ".join(["x"] * att.MAX_TOKENS)), ("pad_to", att.MAX_TOKENS), ("temperature", 0.05)]]
    return [accepted(params, changes) for changes in scenes]


@pytest.mark.parametrize("name", PANELS)
def test_extreme_scenes_draw(open_panel, name):
    cls = panel_class(name)
    panel = open_panel(cls, 1200, 800)
    errors = []
    panel.message.connect(lambda text, is_error: errors.append(text) if is_error else None)
    for values in extreme_scenes(name, cls.PARAMS):
        assert panel.set_all(values)
        panel.compute_now()
        assert panel.result is not None
        panel.grab()  # painted too
        for control in panel.controls.values():  # an accepted scene leaves no error showing
            assert control.error_label.isHidden()
    assert not errors
