"""Engines: the protocol, the guarded call into code under test, and the adapters."""
