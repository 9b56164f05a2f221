"""What a function case's ``function:`` may name, checked twice: before anything is imported, and after.

A case file's ``function: {torch: "mypkg.ops:fused_softmax"}`` is a pointer to code, and running the case
runs that code, as running a test file does. Case files may come from people the user does not control,
so a target is held to what a function under test is:

- :func:`locate`, at load time (``gradspec validate``, pytest's collection), imports nothing. The text
  must be ``module.path:attribute``; the module must not be in Python's standard library (``os:system``,
  ``subprocess:getoutput``, ``antigravity:x``) or a builtin; it must be found, and its source, where it
  has one, must define the attribute's first name at top level (read with :mod:`ast`, never run).
  ``importlib.util.find_spec("a.b")`` would import the package ``a`` to find ``b``; here only the top
  level goes through ``find_spec`` (which imports nothing for a top-level name), and each further part
  is looked up with :class:`importlib.machinery.PathFinder` in the folders of the package above it.
- :func:`accept`, at run time, after the import: the object must be a function (or a method) written
  outside the standard library, or a differentiable-function object of the library it is filed under: a
  ``torch.autograd.Function`` subclass (its ``apply`` is called), a ``torch.nn.Module`` or a torch
  builtin under ``torch``; a ``jax.custom_vjp``/``custom_jvp`` or a jitted function under ``jax``.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import inspect
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gradspec.engines.paths import importable
from gradspec.errors import EngineError

__all__ = ["accept", "locate"]

_TARGET = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_STDLIB = frozenset(sys.stdlib_module_names) | frozenset(sys.builtin_module_names)
_LIBRARIES = {"torch": ("torch",), "jax": ("jax", "jaxlib")}  # whose own objects may stand under each key
_RUNS_CODE = "a function case runs the code it names"


def _in_stdlib(module: str | None) -> bool:
    return bool(module) and str(module).split(".")[0] in _STDLIB


def locate(target: str, base: str = ".") -> str | None:
    """Why ``target`` cannot be a function under test, found without importing anything; None if none."""
    if not _TARGET.match(target):
        return f"expected 'module.path:function' (dotted names, one colon), got {target!r}"
    module, _, attr = target.partition(":")
    if _in_stdlib(module):
        return (f"{target!r} is in Python's standard library; {_RUNS_CODE}, and gradspec runs only functions "
                f"written to be checked (a module of yours or of the library the case is for)")
    parts = module.split(".")
    with importable(Path(base).resolve()):
        try:
            spec = importlib.util.find_spec(parts[0])  # a top-level name: nothing is imported to find it
        except (ImportError, ValueError) as exc:
            return f"cannot find module {parts[0]!r}: {exc}"
        for i, part in enumerate(parts[1:], 1):
            if spec is None:
                break
            if spec.submodule_search_locations is None:
                return f"{'.'.join(parts[:i])!r} is a module, not a package: it has no {part!r}"
            spec = importlib.machinery.PathFinder.find_spec(".".join(parts[: i + 1]),
                                                            list(spec.submodule_search_locations))
    if spec is None:
        return (f"no module named {module!r} (gradspec looks in the current directory, the project root and the "
                f"installed packages)")
    return _defines(spec, module, attr.split(".")[0])


def _defines(spec: importlib.machinery.ModuleSpec, module: str, name: str) -> str | None:
    """Why the module's source does not define ``name`` at top level (read, not run); None when it does,
    or when there is no source to read (an extension module) or a ``*`` import may bring it."""
    origin = spec.origin
    if not origin or not origin.endswith(".py"):
        return None
    try:
        tree = ast.parse(Path(origin).read_bytes(), origin)
    except (OSError, SyntaxError, ValueError) as exc:
        return f"cannot read module {module!r} ({origin}): {type(exc).__name__}: {exc}"
    names: set[str] = set()
    for node in ast.walk(tree):  # any binding, conditional or not: the check is for typos, not for proof
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            if any(a.name == "*" for a in node.names):
                return None
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    if name in names or (spec.submodule_search_locations is not None and
                         importlib.machinery.PathFinder.find_spec(f"{module}.{name}",
                                                                  list(spec.submodule_search_locations))):
        return None
    return f"module {module!r} ({origin}) defines no {name!r}"


def accept(found: Any, family: str, target: str) -> Callable[..., Any]:
    """The callable to run for ``found``, imported from ``target`` for the engine family ``family``;
    :class:`EngineError` says why it is not a function under test."""
    owner = getattr(found, "__module__", None)  # where it was defined (an instance: its class's module)
    if _in_stdlib(owner):
        raise EngineError(f"{target!r} is {_what(found)} from Python's standard library ({owner or 'builtins'}); "
                          f"{_RUNS_CODE}, and gradspec runs only functions written to be checked")
    if inspect.isfunction(found) or (inspect.ismethod(found) and inspect.isfunction(found.__func__)):
        function: Callable[..., Any] = found
        return function
    roots = _LIBRARIES.get(family, ())
    if family == "torch":
        import torch

        if isinstance(found, type) and issubclass(found, torch.autograd.Function):
            applied: Callable[..., Any] = found.apply
            return applied
        if isinstance(found, torch.nn.Module) or (inspect.isbuiltin(found) and str(owner).split(".")[0] in roots):
            module: Callable[..., Any] = found
            return module
    if roots and callable(found) and type(found).__module__.split(".")[0] in roots:
        wrapped: Callable[..., Any] = found  # jax.custom_vjp, custom_jvp, a jitted function
        return wrapped
    allowed = {"torch": "a function, a torch.autograd.Function subclass or a torch.nn.Module",
               "jax": "a function, a jax.custom_vjp or custom_jvp, or a jitted function"}
    raise EngineError(f"{target!r} is {_what(found)}, not {allowed.get(family, 'a function')} for {family}")


def _what(found: Any) -> str:
    if isinstance(found, type):
        return f"the class {found.__qualname__}"
    return f"a {type(found).__name__}"
