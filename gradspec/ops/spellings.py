"""How PyTorch, JAX, tinygrad and a Value class spell the special-function and activation rows of the op
table (:mod:`gradspec.ops.special_rows`) where that is more than naming one library function.

Each spelling is given the library module an adapter passes, the operands and the keyword values (floats
and strings) and returns the library's result. A library function is named by its dotted path from that
module (:func:`lib`) or, with a leading ".", as a method of the first operand. Where a library has no
function of its own for an op (JAX has no tanhshrink, no hardshrink), the op is written as the library's
users write it, from the library's own functions, in the form torch documents for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gradspec.ops.special import COMPARE

__all__ = ["jax_hardshrink", "jax_hardtanh", "jax_logit", "jax_prelu", "jax_softplus", "jax_softshrink",
           "jax_special", "jax_tanhshrink", "jax_threshold", "jax_where", "lib", "same", "swapped", "tinygrad_softplus",
           "tinygrad_where", "torch_clamp", "torch_logit", "torch_prelu", "torch_where", "value_where"]

Args = Sequence[Any]
Spelling = Callable[[Any, Args, dict[str, Any]], Any]


def lib(path: str, **names: str) -> Spelling:
    """A library call ``path(*operands, lib_kw=our_kw, ...)``; ``names`` maps the library's keyword names
    to the op's (tinygrad's ``neg_slope`` is ``negative_slope``)."""

    def call(module: Any, a: Args, kw: dict[str, Any]) -> Any:
        target: Any = a[0] if path.startswith(".") else module
        for part in path.strip(".").split("."):
            target = getattr(target, part)
        operands = a[1:] if path.startswith(".") else a
        return target(*operands, **{library: kw[ours] for library, ours in names.items()})

    return call


def swapped(path: str) -> Spelling:
    """A symmetric binary method (maximum) called on whichever operand is a tensor."""
    method = lib(path)

    def call(module: Any, a: Args, kw: dict[str, Any]) -> Any:
        return method(module, a if isinstance(a[0], module.Tensor) else a[::-1], kw)

    return call


def same(*names: str) -> dict[str, str]:
    """Keywords the library names as the op does."""
    return {n: n for n in names}


# -- torch -------------------------------------------------------------------------------------------------


def torch_where(t: Any, a: Args, kw: dict[str, Any]) -> Any:
    cond = COMPARE[kw["cmp"]][0](a[0], a[1])
    if isinstance(cond, bool):  # a comparison of constants
        return a[2] if cond else a[3]
    return t.where(cond, a[2], a[3])


def torch_clamp(t: Any, a: Args, kw: dict[str, Any]) -> Any:
    return t.clamp(a[0], min=kw["min"], max=kw["max"])


def torch_prelu(t: Any, a: Args, kw: dict[str, Any]) -> Any:
    """torch.nn.functional.prelu applies a weight of C elements along axis 1 of x; gradspec's prelu broadcasts
    w against x as every binary op does, so x and w are broadcast and laid out as one row of channels, each
    element with its own weight."""
    x, w = t.broadcast_tensors(a[0], a[1])
    return t.nn.functional.prelu(x.reshape(1, -1), w.reshape(-1)).reshape(x.shape)


def torch_logit(t: Any, a: Args, kw: dict[str, Any]) -> Any:
    return t.logit(a[0]) if kw["eps"] is None else t.logit(a[0], eps=kw["eps"])


# -- JAX ---------------------------------------------------------------------------------------------------


def jax_softplus(j: Any, a: Args, kw: dict[str, Any]) -> Any:
    # jax.nn.softplus has neither beta nor threshold; torch's threshold is spelled with jnp.where.
    beta, x = kw["beta"], a[0]
    return j.numpy.where(beta * x > kw["threshold"], x, j.nn.softplus(beta * x) / beta)


def jax_hardtanh(j: Any, a: Args, kw: dict[str, Any]) -> Any:
    if (kw["min_val"], kw["max_val"]) == (-1.0, 1.0):
        return j.nn.hard_tanh(a[0])
    # jax.nn.hard_tanh's bounds are fixed at -1 and 1; other bounds as it is written, with jnp.where.
    x = a[0]
    return j.numpy.where(x > kw["max_val"], kw["max_val"], j.numpy.where(x < kw["min_val"], kw["min_val"], x))


def jax_where(j: Any, a: Args, kw: dict[str, Any]) -> Any:
    cond = COMPARE[kw["cmp"]][0](a[0], a[1])
    if isinstance(cond, bool):  # a comparison of constants
        return a[2] if cond else a[3]
    return j.numpy.where(cond, a[2], a[3])


def jax_special(name: str) -> Spelling:
    def spelled(j: Any, a: Args, kw: dict[str, Any]) -> Any:
        import jax.scipy.special  # noqa: F401  (loads the submodule that j.scipy.special names)

        return getattr(j.scipy.special, name)(*a)
    return spelled


def jax_tanhshrink(j: Any, a: Args, kw: dict[str, Any]) -> Any:
    return a[0] - j.numpy.tanh(a[0])  # torch.nn.functional.tanhshrink's own definition


def jax_hardshrink(j: Any, a: Args, kw: dict[str, Any]) -> Any:
    x, lambd = a[0], kw["lambd"]
    return j.numpy.where((x >= -lambd) & (x <= lambd), 0.0, x)


def jax_softshrink(j: Any, a: Args, kw: dict[str, Any]) -> Any:
    x, lambd = a[0], kw["lambd"]
    return j.numpy.where(x > lambd, x - lambd, j.numpy.where(x < -lambd, x + lambd, 0.0))


def jax_threshold(j: Any, a: Args, kw: dict[str, Any]) -> Any:
    return j.numpy.where(a[0] > kw["threshold"], a[0], kw["value"])


def jax_prelu(j: Any, a: Args, kw: dict[str, Any]) -> Any:
    return j.numpy.where(a[0] > 0, a[0], a[1] * a[0])  # JAX has no prelu: torch's kernel, x > 0 ? x : w*x


def jax_logit(j: Any, a: Args, kw: dict[str, Any]) -> Any:
    # jax.scipy.special.logit has no eps: torch's clamp of the input to [eps, 1 - eps] is jnp.clip
    import jax.scipy.special  # noqa: F401

    eps = kw["eps"]
    return j.scipy.special.logit(a[0] if eps is None else j.numpy.clip(a[0], eps, 1 - eps))


# -- tinygrad ----------------------------------------------------------------------------------------------


def tinygrad_softplus(tg: Any, a: Args, kw: dict[str, Any]) -> Any:
    x, beta = a[0], kw["beta"]
    return (x * beta > kw["threshold"]).where(x, x.softplus(beta))


def tinygrad_where(tg: Any, a: Args, kw: dict[str, Any]) -> Any:
    cond = COMPARE[kw["cmp"]][0](a[0], a[1])
    if isinstance(cond, bool):  # a comparison of constants
        return a[2] if cond else a[3]
    return cond.where(a[2], a[3])


# -- a Value class -----------------------------------------------------------------------------------------


def value_where(method: Callable[[str], Any], number: Callable[[Any], float], a: Args, kw: dict[str, Any]) -> Any:
    """A Value class's ``where(cond, a, b)``, with ``cond`` the comparison of the engine's own values."""
    return method("where")(COMPARE[kw["cmp"]][0](number(a[0]), number(a[1])), a[2], a[3])
