"""Engines named by a spec: ``builtin``, an adapter (``torch:float32``), an entry point, a Value class or
an engine in a module or a file (``pkg.mod:Value``, ``path/to/eng.py:Value``), or a configured name.

:func:`resolve` is the one place a spec becomes an :class:`~gradspec.engines.protocol.Engine`.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from gradspec.engines.named import NamedEngine
from gradspec.engines.paths import import_module
from gradspec.engines.protocol import Engine, ValueClassEngine
from gradspec.errors import EngineError

__all__ = ["ADAPTERS", "resolve"]

_ADAPTERS = {"torch": "gradspec.engines.adapters.torch", "jax": "gradspec.engines.adapters.jax", "tinygrad": "gradspec.engines.adapters.tinygrad",
             "micrograd": "gradspec.engines.adapters.micrograd"}
ADAPTERS: tuple[str, ...] = tuple(_ADAPTERS)  # the libraries gradspec has an adapter for, as --engine names them


def resolve(spec: str | Engine | type | NamedEngine) -> Engine:
    """An engine from a spec.

    ``builtin``; ``torch``, ``torch:float32``, ``torch:cuda``, ``torch:cuda:float32``; ``jax``,
    ``jax:float32``; ``tinygrad``, ``tinygrad:float32``; ``micrograd``; a name registered under the
    ``gradspec.engines`` entry-point group; ``module.path:Name`` (a Value class, an :class:`Engine`
    subclass or instance); a :class:`NamedEngine`; or a Value class or engine object itself.
    """
    if isinstance(spec, Engine):
        return spec
    if isinstance(spec, NamedEngine):
        return _named(spec)
    if isinstance(spec, type):
        return spec() if issubclass(spec, Engine) else ValueClassEngine(spec)
    if not isinstance(spec, str):
        raise EngineError(f"not an engine: {spec!r}")
    if spec == "builtin":
        from gradspec.engine import Value

        return ValueClassEngine(Value, "builtin")
    head, _, options = spec.partition(":")
    if head in _ADAPTERS:
        adapter: Engine = importlib.import_module(_ADAPTERS[head]).create(options)
        return adapter
    registered = _registered(head)
    if registered is not None:
        made = registered(options) if options else registered()
        return resolve(made)
    return _from_module(spec)


def _registered(name: str) -> Any:
    for ep in entry_points(group="gradspec.engines"):
        if ep.name == name:
            try:
                return ep.load()
            except Exception as exc:  # a broken plugin is the user's to see, not a crash
                raise EngineError(f"engine {name!r} from entry point {ep.value!r} failed to load: {exc}") from exc
    return None


def _named(spec: NamedEngine) -> Engine:
    key = f"tool.gradspec.engine.{spec.name}"
    try:
        engine = resolve(spec.target) if not spec.renamed else _from_module(spec.target, spec)
    except EngineError as exc:
        raise EngineError(f"{key}.class: {exc.message}", path=spec.where) from exc
    if spec.renamed and not isinstance(engine, ValueClassEngine):
        raise EngineError(f"{key}: data, grad and methods rename a Value class's attributes, and "
                          f"{spec.target!r} is not a Value class", path=spec.where)
    engine.name = spec.name
    return engine


def _from_module(spec: str, named: NamedEngine | None = None) -> Engine:
    module_name, sep, attr = spec.rpartition(":")  # the last colon: a Windows path has one of its own
    if not sep or not module_name or not attr:
        known = ", ".join(["builtin", *_ADAPTERS])
        raise EngineError(f"unknown engine {spec!r}; use one of {known}, 'module.path:ClassName' or "
                          f"'path/to/file.py:ClassName'")
    try:
        module = import_module(module_name)
    except Exception as exc:  # an engine module that fails to import is the user's error to see
        raise EngineError(f"cannot import engine module {module_name!r}: {type(exc).__name__}: {exc}"
                          f"{_import_hint(module_name, exc)}") from exc
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise EngineError(f"module {module_name!r} has no {attr!r}")
    if isinstance(target, Engine):
        return target
    if isinstance(target, type):
        if issubclass(target, Engine) and named is None:
            return target()
        renamed = dict(named.methods) if named else {}
        backward = renamed.get("backward", "backward")
        if not issubclass(target, Engine) and all(hasattr(target, a) for a in (backward, "__add__", "__mul__")):
            if named is None:
                return ValueClassEngine(target, spec)
            return ValueClassEngine(target, named.name, data=named.data, grad=named.grad, methods=renamed)
        raise EngineError(f"{spec!r} is not a Value class: it needs {backward}(), + and *")
    raise EngineError(f"{spec!r} is neither a Value class nor an engine")


def _import_hint(module_name: str, exc: Exception) -> str:
    """What to do when an engine module is not found: where gradspec looked, and how to add a place."""
    if not isinstance(exc, ModuleNotFoundError) or exc.name is None:
        return ""
    if module_name != exc.name and not module_name.startswith(exc.name + "."):
        return f" (the module itself imports {exc.name!r}, which is not installed)"
    top = module_name.split(".")[0]
    return (f" (gradspec looks in the current directory and the installed packages: run it from the folder "
            f"that holds {top}.py or the {top}/ package, add that folder to PYTHONPATH, or pip install the "
            f"package that provides it)")
