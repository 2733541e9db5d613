"""Plots and summaries of bench runs (matplotlib, imported lazily, Agg backend)."""
