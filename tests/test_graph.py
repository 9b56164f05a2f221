"""The graph IR: tagged steps, the one builder, the printer, and identity by content."""

from __future__ import annotations

from fractions import Fraction

import pytest

from gradspec.errors import ExpressionError
from gradspec.graph.ir import Apply, Const, Graph, GraphBuilder, Leaf, build, unroll
from gradspec.graph.printer import label, number, short, step_text, subexpression, subprogram
from gradspec.lang.expr import Name, Program, parse


def test_build_lays_out_inputs_then_ops_with_tagged_steps() -> None:
    graph = build(parse("a = x * y; tanh(a) + 0.5"))
    assert graph.steps == (Leaf("x"), Leaf("y"), Apply("mul", (0, 1), 7), Apply("tanh", (2,), 12),
                           Const(Fraction(1, 2), 22), Apply("add", (3, 4), 20))
    assert graph.inputs == (("x", 0), ("y", 1))
    assert graph.intermediates == (("a", 2),)
    assert graph.output == 5
    assert graph.varying == (True, True, True, True, False, True)
    assert graph.depth == 3
    assert graph.op_count == 3
    assert [s.args for s in graph.steps] == [(), (), (0, 1), (2,), (), (3, 4)]


def test_a_constant_used_twice_is_one_step_and_an_unused_input_is_kept() -> None:
    graph = build(parse("x * 3 + 3"), ("z",))
    assert [s for s in graph.steps if isinstance(s, Const)] == [Const(Fraction(3), 5)]
    assert graph.inputs == (("x", 0), ("z", 1))
    assert graph.reaches_output == (True, False, True, True, True)


def test_build_refuses_an_intermediate_that_depends_on_no_input() -> None:
    with pytest.raises(ExpressionError, match="'c' does not depend on any input") as err:
        build(parse("c = 2 * 3.5 + tanh(1); c * x"))
    assert err.value.col == 13  # the `+` that makes c


def test_equal_text_gives_equal_graphs_and_different_text_different_ones() -> None:
    a = build(parse("a = x*y; a + x"))
    b = build(parse("a = x * y;  a + x"))  # another spelling: another program, the same graph
    assert a is not b and a.program != b.program
    assert a == b and hash(a) == hash(b) and a.key == b.key
    assert {a: 1}[b] == 1
    different = [build(parse(t)) for t in ("a = x*y; a - x", "b = x*y; b + x", "a = y*x; a + y", "x*y + x")]
    assert all(d != a for d in different)
    assert len({d.key for d in different}) == len(different)
    assert build(parse("x + 0.1")) != build(parse("x + 0.10000000000000001"))  # 1/10 is not the float


def test_the_key_names_every_step_output_and_name() -> None:
    graph = build(parse("a = x * 0.25; exp(a)"))
    assert graph.key.splitlines() == ["input x", "const 1/4", "mul 0 1", "exp 2", "output 3", "inputs x=0",
                                      "intermediates a=2"]


def test_builder_interns_leaves_and_constants_and_records_names() -> None:
    b = GraphBuilder()
    x = b.leaf("x")
    assert b.leaf("x") == x
    half = b.const(Fraction(1, 2))
    assert b.const(Fraction(1, 2)) == half
    out = b.apply("mul", (x, half))
    b.name("m", out)
    graph = b.graph(Program("by hand", (), Name("m"), ("x",)), out)
    assert graph.steps == (Leaf("x"), Const(Fraction(1, 2)), Apply("mul", (0, 1)))
    assert graph.intermediates == (("m", 2),)
    assert graph == build(parse("m = x * 0.5; m"))  # the same content, whatever the columns


def test_rooted_at_moves_the_output_and_keeps_the_steps() -> None:
    graph = build(parse("a = x + 1; a * a"))
    sub = graph.rooted_at(2)
    assert sub.steps == graph.steps and sub.output == 2 and sub.intermediates == ()
    assert sub != graph


def test_unroll_chains_the_step_program_without_recursion() -> None:
    graph = unroll(parse("x"), parse("z * y + 1"), "z", 3, ("x", "y"))
    ops = [s.op for s in graph.steps if isinstance(s, Apply)]
    assert ops == ["mul", "add"] * 3
    assert graph.depth == 6
    assert [s for s in graph.steps if isinstance(s, Const)] == [Const(Fraction(1), 9)]
    assert graph.program.source == "z = x; repeat 3: z = z * y + 1"
    assert unroll(parse("x"), parse("z * y + 1"), "z", 4, ("x", "y")) != graph


def test_printer_writes_steps_subexpressions_and_labels() -> None:
    graph = build(parse("a = x * y; b = -a + 0.1; tanh(b) / (b ** 2)"))
    assert subexpression(graph, graph.output) == "tanh(((-(x * y)) + 0.1)) / (((-(x * y)) + 0.1) ** 2)"
    assert subprogram(graph, graph.output) == "a = x * y; b = (-a) + 0.1; tanh(b) / (b ** 2)"
    assert label(graph, 2) == "a = x * y"
    assert label(graph, graph.output) == "tanh(b) / (b ** 2)"
    assert short(graph, 2) == "a" and short(graph, 3) == "(-(x * y))"
    assert step_text(graph, 2) == "mul(x, y)"
    assert build(parse(subprogram(graph, graph.output))) == graph


def test_number_is_the_shortest_exact_text() -> None:
    assert [number(Fraction(v)) for v in ("3", "-2", "1/10", "1/3")] == ["3", "-2", "0.1", "(1/3)"]
    assert Fraction(number(Fraction(1, 10))) == Fraction(1, 10)


def test_a_graph_is_not_equal_to_other_things() -> None:
    graph = build(parse("x + 1"))
    assert graph != "input x\nconst 1/1\nadd 0 1\noutput 2\ninputs x=0\nintermediates "
    assert isinstance(graph, Graph)
