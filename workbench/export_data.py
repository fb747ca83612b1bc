"""The computed arrays of a panel as JSON (for notes, spreadsheets, notebooks)."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Mapping

import numpy as np

from workbench import __version__
from workbench.scene import write_atomic


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, dicts, tuples and numpy arrays as plain JSON values; NaN/inf become None."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not f.name.startswith("_") and not callable(getattr(obj, f.name))}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, (np.integer, np.bool_)):
        return obj.item()
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return str(obj)


def data_bytes(panel: str, values: Mapping[str, Any], result: Any) -> bytes:
    """``{"panel", "workbench_version", "params", "result"}`` as UTF-8 JSON."""
    document = {"panel": panel, "workbench_version": __version__, "params": dict(values),
                "result": to_jsonable(result)}
    return json.dumps(document, ensure_ascii=False, allow_nan=False).encode("utf-8")


def save_data(path: str, panel: str, values: Mapping[str, Any], result: Any) -> None:
    """Write :func:`data_bytes` to ``path`` atomically."""
    write_atomic(path, data_bytes(panel, values, result))
