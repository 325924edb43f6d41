"""Backends: what users see (report, and later render, execute, export)."""
