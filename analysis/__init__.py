"""Figures, tables and sim-vs-real comparison."""
