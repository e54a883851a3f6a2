"""One group identity in every view (issue 10): the default loop and the fast preset on one path are
two groups in compare, the report's rows, the seed claims, regressions, history and the run summary;
no view pools them into one row of seeds [0, 0, 1, 1, 2, 2]."""

from __future__ import annotations

from pathlib import Path

from harness.analysis.claims import BN_TRAIN, seed_claims
from harness.analysis.compare import compare_results
from harness.analysis.gates import default_gates
from harness.analysis.history import add_entry, load_history, trend_rows
from harness.analysis.regress import regression_checks
from harness.analysis.samples import label_runs
from harness.analysis.summary import group_rows
from harness.render.report import build_report
from harness.render.text import run_summary
from tests.factories import CPU, XLA, result, write

# `--preset fast` on cpu-fp32 without XLA: the same path, other execution settings.
FAST = {"input": "numpy", "steps_per_execution": 64, "loop": "compiled"}
DEFAULT_LOOP = "cpu-fp32[tfdata,spe1]"
FAST_LOOP = "cpu-fp32[numpy,spe64,compiled]"
GROUPS = {DEFAULT_LOOP, FAST_LOOP}
REFERENCE = "cpu-fp32-xla"
ACCS = [0.92, 0.93, 0.91]


def test_every_view_shows_the_same_two_groups_of_three_seeds(tmp_path: Path) -> None:
    default = [result(path=CPU, seed=s, test_acc=a) for s, a in enumerate(ACCS)]
    fast = [result(path=CPU, seed=s, test_acc=a + 0.001, step_ms=1.0, **FAST) for s, a in enumerate(ACCS)]
    reference = [result(path=XLA, seed=s, test_acc=a) for s, a in enumerate(ACCS)]
    results = default + fast + reference
    runs = label_runs(results)

    # compare: two groups of three runs, each compared with the reference on seeds 0-2
    comp = compare_results(results, reference=REFERENCE)
    assert set(comp.groups) == GROUPS | {REFERENCE}
    info = {g: (i.path, i.execution, i.runs, i.ok) for g, i in comp.group_info.items() if g != REFERENCE}
    assert info == {
        DEFAULT_LOOP: ("cpu-fp32", "tfdata,spe1", 3, 3),
        FAST_LOOP: ("cpu-fp32", "numpy,spe64,compiled", 3, 3),
    }
    accuracy = {c.subject: c.details for c in comp.checks_named("accuracy-equivalence")}
    for group in GROUPS:
        details = accuracy[f"batchnorm/mnist-5k: {group} vs {REFERENCE} (test_accuracy)"]
        assert details["seeds"] == [0, 1, 2] and details["n_a"] == 3

    # the report's rows (and the rows they are built from)
    for rows in (build_report(results, comp, with_figures=False).rows, group_rows(runs)):
        assert {r.group: r.seeds for r in rows if r.group != REFERENCE} == {
            DEFAULT_LOOP: [0, 1, 2],
            FAST_LOOP: [0, 1, 2],
        }

    # the seed claims
    claims = [c for c in seed_claims(runs) if c.kind == BN_TRAIN and c.path != REFERENCE]
    assert sorted((c.path, c.n_seeds) for c in claims) == sorted((g, 3) for g in GROUPS)

    # regressions against itself as baseline: each group paired with its own baseline group
    checks = regression_checks(runs, results, default_gates())
    by_subject = {c.subject: c.details for c in checks if c.details.get("metric") == "test_accuracy"}
    for group in GROUPS:
        details = by_subject[f"batchnorm/mnist-5k: {group} vs baseline (test_accuracy:-1pp)"]
        assert (details["n_current"], details["n_baseline"], details["change"]) == (3, 3, 0.0)
    # Accuracy against itself passes; throughput from 3 runs per side is INCONCLUSIVE (the run-level
    # rule needs 4): never a regression.
    assert all(c.verdict == "PASS" for c in checks if c.details.get("metric") == "test_accuracy")
    assert all(c.verdict == "WARN" and c.details["decision"] == "inconclusive"
               for c in checks if c.details.get("metric") == "throughput")  # fmt: skip

    # history: one series per group
    root = tmp_path / "history"
    add_entry(root, [str(write(results, tmp_path / "cpu"))], stamp="20261125T021700Z")
    trend = {r.series: r for r in trend_rows(load_history(root))}
    assert set(trend) == {f"{g} · batchnorm" for g in GROUPS | {REFERENCE}}
    assert all((r.n_ok, r.n_failed) == (3, 0) for r in trend.values())
    assert (
        trend[f"{FAST_LOOP} · batchnorm"].throughput_samples_per_s
        > trend[f"{DEFAULT_LOOP} · batchnorm"].throughput_samples_per_s
    )

    # the end-of-run summary: one line per group, three of three runs ok (never six)
    lines = run_summary(results).splitlines()
    for group in GROUPS:
        (line,) = [x for x in lines if group in x.split() and "batchnorm" in x.split()]
        assert "3/3" in line.split()


def test_op_determinism_on_and_off_are_two_groups_in_every_view() -> None:
    # `--preset seed` (TF's defaults: determinism off) and `--input numpy` (determinism on by default)
    # differ only in op determinism, a numerical path of its own on CPU: never pooled.
    seed_way = [result(path=CPU, seed=s, test_acc=a, input="numpy", deterministic=False) for s, a in enumerate(ACCS)]
    det_on = [result(path=CPU, seed=s, test_acc=a + 0.001, input="numpy") for s, a in enumerate(ACCS)]
    results = seed_way + det_on
    groups = {"cpu-fp32[numpy,spe1,det-off]", "cpu-fp32[numpy,spe1]"}
    assert set(compare_results(results).groups) == groups
    assert {r.group: r.seeds for r in group_rows(label_runs(results))} == {g: [0, 1, 2] for g in groups}
    assert {c.path for c in seed_claims(label_runs(results))} == groups
