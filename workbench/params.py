"""Declared parameters: one declaration per parameter drives controls, validation, reset,
presets, scene files, the CLI's ``--set`` and export captions.

Qt-free, so the CLI and notebooks can validate values without a display.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Iterable, Mapping

from workbench.i18n import pick, tr

KINDS = ("float", "int", "bool", "choice", "text")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
BRIEF = 60  # characters of a refused value quoted in a message


def brief(raw: Any, limit: int = BRIEF) -> str:
    """``repr(raw)``, cut to its first ``limit`` characters and an ellipsis when longer: a message
    quotes a refused value, not all 50 MB of it. An integer too long to quote is given in
    scientific notation (``repr`` of one with over 4300 digits raises)."""
    if isinstance(raw, int) and not isinstance(raw, bool) and abs(raw) >= 10 ** limit:
        return f"{Decimal(raw):.6e}"
    try:
        text = repr(raw)
    except RecursionError:  # nested deeper than repr goes
        return f"<{type(raw).__name__}>"
    return text if len(text) <= limit else text[:limit - 1] + "…"


class ParamError(ValueError):
    """One or more parameter values were refused; ``problems`` lists one message each."""

    def __init__(self, problems: Iterable[str]):
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True)
class Choice:
    """One option of a choice parameter: the stored value and its English/Chinese label."""

    value: str
    en: str
    zh: str

    def label(self) -> str:
        return pick(self.en, self.zh)


@dataclass(frozen=True)
class Param:
    """A declared parameter.

    kind: "float" | "int" | "bool" | "choice" | "text". ``lo``/``hi`` bound numbers (inclusive);
    ``check`` validates text (raises ValueError with the reason);
    ``log`` puts the slider on a log10 scale (ranges spanning decades); ``group`` names the
    section the control sits in (an English key translated through the catalogue).
    """

    name: str
    kind: str
    default: Any
    en: str
    zh: str
    help_en: str
    help_zh: str
    lo: float | None = None
    hi: float | None = None
    step: float | None = None
    log: bool = False
    unit: str = ""
    choices: tuple[Choice, ...] = ()
    group: str = ""
    check: Callable[[str], Any] | None = None
    max_length: int = 200

    def __post_init__(self):
        if self.kind not in KINDS:
            raise TypeError(f"{self.name}: unknown kind {self.kind!r}")
        if self.kind in ("float", "int") and (self.lo is None or self.hi is None):
            raise TypeError(f"{self.name}: numbers need lo and hi")
        if self.log and not (self.lo and self.lo > 0):
            raise TypeError(f"{self.name}: a log scale needs lo > 0")
        if self.kind == "choice" and not self.choices:
            raise TypeError(f"{self.name}: a choice needs choices")
        self.parse(self.default)  # the default itself must be valid

    def label(self) -> str:
        return pick(self.en, self.zh)

    def help(self) -> str:
        return pick(self.help_en, self.help_zh)

    def allowed(self) -> str:
        """What values are allowed, in words (current language)."""
        if self.kind in ("float", "int"):
            return tr("a number from {lo} to {hi}").format(lo=self.format(self.lo), hi=self.format(self.hi))
        if self.kind == "bool":
            return tr("true or false")
        if self.kind == "text":
            return tr("text of at most {n} characters").format(n=self.max_length)
        return tr("one of {choices}").format(choices=", ".join(c.value for c in self.choices))

    def tooltip(self) -> str:
        unit = f" [{self.unit}]" if self.unit else ""
        return (f"{self.label()}{unit}\n{self.help()}\n{tr('Allowed')}: {self.allowed()}"
                f"\n{tr('Default')}: {self.format(self.default)}\n--set {self.name}=…")

    def _refuse(self, raw: Any) -> ParamError:
        return ParamError([tr("{label} ({name}): {raw} is not allowed; expected {allowed}").format(
            label=self.label(), name=self.name, raw=brief(raw), allowed=self.allowed())])

    def parse(self, raw: Any) -> Any:
        """Turn ``raw`` (a value or text) into a valid value, or raise ParamError naming it."""
        if isinstance(raw, str):
            raw = raw.strip()
        if self.kind == "bool":
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.lower() in _TRUE | _FALSE:
                return raw.lower() in _TRUE
            raise self._refuse(raw)
        if self.kind == "choice":
            for c in self.choices:
                if raw == c.value:
                    return c.value
            raise self._refuse(raw)
        if self.kind == "text":
            return self._parse_text(raw)
        if isinstance(raw, bool) or raw is None or raw == "":
            raise self._refuse(raw)
        try:
            number = float(raw)
        except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond the float range
            raise self._refuse(raw) from None
        if not math.isfinite(number) or not self.lo <= number <= self.hi:
            raise self._refuse(raw)
        if self.kind == "int":
            if number != int(number):
                raise self._refuse(raw)
            return int(number)
        return number

    def _parse_text(self, raw: Any) -> str:
        if not isinstance(raw, str) or not raw or len(raw) > self.max_length:
            raise self._refuse(raw)
        if self.check is not None:
            try:
                self.check(raw)
            except ValueError as error:
                raise ParamError([tr("{label} ({name}): {raw} is not allowed: {reason}").format(
                    label=self.label(), name=self.name, raw=brief(raw), reason=error)]) from None
        return raw

    def format(self, value: Any) -> str:
        """Value as text for labels and captions."""
        if self.kind == "float":
            return f"{value:.6g}"
        if self.kind == "choice":
            return next((c.label() for c in self.choices if c.value == value), str(value))
        if self.kind == "bool":
            return tr("on") if value else tr("off")
        return str(value)


@dataclass(frozen=True)
class Preset:
    """A named full scene: values override the defaults."""

    key: str
    en: str
    zh: str
    values: Mapping[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        return pick(self.en, self.zh)


class ParamSet:
    """The declaration of one panel's parameters, plus an optional cross-field check.

    ``check(values) -> list[str]`` returns problems that involve several parameters
    (e.g. a start point outside the surface's window); each message names the parameter.
    ``follow(values, changes) -> dict`` gives values that follow a change unless set explicitly
    (e.g. a new surface brings its own start point); ``values`` are the new values, already
    validated one by one, ``changes`` the raw changes asked for.
    """

    def __init__(self, params: Iterable[Param], check: Callable[[dict], list[str]] | None = None,
                 presets: Iterable[Preset] = (), follow: Callable[[Mapping, Mapping], dict] | None = None):
        self.params = {p.name: p for p in params}
        self._check = check
        self._follow = follow
        self.presets = {p.key: p for p in presets}
        for preset in self.presets.values():
            self.resolve(preset.values)  # a broken preset fails at import time, not in a demo

    def __iter__(self):
        return iter(self.params.values())

    def __getitem__(self, name: str) -> Param:
        return self.params[name]

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self}

    def update(self, base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
        """``base`` with ``changes`` applied, all validated; raise ParamError listing every
        problem (unknown names, wrong types, out of range, cross-field) and change nothing."""
        problems: list[str] = []
        new = dict(base)
        for name, raw in changes.items():
            param = self.params.get(name)
            if param is None:
                problems.append(tr("{name}: unknown parameter (known: {known})").format(
                    name=name if len(str(name)) <= BRIEF else brief(name), known=", ".join(self.params)))
                continue
            try:
                new[name] = param.parse(raw)
            except ParamError as error:
                problems.extend(error.problems)
        if not problems and self._follow:
            for name, raw in self._follow(new, changes).items():
                if name not in changes:
                    try:
                        new[name] = self.params[name].parse(raw)
                    except ParamError as error:
                        problems.extend(error.problems)
        if not problems and self._check:
            problems.extend(self._check(new))
        if problems:
            raise ParamError(problems)
        return new

    def resolve(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults with ``changes`` applied (a preset, a scene or the CLI's --set list)."""
        return self.update(self.defaults(), changes)

    def parse_assignments(self, assignments: Iterable[str]) -> dict[str, str]:
        """``["lr=0.1", ...]`` -> ``{"lr": "0.1"}``; malformed items raise ParamError."""
        changes = {}
        for item in assignments:
            name, sep, raw = item.partition("=")
            if not sep or not name.strip():
                raise ParamError([tr("--set {item}: expected name=value").format(item=item)])
            changes[name.strip()] = raw
        return changes

    def caption(self, values: Mapping[str, Any], names: Iterable[str] | None = None) -> str:
        """``label = value`` pairs for an export caption."""
        chosen = names if names is not None else self.params
        return ", ".join(f"{self[n].label()} = {self[n].format(values[n])}" for n in chosen)
