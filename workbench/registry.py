"""The panels the shell offers, in navigation order (Ctrl+1, Ctrl+2, ...).

Adding a panel is one line here plus ``widgets/<panel>.py`` and ``workbench/compute/<panel>.py``.
"""

from __future__ import annotations

from importlib import import_module

PANELS: dict[str, str] = {
    "optimizers": "widgets.optimizers:OptimizersPanel",
    "floats": "widgets.floats:FloatsPanel",
    "attention": "widgets.attention:AttentionPanel",
    "activations": "widgets.activations:ActivationsPanel",
    "receptive_field": "widgets.receptive_field:ReceptiveFieldPanel",
    "normalization": "widgets.normalization:NormalizationPanel",
    "training": "widgets.training:TrainingPanel",
    "transformer": "widgets.transformer:TransformerPanel",
}


def panel_class(name: str) -> type:
    """The panel's widget class (imports Qt); KeyError for an unknown name."""
    module, _, attr = PANELS[name].partition(":")
    return getattr(import_module(module), attr)
