"""How PyTorch's OpInfo entries map onto gradspec's op table: one declarative entry per OpInfo name.

An :class:`Entry` says which gradspec op runs the OpInfo entry's function on torch (the row's own torch
spelling must be that same function, or one torch documents as its alias), how the entry's positional
parameters are named, which of them are the row's operands and which its keywords, and the values at
which a parameter gradspec has no keyword for is still the same function (``keepdim=False``). The
driver (:mod:`gradspec.tools.opinfo`) turns each OpInfo sample into a tensor case with this; a sample
the entry cannot express is skipped with the reason.

The table names rows that are not in the op table yet: such an entry counts as not covered ("gradspec
has no row for X") until the row lands, and then is covered with no change here.

Keyword specs are short strings, one per parameter, separated by spaces:

- ``dim>axis``: the parameter is the row's keyword ``axis`` (an absent or None value is left out);
- ``reduction>reduction=mean``: the same, and at torch's default (``mean``) it is left out, so a row
  without that keyword still takes the sample;
- ``keepdim=False``: gradspec has no such keyword; the sample is the same function only at that value;
- ``running_mean=*``: ignored whatever its value (it does not change the output);
- ``other.shape>shape``: the keyword is the shape of the tensor ``other`` (``expand_as``).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

__all__ = ["NOT_COVERED", "TABLE", "Entry", "Keyword"]


@dataclass(frozen=True)
class Keyword:
    """One OpInfo parameter that is not an operand: the row keyword it becomes (None: none) and torch's
    default (``Keyword.ANY``: ignored; ``Keyword.NONE``: no default, any value goes to the keyword)."""

    name: str
    to: str | None
    default: object

    ANY = "*"
    NONE = object()


@dataclass(frozen=True)
class Entry:
    """How one OpInfo entry becomes gradspec expressions.

    ``op`` is the gradspec op (a row of the op table, today or later); ``params`` OpInfo's positional
    parameters after the input, in order; ``operands`` the parameters that are the op's operands, in the
    row's order (``*name``: a list of tensors spread over variadic operands); ``keywords`` the specs of
    the module docstring; ``form`` an expression template over the operands by parameter name
    (``{input} + {other}``), else ``op(operands, keywords)``; ``outputs`` the outputs of a multi-output op
    judged (one case each); ``data`` the operands that are integer or boolean data (class targets,
    indices, conditions); ``wrap`` how OpInfo's gradcheck wrapper transforms the input (``sym``: ``a +
    aᵀ``, as ``gradcheck_wrapper_hermitian_input`` does); ``when`` a named condition on the sample
    (:data:`gradspec.tools.opinfo.CONDITIONS`); ``note`` what a reader of the listing should know.
    """

    op: str
    params: tuple[str, ...] = ()
    operands: tuple[str, ...] = ("input",)
    keywords: tuple[Keyword, ...] = ()
    form: str = ""
    outputs: tuple[int, ...] = ()
    forms: tuple[tuple[int, str], ...] = ()
    data: tuple[str, ...] = ()
    wrap: str = ""
    when: str = ""
    note: str = ""
    wrapper: str = field(default="", compare=False)  # OpInfo's gradcheck_wrapper this entry models


def _keywords(spec: str) -> tuple[Keyword, ...]:
    out = []
    for item in spec.split():
        name, _, default_text = item.partition("=")
        name, _, to = name.partition(">")
        if not default_text:
            default: object = Keyword.NONE
        elif default_text == Keyword.ANY:
            default = Keyword.ANY
        else:
            # The table's own literals (numbers, True, None, quoted strings), never case-file text.
            try:
                default = ast.literal_eval(default_text)
            except (ValueError, SyntaxError):
                default = default_text  # a bare word: a string default such as reduction=mean
        out.append(Keyword(name, to or None, default))
    return tuple(out)


def E(op: str, params: str = "", keywords: str = "", *, operands: str = "input", form: str = "",
      outputs: tuple[int, ...] = (), forms: tuple[tuple[int, str], ...] = (), data: str = "", wrap: str = "",
      when: str = "", note: str = "") -> Entry:
    wrapper = {"sym": "gradcheck_wrapper_hermitian_input"}.get(wrap, "")
    return Entry(op, tuple(params.split()), tuple(operands.split()), _keywords(keywords), form, outputs, forms,
                 tuple(data.split()), wrap, when, note, wrapper)


_EIGENVECTORS = "signs of eigenvectors fixed by gradspec's rule (docs/linalg.md)"
_SINGULAR_VECTORS = "signs of singular vectors fixed by gradspec's rule (docs/linalg.md)"
_UNARY = ["abs", "acos", "acosh", "asin", "asinh", "atan", "atanh", "cos", "cosh", "sin", "sinh", "tan", "tanh", "exp",
          "log", "log1p", "expm1", "sqrt", "rsqrt", "reciprocal", "square", "sign", "erf", "erfc", "sigmoid", "neg",
          "log2", "log10", "exp2", "deg2rad", "rad2deg", "sinc"]
_BINARY = {"add": "{input} + {other}", "sub": "{input} - {other}", "mul": "{input} * {other}",
           "div.no_rounding_mode": "{input} / {other}", "true_divide": "{input} / {other}"}
_BINARY_CALLS = {"atan2": "atan2", "maximum": "maximum", "minimum": "minimum", "logaddexp": "logaddexp",
                 "xlogy": "xlogy", "max.binary": "maximum", "min.binary": "minimum", "hypot": "hypot",
                 "logaddexp2": "logaddexp2"}
_ACTIVATIONS = {  # nn.functional name: (gradspec op, parameters after the input, keyword specs)
    "relu": ("relu", "inplace", "inplace=False"),
    "softplus": ("softplus", "beta threshold", "beta>beta threshold>threshold"),
    "logsigmoid": ("logsigmoid", "", ""),
    "elu": ("elu", "alpha inplace", "alpha>alpha inplace=False"),
    "selu": ("selu", "inplace", "inplace=False"),
    "celu": ("celu", "alpha inplace", "alpha>alpha inplace=False"),
    "gelu": ("gelu", "", "approximate>approximate"),
    "silu": ("silu", "inplace", "inplace=False"),
    "mish": ("mish", "inplace", "inplace=False"),
    "leaky_relu": ("leaky_relu", "negative_slope inplace", "negative_slope>negative_slope inplace=False"),
    "relu6": ("relu6", "inplace", "inplace=False"),
    "hardtanh": ("hardtanh", "min_val max_val inplace", "min_val>min_val max_val>max_val inplace=False"),
    "hardsigmoid": ("hardsigmoid", "inplace", "inplace=False"),
    "hardswish": ("hardswish", "inplace", "inplace=False"),
    "softsign": ("softsign", "", ""),
    "tanhshrink": ("tanhshrink", "", ""),
    "hardshrink": ("hardshrink", "lambd", "lambd>lambd"),
    "softshrink": ("softshrink", "lambd", "lambd>lambd"),
    "threshold": ("threshold", "threshold value inplace", "threshold>threshold value>value inplace=False"),
}
_REDUCE = "dim>axis keepdim=False dtype=None"
_LOSS = "size_average=None reduce=None reduction>reduction='mean'"
_FIRST = "its first output, which is what the op without the suffix returns"
_CONV = "stride>stride=1 padding>padding=0 dilation>dilation=1 groups>groups=1"

TABLE: dict[str, Entry] = {
    **{name: E(name) for name in _UNARY},
    **{name: E("add" if "+" in form else "sub" if "-" in form else "mul" if "*" in form else "div",
               "other", "alpha=1 rounding_mode=None", operands="input other", form=form,
               note="torch.true_divide is an alias of torch.div" if name == "true_divide" else "")
       for name, form in _BINARY.items()},
    **{name: E(op, "other", operands="input other",
               note=f"torch.{name.split('.')[0]}(a, b) is torch.{op}" if "." in name else "")
       for name, op in _BINARY_CALLS.items()},
    "pow": E("pow", "exponent", operands="input exponent", form="{input} ** {exponent}"),
    "clamp": E("clamp", "min max", "min>min max>max"),
    "logit": E("logit", "eps", "eps>eps"),
    "special.entr": E("entr"),
    "special.ndtr": E("ndtr"),
    "special.log_ndtr": E("log_ndtr"),
    "lgamma": E("lgamma"),
    "digamma": E("digamma"),
    "special.xlog1py": E("xlog1py", "other", operands="input other"),
    "__radd__": E("add", "other", operands="input other", form="{other} + {input}", note="x.__radd__(c) is c + x"),
    "__rmul__": E("mul", "other", operands="input other", form="{other} * {input}", note="x.__rmul__(c) is c * x"),
    "where": E("where", "condition other", operands="input condition other", data="condition",
               form="where({condition} > 0.5, {input}, {other})",
               note="the boolean condition is a 0/1 data input compared with 0.5"),
    **{f"nn.functional.{name}": E(op, params, kws) for name, (op, params, kws) in _ACTIVATIONS.items()},
    # -- reductions and scans -------------------------------------------------------------------------------
    "sum": E("sum", "dim keepdim dtype", _REDUCE),
    "mean": E("mean", "dim keepdim dtype", _REDUCE),
    "amax": E("max", "dim keepdim", "dim>axis keepdim=False", note="gradspec's max is spelled torch.amax"),
    "amin": E("min", "dim keepdim", "dim>axis keepdim=False", note="gradspec's min is spelled torch.amin"),
    "logsumexp": E("logsumexp", "dim keepdim", "dim>axis keepdim=False"),
    "prod": E("prod", "dim keepdim dtype", _REDUCE),
    "var": E("var", "dim unbiased keepdim", "dim>axis unbiased>correction correction>correction keepdim=False"),
    "var.unbiased": E("var", "unbiased", "unbiased>correction"),
    "std": E("std", "dim unbiased keepdim", "dim>axis unbiased>correction correction>correction keepdim=False"),
    "std.unbiased": E("std", "unbiased", "unbiased>correction"),
    "norm": E("norm", "p dim keepdim dtype", "p>ord dim>axis keepdim=False dtype=None"),
    "norm.inf": E("norm", "p dim keepdim dtype", "p>ord dim>axis keepdim=False dtype=None"),
    "cumsum": E("cumsum", "dim dtype", "dim>axis dtype=None"),
    "cumprod": E("cumprod", "dim dtype", "dim>axis dtype=None"),
    "logcumsumexp": E("logcumsumexp", "dim", "dim>axis"),
    "cummax": E("cummax", "dim", "dim>axis", outputs=(0,)),
    "cummin": E("cummin", "dim", "dim>axis", outputs=(0,)),
    "sort": E("sort", "dim descending", "dim>axis descending>descending stable=*", outputs=(0,)),
    "msort": E("sort", form="sort({input}, axis=0)", outputs=(0,), note="msort(x) is sort(x, dim=0)[0]"),
    "topk": E("topk", "k dim largest sorted", "k>k dim>axis largest=True sorted=True", outputs=(0,)),
    # -- indexing and shape -----------------------------------------------------------------------------------
    "reshape": E("reshape", "shape", "shape>shape"),
    "reshape_as": E("reshape", "other", "other.shape>shape", note="x.reshape_as(y) is x.reshape(y.size())"),
    "transpose": E("transpose", "dim0 dim1", "dim0=* dim1=*", when="last-two-axes"),
    "permute": E("permute", "dims", "dims>axes"),
    "gather": E("gather", "dim index", "dim>axis sparse_grad=False", operands="input index", data="index"),
    "index_select": E("index_select", "dim index", "dim>axis", operands="input index", data="index"),
    "stack": E("stack", "dim", "dim>axis", operands="*input"),
    "cat": E("concat", "dim", "dim>axis", operands="*input"),
    "nn.functional.pad.constant": E("pad", "pad mode value", "pad>pad mode='constant' value>value"),
    "flip": E("flip", "dims", "dims>axis"),
    "roll": E("roll", "shifts dims", "shifts>shift dims>axis"),
    "tril": E("tril", "diagonal", "diagonal>k"),
    "triu": E("triu", "diagonal", "diagonal>k"),
    "diagonal": E("diagonal", "offset dim1 dim2", "offset=0 dim1=0 dim2=1"),
    "expand": E("expand", "size", "size>shape"),
    "expand_as": E("expand", "other", "other.shape>shape", note="x.expand_as(y) is x.expand(y.size())"),
    "squeeze": E("squeeze", "dim", "dim>axis"),
    "squeeze.multiple": E("squeeze", "dim", "dim>axis"),
    "unsqueeze": E("unsqueeze", "dim", "dim>axis"),
    "einsum": E("einsum", "equation", operands="*input", form="einsum", note="the equation is the first argument"),
    # -- layers ---------------------------------------------------------------------------------------------------
    "matmul": E("matmul", "other", operands="input other", form="{input} @ {other}"),
    "__rmatmul__": E("matmul", "other", operands="input other", form="{other} @ {input}",
                     note="x.__rmatmul__(y) is y @ x"),
    "softmax": E("softmax", "dim dtype", "dim>axis dtype=None"),
    "log_softmax": E("log_softmax", "dim dtype", "dim>axis dtype=None"),
    "nn.functional.layer_norm": E("layer_norm", "normalized_shape weight bias eps", "normalized_shape=* eps>eps",
                                  operands="input weight bias", when="last-axis-normalized"),
    "native_layer_norm": E("layer_norm", "normalized_shape weight bias eps", "normalized_shape=* eps>eps",
                           operands="input weight bias", when="last-axis-normalized", note=_FIRST),
    "nn.functional.rms_norm": E("rms_norm", "normalized_shape weight eps", "normalized_shape=* eps>eps",
                                operands="input weight", when="last-axis-normalized"),
    "nn.functional.batch_norm": E("batch_norm", "running_mean running_var weight bias training momentum eps",
                                  "running_mean=* running_var=* training=True momentum=* eps>eps",
                                  operands="input weight bias", note="with batch statistics (training=True)"),
    "nn.functional.batch_norm.without_cudnn": E(
        "batch_norm", "running_mean running_var weight bias training momentum eps",
        "running_mean=* running_var=* training=True momentum=* eps>eps", operands="input weight bias",
        note="with batch statistics (training=True)"),
    "native_batch_norm": E("batch_norm", "weight bias running_mean running_var training momentum eps",
                           "running_mean=* running_var=* training=True momentum=* eps>eps",
                           operands="input weight bias", note=_FIRST),
    "nn.functional.group_norm": E("group_norm", "num_groups weight bias eps", "num_groups>groups eps>eps",
                                  operands="input weight bias"),
    "nn.functional.instance_norm": E(
        "instance_norm", "running_mean running_var weight bias use_input_stats momentum eps",
        "running_mean=None running_var=None weight=None bias=None use_input_stats=True momentum=* eps>eps"),
    "nn.functional.prelu": E("prelu", "weight", operands="input weight", when="prelu-weight"),
    "nn.functional.linear": E("linear", "weight bias", operands="input weight bias"),
    "nn.functional.embedding": E("embedding", "weight padding_idx max_norm norm_type scale_grad_by_freq sparse",
                                 "padding_idx=None max_norm=None norm_type=2.0 scale_grad_by_freq=False sparse=False",
                                 operands="input weight", data="input"),
    "nn.functional.conv1d": E("conv1d", "weight bias stride padding dilation groups", _CONV,
                              operands="input weight bias"),
    "nn.functional.conv2d": E("conv2d", "weight bias stride padding dilation groups", _CONV,
                              operands="input weight bias"),
    "nn.functional.conv_transpose2d": E("conv_transpose2d", "weight bias stride padding output_padding groups dilation",
                                        _CONV + " output_padding=0", operands="input weight bias"),
    "nn.functional.avg_pool2d": E("avg_pool2d", "kernel_size stride padding ceil_mode count_include_pad divisor_override",
                                  "kernel_size>kernel stride>stride padding>padding=0 ceil_mode=False "
                                  "count_include_pad=True divisor_override=None"),
    "nn.functional.max_pool2d": E("max_pool2d", "kernel_size stride padding dilation ceil_mode return_indices",
                                  "kernel_size>kernel stride>stride padding>padding=0 dilation=1 ceil_mode=False "
                                  "return_indices=False"),
    "nn.functional.scaled_dot_product_attention": E(
        "scaled_dot_product_attention", "key value attn_mask dropout_p is_causal scale enable_gqa",
        "attn_mask>mask dropout_p=0.0 is_causal>causal scale>scale enable_gqa=False",
        operands="input key value"),
    # -- losses ---------------------------------------------------------------------------------------------------
    "nn.functional.cross_entropy": E("cross_entropy", "target weight size_average ignore_index reduce reduction "
                                     "label_smoothing", "weight=None ignore_index=-100 label_smoothing>label_smoothing=0.0 "
                                     + _LOSS, operands="input target", data="target"),
    "nn.functional.mse_loss": E("mse_loss", "target size_average reduce reduction", _LOSS,
                                operands="input target"),
    "nn.functional.l1_loss": E("l1_loss", "target size_average reduce reduction", _LOSS, operands="input target"),
    "nn.functional.smooth_l1_loss": E("smooth_l1_loss", "target size_average reduce reduction beta",
                                      _LOSS + " beta>beta", operands="input target"),
    "nn.functional.huber_loss": E("huber_loss", "target reduction delta", "reduction>reduction='mean' delta>delta",
                                  operands="input target"),
    "nn.functional.nll_loss": E("nll_loss", "target weight size_average ignore_index reduce reduction",
                                "weight=None ignore_index=-100 " + _LOSS, operands="input target", data="target"),
    "nn.functional.binary_cross_entropy": E("binary_cross_entropy", "target weight size_average reduce reduction",
                                            "weight=None " + _LOSS, operands="input target"),
    "nn.functional.binary_cross_entropy_with_logits": E(
        "binary_cross_entropy_with_logits", "target weight size_average reduce reduction pos_weight",
        "weight=None pos_weight=None " + _LOSS, operands="input target"),
    "nn.functional.kl_div": E("kl_div", "target size_average reduce reduction log_target",
                              _LOSS + " log_target>log_target", operands="input target"),
    # -- linear algebra -------------------------------------------------------------------------------------------
    "linalg.det": E("det"),
    "linalg.slogdet": E("slogdet", outputs=(1,), note="log|det| (the sign has no derivative)"),
    "linalg.inv": E("inv"),
    "linalg.inv_ex": E("inv", "", "check_errors=False", note=_FIRST),
    "linalg.solve": E("solve", "B", "left=True", operands="input B"),
    "linalg.solve_ex": E("solve", "B", "left=True check_errors=False", operands="input B", note=_FIRST),
    "linalg.cholesky": E("cholesky", "", "upper=False", wrap="sym"),
    "linalg.cholesky_ex": E("cholesky", "", "upper=False check_errors=False", wrap="sym", note=_FIRST),
    "cholesky_solve": E("cholesky_solve", "input2 upper", "upper>upper", operands="input input2"),
    "cholesky_inverse": E("cholesky_inverse", "upper", "upper>upper"),
    "linalg.solve_triangular": E("solve_triangular", "B", "upper>upper left=True unitriangular=False",
                                 operands="input B"),
    "linalg.lu_solve": E("lu_solve", "pivots B", "left=True adjoint=False", operands="input pivots B",
                         data="pivots"),
    "linalg.qr": E("qr", "mode", "mode='reduced'", outputs=(0, 1)),
    "linalg.eigh": E("eigh", "UPLO", "UPLO>uplo='L'", outputs=(0, 1), wrap="sym", note=_EIGENVECTORS),
    "linalg.eigvalsh": E("eigvalsh", "UPLO", "UPLO>uplo='L'", wrap="sym"),
    "linalg.svd": E("svd", "full_matrices driver", "full_matrices=* driver=None", outputs=(0, 1, 2),
                    when="reduced-or-square", note=_SINGULAR_VECTORS),
    "svd": E("svd", "some compute_uv", "some=* compute_uv=True", outputs=(0, 1, 2), forms=((2, "transpose({out})"),),
             when="some-or-square", note="torch.svd is torch.linalg.svd with V = Vh^T, compared as "
                                            "transpose(svd(x)[2]); " + _SINGULAR_VECTORS),
    "linalg.svdvals": E("svdvals"),
    "matrix_exp": E("matrix_exp"),
    "linalg.matrix_exp": E("matrix_exp", note="the same function as matrix_exp (torch 2.13 lists only that one)"),
    "linalg.pinv": E("pinv", "", "atol=None rtol=None hermitian=False rcond=None"),
    "linalg.matrix_power": E("matrix_power", "n", "n>n"),
}

#: Why some differentiable OpInfo entries are not in the table although a gradspec op looks close: its
#: torch spelling is another function, with a derivative of its own.
NOT_COVERED: dict[str, str] = {
    "max.reduction_with_dim": "torch.max(x, dim) returns indices too; gradspec's max is torch.amax",
    "max.reduction_no_dim": "gradspec's max is torch.amax, not torch.max",
    "min.reduction_with_dim": "torch.min(x, dim) returns indices too; gradspec's min is torch.amin",
    "min.reduction_no_dim": "gradspec's min is torch.amin, not torch.min",
    "softmax.with_dtype": "a dtype= cast inside the op",
    "log_softmax.with_dtype": "a dtype= cast inside the op",
    "rsub": "torch.rsub has a derivative of its own; gradspec's b - a runs torch.sub",
    "float_power": "torch.float_power casts to double first; gradspec's ** runs torch.pow",
    "mm": "torch.mm, not torch.matmul", "bmm": "torch.bmm, not torch.matmul",
    "view": "Tensor.view, not torch.reshape", "mT": "Tensor.mT, not gradspec's transpose",
    "cholesky": "torch.cholesky (deprecated), not torch.linalg.cholesky",
    "qr": "torch.qr (deprecated), not torch.linalg.qr",
    "lu_solve": "torch.lu_solve (deprecated), not torch.linalg.lu_solve",
}
