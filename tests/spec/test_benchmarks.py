"""The benchmark plugin API and registry, TF-free: definitions validate, names come from one registry,
plugins load from files, modules and entry points (real files, a real dist-info), and every failure is one line."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.spec import names
from harness.spec.benchmarks import Benchmark, Claim, DatasetDef, Defaults, registry
from harness.spec.benchmarks.sources import parse_source, parse_user_reference
from harness.spec.run_spec import RunSpec
from harness.spec.suites import get_suite
from tests.factories import plugin_file
from tests.helpers import ROOT, run_python

pytestmark = pytest.mark.usefixtures("fresh_registry")


def build(ctx: object) -> None:
    return None


def test_the_builtins_are_definitions_in_one_registry() -> None:
    assert list(names.BENCHMARKS) == ["baseline", "batchnorm", "batchnorm_dropout", "cnn", "cnn_batchnorm"]
    for name in names.BENCHMARKS:
        entry = registry.lookup(name)
        assert isinstance(entry.benchmark, Benchmark) and entry.origin.kind == "built-in"
        assert entry.origin.source is None  # a spec names a built-in by name alone
        assert entry.origin.sha256 == hashlib.sha256(Path(entry.origin.file).read_bytes()).hexdigest()
    # The seed's suites stay the seed's three models, whatever else is registered.
    assert get_suite("seed").benchmarks == ("baseline", "batchnorm", "batchnorm_dropout")
    assert registry.lookup("batchnorm_dropout").benchmark.uses_dropout_rate
    assert not registry.lookup("cnn").benchmark.uses_dropout_rate


def test_builtin_specs_serialise_as_before_plugins() -> None:
    # The run id hashes the spec: unchanged ids mean unchanged specs and resumable old suites.
    assert RunSpec(benchmark="baseline").run_id == "baseline-mnist-5k-cpu-fp32-s0-2a46d369"
    assert "benchmark_source" not in RunSpec().to_dict() and "dataset_file" not in RunSpec().to_dict()
    assert RunSpec(benchmark="cnn").hyperparameters["dropout_rate"] is None
    assert RunSpec(benchmark="batchnorm_dropout").hyperparameters["dropout_rate"] == 0.2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "../x"}, "benchmark name must be 1-128 characters"),
        ({"metrics": ("mae",)}, "metrics must include 'accuracy'"),
        ({"optimizer": "adamax2"}, "optimizer must be one of"),
        ({"input_shape": (28, 0)}, "input_shape must be a tuple of positive ints, got (28, 0)"),
        ({"description": "two\nlines"}, "description must be one line"),
        ({"build": "not callable"}, "build must be a callable, got 'not callable'"),
        ({"claims": ("big",)}, "claims must be a tuple of Claim"),
    ],
)
def test_a_bad_definition_is_refused_quoting_the_value(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {"name": "x", "description": "d", "build": build, **kwargs}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Benchmark(**fields)  # type: ignore[arg-type]


def test_claims_and_defaults_validate() -> None:
    with pytest.raises(ConfigError, match="give exactly one of value= and than="):
        Claim(kind="k", text="t", metric="test_accuracy", op=">", value=0.9, than="baseline")
    with pytest.raises(ConfigError, match="metric must be one of"):
        Claim(kind="k", text="t", metric="f1", op=">", value=0.9)
    with pytest.raises(ConfigError, match="defaults.epochs must be an integer >= 1, got 0"):
        Defaults(epochs=0)
    with pytest.raises(ConfigError, match="prefix 'npz-' is reserved"):
        DatasetDef(name="npz-x", description="d", arrays=dict)


@pytest.mark.parametrize(
    ("text", "kind", "target"),
    [("baseline", None, None), ("pkg.mod:NAME", "module", "pkg.mod"), ("sub/x.py:NAME", "file", "/sub/x.py")],
)
def test_references(text: str, kind: str | None, target: str | None) -> None:
    ref = parse_user_reference(text)
    if kind is None:
        assert ref is None
    else:
        assert ref is not None and ref.kind == kind and ref.attr == "NAME" and ref.target.endswith(str(target))


@pytest.mark.parametrize("source", ["file:rel/x.py:A", "module:9bad:A", "cloud:x:A", "file:/x.py:", "module:a.b"])
def test_bad_sources_are_refused(source: str) -> None:
    with pytest.raises(ConfigError, match="benchmark_source must be"):
        parse_source(source)


def test_a_file_plugin_loads_with_its_origin_and_runs_specs(tmp_path: Path) -> None:
    path = plugin_file(tmp_path)
    entry = registry.load_user_reference(f"{path}:TINY")
    assert entry.benchmark.name == "tiny" and entry.origin.kind == "file"
    assert entry.origin.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert entry.origin.source == f"file:{path}:TINY" and "tiny" in names.BENCHMARKS
    assert registry.load_user_reference(f"{path}:TINY") == entry == registry.lookup("tiny")  # loaded once
    spec = RunSpec(benchmark="tiny", benchmark_source=entry.origin.source)
    assert RunSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    # The plugin's dropout rate counts (its definition may not be loaded where results are compared).
    assert spec.hyperparameters["dropout_rate"] == 0.2


def test_a_module_plugin_loads_from_sys_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plugin_file(tmp_path / "mybench", attr="SMALL", name="small", file_name="defs.py")
    (tmp_path / "mybench" / "__init__.py").write_text('"""pkg"""\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    entry = registry.load_user_reference("mybench.defs:SMALL")
    assert (entry.origin.kind, entry.origin.ref, entry.origin.source) == (
        "module", "mybench.defs:SMALL", "module:mybench.defs:SMALL")  # fmt: skip
    monkeypatch.delitem(sys.modules, "mybench.defs")
    monkeypatch.delitem(sys.modules, "mybench")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("import numpy_not_installed_here\n", "failed to import: ModuleNotFoundError: No module named "
                                              "'numpy_not_installed_here' (line 1)"),
        ("def f(:\n", "line 1: SyntaxError"),
        ("raise RuntimeError('no GPU here')\n", "failed to import: RuntimeError: no GPU here (line 1)"),
        ("TINY = 3\n", "is a int, not a harness.spec.benchmarks.Benchmark definition"),
        ("OTHER = 3\n", "has no attribute 'TINY'"),
    ],
)  # fmt: skip
def test_a_broken_plugin_is_one_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "broken.py"
    path.write_text(content)
    with pytest.raises(ConfigError) as exc:
        registry.load_user_reference(f"{path}:TINY")
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_names_are_unique_and_named_datasets_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="the name of a built-in benchmark; rename it"):
        registry.load_user_reference(f"{plugin_file(tmp_path / 'a', name='baseline', attr='B')}:B")
    registry.load_user_reference(f"{plugin_file(tmp_path / 'b')}:TINY")
    other = plugin_file(tmp_path / "c", fields="input_shape=(784,), n_classes=7")
    with pytest.raises(ConfigError, match="two benchmarks are named 'tiny'"):
        registry.load_user_reference(f"{other}:TINY")
    unknown = plugin_file(tmp_path / "d", name="unk", attr="U", fields="datasets=('imagenet-tiny',)")
    with pytest.raises(ConfigError, match="names unknown dataset 'imagenet-tiny'; known datasets are mnist"):
        registry.load_user_reference(f"{unknown}:U")


def test_a_plugin_provides_datasets_through_the_one_registry(tmp_path: Path) -> None:
    header = "import numpy as np\nfrom harness.spec.benchmarks import DatasetDef\n"
    fields = ("datasets=('toy',), provides=(DatasetDef(name='toy', description='a toy set', "
              "arrays=lambda: {}),)")  # fmt: skip
    path = plugin_file(tmp_path, name="withdata", attr="W", fields=fields, header=header)
    assert "toy" not in names.DATASETS
    registry.load_user_reference(f"{path}:W")
    assert names.DATASETS["toy"] == "a toy set" and registry.provider_of("toy") == "withdata"
    # A spec of the plugin may name it; a built-in's spec may not name a dataset nobody provides.
    RunSpec(benchmark="withdata", benchmark_source=f"file:{path}:W", dataset="toy")
    with pytest.raises(ConfigError, match="dataset must be one of"):
        RunSpec(benchmark="baseline", dataset="toy2")


def test_npz_datasets_are_named_by_their_file(tmp_path: Path) -> None:
    spec = RunSpec(dataset="npz-my_data", dataset_file="/data/my data.npz")
    assert spec.run_id.startswith("batchnorm-npz-my_data-cpu-fp32-s0-")
    with pytest.raises(ConfigError, match="must be named 'npz-x'"):
        RunSpec(dataset="npz-y", dataset_file="/d/x.npz")
    with pytest.raises(ConfigError, match="dataset must be one of"):
        RunSpec(dataset="npz-x")  # an npz dataset without its file


def test_entry_points_are_discovered_from_installed_distributions(tmp_path: Path) -> None:
    """A real (minimal) installed distribution: a dist-info with an entry_points.txt, found on sys.path."""
    site = tmp_path / "site"
    plugin_file(site / "epbench", name="epnet", attr="NET", file_name="__init__.py")
    info = site / "epbench-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: epbench\nVersion: 1.2.3\n")
    (info / "top_level.txt").write_text("epbench\n")
    (info / "entry_points.txt").write_text(f"[{registry.ENTRY_POINT_GROUP}]\nepnet = epbench:NET\n")
    code = (
        "import json; from harness.spec import names; from harness.spec.benchmarks import registry\n"
        "e = registry.lookup('epnet')\n"
        "print(json.dumps([list(names.BENCHMARKS), e.origin.kind, e.origin.source, e.origin.distribution, "
        "e.origin.version]))\n"
    )
    proc = run_python(code, env={"PYTHONPATH": f"{site}:{ROOT}"})
    assert proc.returncode == 0, proc.stderr
    listed, kind, source, dist, version = json.loads(proc.stdout)
    assert listed[-1] == "epnet" and kind == "entry-point" and source == "entry-point:epbench:NET"
    assert (dist, version) == ("epbench", "1.2.3")
