"""Which of its own ops a Value class runs to apply another: watched on a subclass, never on the class."""

from __future__ import annotations

from types import ModuleType

from gradspec.engine import Value
from gradspec.engines.delegation import delegates


def test_micrograd_spellings_are_followed_in_the_order_they_run(textbook: ModuleType) -> None:
    cls = textbook.Value
    assert delegates(cls, "sub") == ("neg", "mul", "add")  # x + (-y), and -y is y * -1
    assert delegates(cls, "div") == ("pow", "mul")  # x * y**-1
    assert delegates(cls, "neg") == ("mul",)
    assert delegates(cls, "mul") == () and delegates(cls, "tanh") == ()
    assert not any(name.startswith("Watched") for name in vars(cls))  # the user's class is left as it was


def test_an_engine_with_its_own_op_code_delegates_nothing() -> None:
    assert delegates(Value, "sub") == () and delegates(Value, "div") == ()


def test_a_class_that_cannot_be_watched_claims_no_delegation() -> None:
    class Final:
        def __init_subclass__(cls) -> None:
            raise TypeError("no subclasses")

        def __init__(self, data: float) -> None:
            self.data = data

        def __sub__(self, other: Final) -> Final:
            return Final(self.data - other.data)

    assert delegates(Final, "sub") == ()
    assert delegates(Final, "tanh") == ()  # no such method at all
