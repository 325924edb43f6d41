"""Passes over the IR: shapes (with folding), costs, liveness, analysis."""
