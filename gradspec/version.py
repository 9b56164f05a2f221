"""gradspec's version: one place, read by the facade, the caches' fingerprints and the reports."""

__version__ = "0.1.0"
