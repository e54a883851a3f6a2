"""Where a benchmark definition comes from: references, loading by module or file, and the hash of its source.

A user names a benchmark as ``NAME`` (built-in or entry point), ``package.module:ATTR`` or
``path/to/file.py:ATTR``. A run spec records a non-built-in benchmark by a *source* string the
worker (in a subprocess or container) loads the same way: ``module:package.module:ATTR``,
``entry-point:package.module:ATTR`` or ``file:/absolute/path.py:ATTR``. Loading a definition
imports the plugin's module (never TensorFlow: build functions import Keras when they run) and
records its :class:`Origin`: the kind, the file, the sha256 of the file's bytes and the
distribution version when the module belongs to an installed distribution. Every failure is one
:class:`~harness.errors.ConfigError` line.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from harness.errors import ConfigError

KINDS = ("built-in", "entry-point", "module", "file")
SOURCE_KINDS = ("entry-point", "module", "file")  # the kinds a run spec records a source for
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class Origin:
    """Where a loaded definition came from (what ``tfparity list`` shows and every result records)."""

    kind: str  # one of KINDS
    ref: str  # "package.module:ATTR" or "/abs/path.py:ATTR"
    file: str | None  # the source file that defines it
    sha256: str | None  # sha256 of that file's bytes
    version: str | None  # the distribution's version (tfparity's for built-ins), when known
    distribution: str | None = None

    @property
    def source(self) -> str | None:
        """The string a RunSpec records (None for built-ins: the harness itself defines them)."""
        return None if self.kind == "built-in" else f"{self.kind}:{self.ref}"

    def describe(self) -> str:
        """One line for ``tfparity list``."""
        sha = f", sha256 {self.sha256[:12]}" if self.sha256 else ""
        dist = f" ({self.distribution} {self.version})" if self.distribution else ""
        return f"{self.kind}: {self.ref}{dist}{sha}"


@dataclass(frozen=True)
class Reference:
    """A parsed reference: a module or a file, and the attribute holding the definition."""

    kind: str  # "module" | "file" | "entry-point"
    target: str  # dotted module name, or an absolute file path
    attr: str

    @property
    def ref(self) -> str:
        return f"{self.target}:{self.attr}"


def parse_user_reference(text: str) -> Reference | None:
    """``NAME`` -> None (a name to look up); ``module:ATTR`` / ``path.py:ATTR`` -> a Reference."""
    if not isinstance(text, str) or not text:
        raise ConfigError(f"benchmark must be NAME, module:NAME or path/to/file.py:NAME, got {text!r}")
    if ":" not in text:
        return None
    target, _, attr = text.rpartition(":")
    if not _IDENTIFIER.match(attr):
        raise ConfigError(f"benchmark {text!r}: after ':' comes the name of the definition in the module, got {attr!r}")
    if target.endswith(".py") or "/" in target or os.sep in target:
        return Reference("file", str(Path(target).expanduser().resolve()), attr)
    if not _MODULE.match(target):
        raise ConfigError(f"benchmark {text!r}: {target!r} is neither a module name nor a path to a .py file")
    return Reference("module", target, attr)


def parse_source(source: str) -> Reference:
    """The Reference of a RunSpec's ``benchmark_source`` (``kind:target:ATTR``)."""
    kind, sep, rest = source.partition(":") if isinstance(source, str) else ("", "", "")
    target, _, attr = rest.rpartition(":")
    valid = bool(sep) and kind in SOURCE_KINDS and bool(target) and bool(_IDENTIFIER.match(attr))
    if valid and kind == "file":
        valid = os.path.isabs(target) and target.endswith(".py")
    elif valid:
        valid = bool(_MODULE.match(target))
    if not valid:
        raise ConfigError(
            "benchmark_source must be 'module:package.module:NAME', 'entry-point:package.module:NAME' or "
            f"'file:/absolute/path.py:NAME', got {source!r}"
        )
    return Reference(kind, target, attr)


def load(reference: Reference) -> tuple[Any, Origin]:
    """Import the reference's module and return (its attribute, the Origin); one-line errors."""
    shown = reference.ref
    module = _load_file(reference.target) if reference.kind == "file" else _import_module(reference.target, shown)
    try:
        value = getattr(module, reference.attr)
    except AttributeError:
        found = sorted(n for n, v in vars(module).items() if type(v).__name__ == "Benchmark" and not n.startswith("_"))
        raise ConfigError(
            f"benchmark {shown!r}: {reference.target!r} has no attribute {reference.attr!r}"
            + (f"; it defines {', '.join(found)}" if found else "")
        ) from None
    file = getattr(module, "__file__", None)
    distribution, version = distribution_of(reference.target) if reference.kind != "file" else (None, None)
    origin = Origin(reference.kind, reference.ref, file, file_sha256(file), version, distribution)
    return value, origin


def file_sha256(path: str | None) -> str | None:
    """sha256 of a file's bytes (None when there is no readable file)."""
    if not path:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def distribution_of(module: str) -> tuple[str | None, str | None]:
    """The installed distribution that provides a module's top-level package, and its version."""
    top = module.split(".")[0]
    try:
        dists = importlib.metadata.packages_distributions().get(top) or []
        if not dists:
            return None, None
        return dists[0], importlib.metadata.version(dists[0])
    except (importlib.metadata.PackageNotFoundError, OSError, ValueError):
        return None, None


def _import_module(name: str, shown: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == name or name.startswith(exc.name + ".")):
            raise ConfigError(
                f"benchmark {shown!r}: no module named {name!r} (install it, or put its directory on PYTHONPATH)"
            ) from None
        raise ConfigError(f"benchmark {shown!r}: importing {name!r} failed: {_failure(exc, None)}") from None
    except Exception as exc:  # a plugin's import error is the user's, in one line
        raise ConfigError(f"benchmark {shown!r}: importing {name!r} failed: {_failure(exc, None)}") from None


def _load_file(path: str) -> ModuleType:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"benchmark file {path!r} does not exist")
    # One module per file content: the same file loaded twice is one module, an edited file a new one.
    digest = file_sha256(path) or "unreadable"
    name = f"tfparity_plugin_{re.sub(r'[^A-Za-z0-9_]', '_', file.stem)}_{digest[:12]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ConfigError(f"benchmark file {path!r} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look their module up here
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[name]
        raise ConfigError(f"benchmark file {path!r} line {exc.lineno}: SyntaxError: {exc.msg}") from None
    except Exception as exc:  # a plugin's import error is the user's, in one line
        del sys.modules[name]
        raise ConfigError(f"benchmark file {path!r} failed to import: {_failure(exc, path)}") from None
    return module


def _failure(exc: BaseException, path: str | None) -> str:
    """``Type: message`` plus the plugin's own line where it happened (the last frame in its file)."""
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if path is not None and os.path.realpath(f.filename) == os.path.realpath(path)]
    if own:
        where = f" (line {own[-1].lineno})"
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0] if message else ''}".rstrip(": ") + where
