"""Debugging a failing check: the graph node by node, the culprit op, and the smallest failing case.

*Localisation* reads the engine's gradient at every node and compares it with the exact adjoint. The
first wrong node, walking back from the output, is where a backward went wrong; the ops that wrote
into it are the suspects. Each suspect is then unit-tested on its own, at the same argument values,
with an upstream gradient that is not 1, with its result accumulated alongside another use of its
input, and with one leaf in both operand slots. A suspect that fails alone has a wrong rule; one that
fails only when sharing a leaf does not accumulate (``=`` for ``+=``); when every suspect passes alone
the rules are right and the engine's traversal or accumulation is not: the culprit is ``backward``.

*Shrinking* tries every sub-expression of a failing graph on the engine and keeps the smallest that
still fails, as a ready-to-paste YAML case.

The parts live in :mod:`~gradspec.diagnose.localise`, :mod:`~gradspec.diagnose.explain`,
:mod:`~gradspec.diagnose.shrink` and :mod:`~gradspec.diagnose.text`; this module gathers them.
"""

from __future__ import annotations

from gradspec.checks.results import Culprit
from gradspec.diagnose.explain import NodeReport, explain, render_dot
from gradspec.diagnose.localise import localise
from gradspec.diagnose.shrink import as_yaml_case, shrink, shrink_input
from gradspec.diagnose.text import subexpression, subprogram

__all__ = ["Culprit", "NodeReport", "as_yaml_case", "explain", "localise", "render_dot", "shrink", "shrink_input",
           "subexpression", "subprogram"]
