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


TITLES: dict[str, tuple[str, str]] = {  # (English, Chinese), as each class's TITLE_EN / TITLE_ZH (a test checks)
    "optimizers": ("Optimizers", "优化器"),
    "floats": ("Floats", "浮点格式"),
    "attention": ("Attention", "注意力"),
    "activations": ("Activations", "激活函数"),
    "receptive_field": ("Receptive field", "感受野"),
    "normalization": ("Normalization", "归一化"),
    "training": ("Training", "训练"),
    "transformer": ("Transformer", "Transformer"),
}


def panel_title(name: str) -> str:
    """The panel's title in the current language, without importing its module (the navigation
    and the View menu name every panel; only the one shown is imported and built)."""
    from workbench.i18n import pick

    return pick(*TITLES[name])


def panel_class(name: str) -> type:
    """The panel's widget class (imports Qt); KeyError for an unknown name."""
    module, _, attr = PANELS[name].partition(":")
    return getattr(import_module(module), attr)
