"""A jax.custom_vjp: log(1 + exp(x)) (softplus) times a weight, correct and with a planted bug."""

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
