"""Qt-free compute backend: plain values and arrays in, frozen dataclasses out."""
