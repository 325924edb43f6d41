"""Compiled extension modules land here, built from csrc/*.pyx by setup.py.

`pip install -e .` builds them; each has a pure-Python twin in cnngraph.passes (or
alongside its caller) that serves as its test oracle.
"""
