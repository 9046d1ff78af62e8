"""Screens of oc-tui: one module per screen or dialog."""
