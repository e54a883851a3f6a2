"""The registry of benchmarks and of the datasets plugins provide: built-ins, entry points, loaded references.

Built-in definitions (:mod:`~harness.spec.benchmarks.mlp`, :mod:`~harness.spec.benchmarks.cnn`) are
registered at import; plugins are discovered through the ``tfparity.benchmarks`` entry-point group
(:mod:`importlib.metadata`, read once per process, loaded only when a name is asked for) or loaded
from a ``module:NAME`` / ``path/to/file.py:NAME`` reference. :data:`harness.spec.names.BENCHMARKS`
and ``DATASETS`` are live views of this registry, so names still come from one place. Names are
unique: a plugin that reuses a built-in's or another plugin's name is refused in one line, as is
one whose named datasets nobody provides.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
from dataclasses import dataclass

from harness import __version__
from harness.errors import ConfigError
from harness.spec.benchmarks import cnn, mlp
from harness.spec.benchmarks.api import Benchmark, DatasetDef
from harness.spec.benchmarks.sources import Origin, Reference, file_sha256, load, parse_source, parse_user_reference
from harness.spec.names import BUILTIN_DATASETS

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "tfparity.benchmarks"


@dataclass(frozen=True)
class Entry:
    """A registered benchmark and where it came from."""

    benchmark: Benchmark
    origin: Origin


def _builtin_entries() -> dict[str, Entry]:
    entries = {}
    for module, attrs in ((mlp, ("BASELINE", "BATCHNORM", "BATCHNORM_DROPOUT")), (cnn, ("CNN", "CNN_BATCHNORM"))):
        for attr in attrs:
            bench = getattr(module, attr)
            ref = f"{module.__name__}:{attr}"
            entries[bench.name] = Entry(bench, Origin("built-in", ref, module.__file__, file_sha256(module.__file__),
                                                      __version__, "tfparity"))  # fmt: skip
    return entries


BUILTIN: dict[str, Entry] = _builtin_entries()
_loaded: dict[str, Entry] = {}  # plugins loaded in this process, by benchmark name
_provided: dict[str, tuple[DatasetDef, str]] = {}  # dataset name -> (definition, providing benchmark)


@functools.cache
def entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    """The ``tfparity.benchmarks`` entry points of the installed distributions, by name (read once)."""
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in BUILTIN:
            log.warning("entry point %r (%s) is shadowed by the built-in benchmark of that name", ep.name, ep.value)
        elif ep.name not in found:
            found[ep.name] = ep
    return found


def benchmark_names() -> list[str]:
    """Every benchmark name known without importing a plugin: built-ins, entry points, loaded plugins."""
    return list(dict.fromkeys([*BUILTIN, *entry_points(), *_loaded]))


def is_known(name: str) -> bool:
    return name in BUILTIN or name in _loaded or name in entry_points()


def lookup(name: str) -> Entry:
    """The entry of a benchmark name (an entry point is loaded on first use); ConfigError if unknown."""
    if name in BUILTIN:
        return BUILTIN[name]
    if name in _loaded:
        return _loaded[name]
    ep = entry_points().get(name)
    if ep is None:
        raise ConfigError(
            f"benchmark must be one of {tuple(benchmark_names())} (or module:NAME / path/to/file.py:NAME), got {name!r}"
        )
    module, _, attr = ep.value.partition(":")
    return load_reference(Reference("entry-point", module.strip(), attr.strip()), expected_name=name)


def load_user_reference(text: str) -> Entry:
    """``--model``/``--benchmark`` TEXT: a name, ``module:NAME`` or ``path/to/file.py:NAME``."""
    ref = parse_user_reference(text)
    return lookup(text) if ref is None else load_reference(ref)


def resolve(name: str, source: str | None) -> Entry:
    """The entry a run spec means: a built-in or entry-point name, or the plugin its source names."""
    if source is None:
        return lookup(name)
    return load_reference(parse_source(source), expected_name=name)


def load_reference(ref: Reference, *, expected_name: str | None = None) -> Entry:
    """Load and register the definition a reference points to (once per process)."""
    value, origin = load(ref)
    if not isinstance(value, Benchmark):
        raise ConfigError(
            f"benchmark {ref.ref!r} is a {type(value).__name__}, not a harness.spec.benchmarks.Benchmark definition"
        )
    if expected_name is not None and value.name != expected_name:
        raise ConfigError(f"benchmark {ref.ref!r} is named {value.name!r}, expected {expected_name!r}")
    entry = Entry(value, origin)
    register(entry)
    return entry


def register(entry: Entry) -> None:
    """Add a loaded plugin and the datasets it provides; refuse name clashes and unknown dataset names."""
    name = entry.benchmark.name
    if name in BUILTIN:
        raise ConfigError(
            f"benchmark {entry.origin.ref!r} is named {name!r}, the name of a built-in benchmark; rename it"
        )
    known = _loaded.get(name)
    if known is not None and (known.origin.ref, known.origin.sha256) != (entry.origin.ref, entry.origin.sha256):
        raise ConfigError(
            f"two benchmarks are named {name!r}: {known.origin.ref!r} and {entry.origin.ref!r}; rename one of them"
        )
    _check_provided(entry)
    _loaded[name] = entry
    for dataset in entry.benchmark.provides:
        _provided[dataset.name] = (dataset, name)


def _check_provided(entry: Entry) -> None:
    bench = entry.benchmark
    for dataset in bench.provides:
        if dataset.name in BUILTIN_DATASETS:
            raise ConfigError(f"benchmark {bench.name!r} provides dataset {dataset.name!r}, a built-in dataset's name")
        owner = _provided.get(dataset.name)
        if owner is not None and owner[1] != bench.name:
            raise ConfigError(f"dataset {dataset.name!r} is provided by both {owner[1]!r} and {bench.name!r}")
    own = {d.name for d in bench.provides}
    for name in bench.datasets:
        if name not in BUILTIN_DATASETS and name not in own and name not in _provided:
            valid = [*BUILTIN_DATASETS, *own, *_provided]
            raise ConfigError(
                f"benchmark {bench.name!r} ({entry.origin.ref}) names unknown dataset {name!r}; "
                f"known datasets are {', '.join(dict.fromkeys(valid))}"
            )


def provided_datasets() -> dict[str, DatasetDef]:
    """Datasets provided by the plugins loaded in this process, by name."""
    return {name: definition for name, (definition, _owner) in _provided.items()}


def provider_of(dataset: str) -> str | None:
    """The benchmark whose plugin provides ``dataset`` (None for built-ins and unknown names)."""
    owner = _provided.get(dataset)
    return None if owner is None else owner[1]
