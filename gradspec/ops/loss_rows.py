"""The tensor ops of one group of the op table: losses (mse_loss, nll_loss, binary_cross_entropy, kl_div, ...).

Each row is a :class:`~gradspec.ops.row.TensorOp`; :mod:`gradspec.ops.table` joins the groups into
``TENSOR_OPS``. Their element-wise definitions are in :mod:`gradspec.ops.lowering`.
"""

from __future__ import annotations

from gradspec.ops.row import TensorOp

__all__ = ["ROWS"]

ROWS: tuple[TensorOp, ...] = ()
