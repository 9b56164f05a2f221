"""Checks: judging an engine's numbers against the reference, one module per kind of case."""
