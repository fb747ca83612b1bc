"""Deep-learning workbench: interactive panels over a Qt-free compute backend."""

__version__ = "0.1.0"
