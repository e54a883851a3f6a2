"""Terminal text: compare's table and JSON, the history table's skipped entries."""

from __future__ import annotations

import dataclasses
import json

from harness.analysis.claims import BN_GAP, seed_claims
from harness.analysis.compare import compare_results
from harness.analysis.history import History
from harness.analysis.samples import label_runs
from harness.render.text import comparison_json, comparison_text, history_text, result_text, run_summary
from harness.spec.run_spec import PathSpec
from harness.store.members import Member
from harness.store.telemetry import Telemetry
from tests.factories import BF16, CPU, GPU, GPU_TF32, gpu_telemetry, result, seed_suite, seeds

ACCS = [0.920, 0.905, 0.931]


def test_comparison_table_and_json_render_every_check() -> None:
    comp = compare_results(seeds(CPU, ACCS) + seeds(BF16, ACCS))
    lines = comparison_text(comp).splitlines()
    assert lines[0].startswith("tfparity compare: reference cpu-fp32")
    header = next(i for i, line in enumerate(lines) if line.split()[:1] == ["VERDICT"])
    assert lines[header].split() == ["VERDICT", "CHECK", "SUBJECT", "SUMMARY"]
    rows = [line.split()[:2] for line in lines[header + 2 :] if line.split()[:1] in (["PASS"], ["WARN"], ["FAIL"])]
    assert rows == [[c.verdict.value, c.name] for c in comp.checks]  # one line per check, in order
    assert lines[-1].startswith(f"verdict: {comp.verdict.value}")
    data = json.loads(comparison_json(comp))
    assert data["reference"] == "cpu-fp32" and data["verdict"] == comp.verdict.value
    assert data["checks"] == [c.to_dict() for c in comp.checks]
    assert set(data["checks"][0]) == {"name", "verdict", "subject", "summary", "details"}
    assert data["group_info"]["cpu-mixed_bfloat16"]["runs"] == 3


def test_history_text_names_the_skipped_entries() -> None:
    h = History(root="h", skipped=[("20261119T021700Z-nightly", "x.json is not valid JSON")])
    lines = history_text(h, []).splitlines()
    assert lines[0] == "history h: 0 entries, 1 skipped"
    assert lines[-1] == "skipped 20261119T021700Z-nightly: x.json is not valid JSON"


def _claim_rows(text: str) -> dict[str, str]:
    """The run summary's claims table: claim text -> the "holds" cell."""
    lines = text.splitlines()
    start = lines.index("The seed's claims, as measured (mean ± sd over seeds):")
    header = lines[start + 1]
    holds_at, note_at = header.index("holds"), header.index("note")
    return {line[header.index("claim") : header.index("claimed")].strip(): line[holds_at:note_at].strip()
            for line in lines[start + 3 :] if line.strip()}  # fmt: skip


def test_run_summary_never_says_yes_for_a_claim_one_seed_cannot_establish() -> None:
    one_seed = seed_suite(paths=(CPU,), seeds=(0,))
    (gap,) = [c for c in seed_claims(label_runs(one_seed)) if c.kind == BN_GAP]
    rows = _claim_rows(run_summary(one_seed))
    assert rows["BatchNormalization shrinks the train/val gap"] == f"not established (1 seed; need {gap.seeds_needed})"
    assert "yes" not in rows.values()
    # Three seeds with the same gaps on every seed: established.
    rows = _claim_rows(run_summary(seed_suite(paths=(CPU,), seeds=(0, 1, 2))))
    assert rows["BatchNormalization shrinks the train/val gap"] == "yes"
    assert rows["baseline reaches val accuracy ≥ 0.90 (last epoch)"] == "yes"
    assert rows["BN model's train accuracy stays < 0.95 (less memorisation)"] == "NO"


def test_show_prints_gpu_facts_throttling_and_tf32() -> None:
    text = result_text(result(path=GPU_TF32, telemetry=gpu_telemetry(reasons=[0, 0x40, 0, 0])))
    lines = {line.split()[0] + (" " + line.split()[1] if line.startswith("gpu run") else ""): line
             for line in text.splitlines()}  # fmt: skip
    assert "TF32 True; loss scaling False" in lines["evidence"]
    assert (
        lines["gpu"].startswith("gpu        NVIDIA A100-SXM4-80GB GPU-513536b6") and "driver 535.54.03" in lines["gpu"]
    )
    assert "throttled: hw_thermal_slowdown 25%" in lines["gpu run"] and "energy 375 J" in lines["gpu run"]
    blind = result_text(result(path=GPU, telemetry=Telemetry(unavailable="NVML: NVML Shared Library Not Found")))
    assert "gpu        not recorded: NVML: NVML Shared Library Not Found" in blind.splitlines()
    assert "gpu " not in result_text(result(path=CPU))  # no GPU lines for a CPU run


def test_show_names_the_replicas_and_the_batch_semantics() -> None:
    weak = result(path=PathSpec(replicas=2), batch_per_replica=True)
    text = result_text(weak)
    assert "path cpu-fp32-x2" in text and "batch 32 per replica" in text
    assert "replicas   MirroredStrategy: 2 in sync; variables MirroredVariable on device:CPU:0, device:CPU:1" in text
    assert "global batch 64 (32 per replica)" in text
    assert "replicas   " not in result_text(result())  # one device: nothing to say


def test_show_names_the_cluster_and_every_worker_container() -> None:
    w2 = result(path=PathSpec(workers=2), loop="compiled")
    members = [
        Member("chief", "chief", 0, "127.0.0.1:23456", "run-x", "c" * 64, None, "stopped by the harness"),
        Member("worker-1", "worker", 0, "127.0.0.1:23457", "run-x-worker-1", "d" * 64, 137, "exited", "killed"),
    ]
    text = result_text(dataclasses.replace(w2, workers=members))
    assert "path cpu-fp32-w2" in text and "replicas   CollectiveAllReduceStrategy: 2 in sync" in text
    cluster = "{'chief': ['127.0.0.1:23456'], 'worker': ['127.0.0.1:23457']}"
    assert f"cluster    2 workers {cluster}; this result from chief 0" in text
    assert "worker     chief (chief 0) 127.0.0.1:23456, container cccccccccccc: stopped by the harness" in text
    assert "worker     worker-1 (worker 0) 127.0.0.1:23457, container dddddddddddd: exited, exit 137; killed" in text
    assert "cluster" not in result_text(result()) and "worker   " not in result_text(result())
