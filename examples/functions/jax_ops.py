"""A jax.custom_vjp: log(1 + exp(x)) (softplus) times a weight, and a jax.custom_jvp softplus, each correct
and with a planted bug."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


@jax.custom_vjp
def scaled_softplus(x: Any, w: Any) -> Any:
    return w * jnp.logaddexp(x, 0.0)


def _fwd(x: Any, w: Any) -> tuple[Any, tuple[Any, Any]]:
    return scaled_softplus(x, w), (x, w)


def _bwd(res: tuple[Any, Any], g: Any) -> tuple[Any, Any]:
    x, w = res
    return g * w * jax.nn.sigmoid(x), g * jnp.logaddexp(x, 0.0)


scaled_softplus.defvjp(_fwd, _bwd)


@jax.custom_vjp
def scaled_softplus_wrong_argument(x: Any, w: Any) -> Any:
    return w * jnp.logaddexp(x, 0.0)


def _bwd_wrong(res: tuple[Any, Any], g: Any) -> tuple[Any, Any]:
    x, w = res
    return g * w * jax.nn.sigmoid(-x), g * jnp.logaddexp(x, 0.0)  # the planted bug: sigmoid(-x), not sigmoid(x)


scaled_softplus_wrong_argument.defvjp(_fwd, _bwd_wrong)


@jax.custom_jvp
def softplus(x: Any) -> Any:
    """log(1 + exp(x)) with a forward-mode rule: JAX transposes the rule for reverse mode, so the JVP, the
    VJP and the Hessian-vector product all come from it."""
    return jnp.logaddexp(x, 0.0)


@softplus.defjvp
def _softplus_jvp(primals: tuple[Any], tangents: tuple[Any]) -> tuple[Any, Any]:
    (x,), (t,) = primals, tangents
    return softplus(x), jax.nn.sigmoid(x) * t


@jax.custom_jvp
def softplus_wrong_jvp(x: Any) -> Any:
    return jnp.logaddexp(x, 0.0)


@softplus_wrong_jvp.defjvp
def _softplus_wrong_jvp(primals: tuple[Any], tangents: tuple[Any]) -> tuple[Any, Any]:
    (x,), (t,) = primals, tangents
    return softplus_wrong_jvp(x), jax.nn.sigmoid(-x) * t  # the planted bug: sigmoid(-x), not sigmoid(x)
