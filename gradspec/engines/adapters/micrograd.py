"""micrograd (the PyPI package): its ``Value`` class through the generic Value-class adapter.

It has no tanh, exp or log, and no Value exponents, so those checks skip with the reason.
"""

from __future__ import annotations

from gradspec.engines.protocol import Engine, Unavailable, ValueClassEngine
from gradspec.errors import EngineError


def create(options: str) -> Engine:
    if options:
        raise EngineError(f"micrograd takes no options, got {options!r}")
    try:
        from micrograd.engine import Value
    except ImportError:
        return Unavailable("micrograd", "micrograd is not installed (pip install 'gradspec[micrograd]')")
    return ValueClassEngine(Value, "micrograd")
