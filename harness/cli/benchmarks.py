"""What ``tfparity run`` runs: benchmarks by name or reference, datasets by name or ``npz:PATH``, each
benchmark's default hyperparameters, and whether a benchmark accepts a dataset.

Every problem is one :class:`ConfigError`/:class:`DataError` line, found before anything is
written: a plugin that cannot be imported (:mod:`harness.spec.benchmarks.sources`), a bad npz file
(:mod:`harness.data.arrays`), a dataset whose samples do not fit the benchmark, labels beyond its
classes, a dataset another plugin provides.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError
from harness.spec.benchmarks import registry
from harness.spec.benchmarks.registry import Entry

__all__ = ["DataFacts", "DataKey", "Entry"]
from harness.spec.names import npz_dataset_name
from harness.spec.run_spec import RunSpec

NPZ_SCHEME = "npz:"
DataKey = tuple[str, str | None]  # (dataset name, npz file)


@dataclass(frozen=True)
class DataFacts:
    """What the plan needs to know of a loaded dataset."""

    sha256: str
    sample_shape: tuple[int, ...]
    n_classes: int
    n_train: int  # the training arrays' rows (validation split included): the split rule checks them


def resolve(texts: list[str]) -> dict[str, Entry]:
    """``--model``/``--benchmark`` values -> entries by benchmark name (plugins are imported here)."""
    entries: dict[str, Entry] = {}
    for text in texts:
        entry = registry.load_user_reference(text)
        entries[entry.benchmark.name] = entry
    return entries


def sources(entries: dict[str, Entry]) -> dict[str, str | None]:
    """RunSpec.benchmark_source of each benchmark (None for built-ins)."""
    return {name: entry.origin.source for name, entry in entries.items()}


def dataset_choices(texts: list[str]) -> tuple[list[str], dict[str, str | None]]:
    """``--dataset`` values -> dataset names, and the npz file of each ``npz:PATH`` by its dataset name."""
    chosen: list[str] = []
    files: dict[str, str | None] = {}
    for text in texts:
        if not text.startswith(NPZ_SCHEME):
            chosen.append(text)
            continue
        raw = text[len(NPZ_SCHEME) :]
        if not raw:
            raise ConfigError(f"--dataset {text!r}: give the path of an .npz file after 'npz:'")
        path = str(Path(raw).expanduser().resolve())
        name = npz_dataset_name(path)
        if files.get(name, path) != path:
            raise ConfigError(f"--dataset: {files[name]!r} and {path!r} both become dataset {name!r}; rename one")
        files[name] = path
        chosen.append(name)
    return list(dict.fromkeys(chosen)), files


def default_dataset(entries: dict[str, Entry]) -> str:
    """The dataset a plan uses when --dataset is not given: the benchmarks' common default."""
    defaults = {name: entry.benchmark.default_dataset for name, entry in entries.items()}
    if len(set(defaults.values())) > 1:
        which = ", ".join(f"{name}: {ds}" for name, ds in defaults.items())
        raise ConfigError(f"the benchmarks default to different datasets ({which}); choose with --dataset")
    return next(iter(defaults.values()), "mnist-5k")


def with_defaults(specs: list[RunSpec], entries: dict[str, Entry], explicit: set[str]) -> list[RunSpec]:
    """Each spec with its benchmark's default hyperparameters, except those the command line set."""
    out = []
    for spec in specs:
        fields = entries[spec.benchmark].benchmark.defaults.as_fields()
        out.append(spec.replace(**{k: v for k, v in fields.items() if k not in explicit}))
    return out


def check_accepts(specs: list[RunSpec], entries: dict[str, Entry], facts: dict[DataKey, DataFacts]) -> None:
    """Every spec's benchmark accepts its dataset (by name, or by sample shape) and its classes."""
    for spec in specs:
        bench = entries[spec.benchmark].benchmark
        data = facts[(spec.dataset, spec.dataset_file)]
        provider = registry.provider_of(spec.dataset)
        if provider is not None and provider != bench.name:
            raise ConfigError(
                f"dataset {spec.dataset!r} is provided by benchmark {provider!r} and can only be used with it; "
                "save its arrays to an .npz file and pass --dataset npz:PATH to use them with another benchmark"
            )
        named = spec.dataset in bench.datasets or spec.dataset == provider
        if not named and bench.input_shape is not None and data.sample_shape != bench.input_shape:
            accepted = ", ".join(bench.datasets) or "no named dataset"
            raise ConfigError(
                f"benchmark {bench.name!r} does not accept dataset {spec.dataset!r}: its samples have shape "
                f"{data.sample_shape}, the benchmark takes {bench.input_shape} (it accepts {accepted}, and any "
                "dataset of that shape)"
            )
        if bench.n_classes is not None and data.n_classes > bench.n_classes:
            raise ConfigError(
                f"dataset {spec.dataset!r} has labels 0..{data.n_classes - 1}, out of range for benchmark "
                f"{bench.name!r} ({bench.n_classes} classes, labels 0..{bench.n_classes - 1})"
            )


def entries_for(specs: list[RunSpec]) -> dict[str, Entry]:
    """The entries of planned (or resumed) specs; a resumed plugin is imported here, as on the first run."""
    return {spec.benchmark: registry.resolve(spec.benchmark, spec.benchmark_source) for spec in specs}


def definitions(entries: dict[str, Entry]) -> dict[str, dict[str, str | None]]:
    """What a suite manifest records of each definition (a resumed suite must run the same ones)."""
    return {
        name: {"origin": e.origin.kind, "ref": e.origin.ref, "sha256": e.origin.sha256} for name, e in entries.items()
    }


def check_unchanged(recorded: object, entries: dict[str, Entry], out_dir: Path) -> None:
    """Refuse to resume a suite whose plugin definitions changed since it started (its results would mix them)."""
    if not isinstance(recorded, dict):
        return  # a suite started before definitions were recorded
    for name, entry in entries.items():
        before = recorded.get(name)
        if isinstance(before, dict) and before.get("sha256") != entry.origin.sha256:
            raise ConfigError(
                f"benchmark {name!r} changed since suite {str(out_dir)!r} started (source sha256 "
                f"{str(before.get('sha256'))[:12]} -> {str(entry.origin.sha256)[:12]}); its results would mix two "
                "definitions: start a new suite"
            )
