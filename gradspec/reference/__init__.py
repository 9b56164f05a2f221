"""Exact and numerical references: what an engine's numbers are judged against."""
