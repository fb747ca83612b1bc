"""Qt views: one module per panel plus the shared controls, style and rendering."""
