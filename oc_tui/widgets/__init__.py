"""Reusable widgets of oc-tui: one module per widget, fed by messages from their screen."""
