"""Terminal text: the end-of-run summary, ``show``, ``compare``'s table, probes, ``history``'s table.

Every function takes data and returns a string; the CLI prints it.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.analysis.benchmark_claims import benchmark_claims
from harness.analysis.changepoints import SeriesScan
from harness.analysis.checks import Comparison, fmt
from harness.analysis.claims import FAILS, UNMEASURABLE, seed_claims
from harness.analysis.hardware import gpu_summary
from harness.analysis.history import History, TrendRow
from harness.analysis.samples import Run, label_runs
from harness.analysis.stats import Stat
from harness.analysis.summary import group_rows
from harness.render.changes import change_points_table, scan_note
from harness.render.report import history_table, holds_text
from harness.render.table import Table
from harness.store.jsonio import dumps
from harness.store.results import RunResult

SUBJECT_WIDTH = 72


def mean_sd(stat: Stat, scale: float = 1.0, digits: int = 4) -> str:
    if stat.mean is None:
        return "-"
    text = f"{stat.mean * scale:.{digits}f}"
    if stat.sd is not None:
        text += f" ± {stat.sd * scale:.{digits}f}"
    return text


def probe_lines(probes: Sequence[RunResult]) -> list[str]:
    """One line per numerics-probe run: within tolerance of float64, or the first layer that is not."""
    lines = []
    for r in probes:
        payload = r.extra.get("probe") or {}
        if not r.ok:
            verdict = f"{r.status}: {r.error}"
        elif payload.get("passed"):
            verdict = (
                f"within tolerance of float64 (loss rel. error {payload.get('loss_rel_err', float('nan')):.1e}, "
                f"logits {payload.get('logits_rel_err', float('nan')):.1e})"
            )
        else:
            verdict = f"first divergent layer {payload.get('first_divergent_layer')!r}: {payload.get('divergence')}"
        lines.append(f"  {r.run_id}: {verdict}")
    return lines


PROBE_HEADING = "Numerics probe (one fixed batch vs a float64 reference):"


def run_summary(results: Sequence[RunResult]) -> str:
    """The text printed at the end of ``tfparity run``: per group, then the seed's claims, probes, failures."""
    probes = [r for r in results if r.run_spec.mode == "probe"]
    train = [r for r in results if r.run_spec.mode != "probe"]
    if probes and not train:
        return "\n".join([PROBE_HEADING, *probe_lines(probes)])
    runs = label_runs(train)
    rows = [
        [
            r.dataset,
            r.group,
            r.benchmark + (" [synthetic data]" if r.synthetic else ""),
            f"{r.n_ok}/{r.n_ok + r.n_failed}",
            mean_sd(r.train_accuracy),
            mean_sd(r.val_accuracy),
            mean_sd(r.test_accuracy),
            mean_sd(r.gap),
            mean_sd(r.throughput, digits=0),
            "-" if r.peak_rss_mb is None else f"{r.peak_rss_mb:.0f}",
        ]
        for r in group_rows(runs)
    ]
    headers = [
        "dataset",
        "path",
        "model",
        "ok",
        "train acc",
        "val acc",
        "test acc",
        "gap (train-val)",
        "steady samples/s",
        "peak RSS MB",
    ]
    text = [Table(headers, rows).text()]
    text += claims_lines(runs)
    if probes:
        text += ["", PROBE_HEADING, *probe_lines(probes)]
    failed = [r for r in train if not r.ok]
    if failed:
        text += ["", f"{len(failed)} run(s) did not finish:"]
        text += [f"  {r.run_id}: {r.status}: {r.error}" for r in failed]
    return "\n".join(text)


def claims_lines(runs: Sequence[Run]) -> list[str]:
    """The seed's claims, then the benchmarks' own: the same checks as the report (one definition each)."""
    headers = ["dataset", "path", "claim", "claimed", "measured", "holds", "note"]
    lines: list[str] = []
    for title, checks in (
        ("The seed's claims, as measured (mean ± sd over seeds):", seed_claims(runs)),
        ("The benchmarks' own claims, as measured (mean ± sd over seeds):", benchmark_claims(runs)),
    ):
        # Unmeasurable claims are left out unless runs were excluded (say why nothing is answered).
        rows = [[c.dataset, c.path, c.claim, c.claimed, c.measured, "NO" if c.decision == FAILS else holds_text(c),
                 c.note] for c in checks if c.decision != UNMEASURABLE or c.excluded_runs]  # fmt: skip
        if rows:
            lines += ["", title, Table(headers, rows).text()]
    return lines


def comparison_text(comparison: Comparison) -> str:
    """Terminal table: the groups, one line per check, the overall verdict at the end."""
    lines = [f"tfparity compare: reference {comparison.reference}, margin ±{comparison.margin_pp:g} pp"]
    for group in comparison.groups:
        info = comparison.group_info.get(group)
        extra = f" ({info.ok}/{info.runs} runs ok, source {info.source})" if info is not None else ""
        mark = "  [reference]" if group == comparison.reference else ""
        lines.append(f"  group {group}{extra}{mark}")
    lines.append("")
    if not comparison.checks:
        lines.append("(no checks: nothing comparable)")
    else:
        rows = [[c.verdict.value, c.name, c.subject, c.summary] for c in comparison.checks]
        lines.append(Table(["VERDICT", "CHECK", "SUBJECT", "SUMMARY"], rows).text(max_width={2: SUBJECT_WIDTH}))
    counts = comparison.counts()
    lines += [
        "",
        f"verdict: {comparison.verdict.value} ({counts['PASS']} PASS, {counts['WARN']} WARN, {counts['FAIL']} FAIL)",
    ]
    return "\n".join(lines) + "\n"


def comparison_json(comparison: Comparison) -> str:
    return dumps(comparison.to_dict())


def history_text(history: History, rows: Sequence[TrendRow], scans: Sequence[SeriesScan] = ()) -> str:
    """A plain-text trend table for the terminal, change points marked, then listed."""
    lines = [
        f"history {history.root}: {len(history.entries)} entries"
        + (f", {len(history.skipped)} skipped" if history.skipped else "")
    ]
    if rows:
        lines.append(history_table(rows, scans).text())
    if scans:
        lines += ["", scan_note(scans)]
        changes = change_points_table(scans)
        if changes.rows:
            lines.append(changes.text())
    lines += [f"skipped {name}: {why}" for name, why in history.skipped]
    return "\n".join(lines)


def result_text(result: RunResult) -> str:
    """Human summary of one result file (``tfparity show``)."""
    spec = result.run_spec
    lines = [
        f"run        {result.run_id}",
        f"status     {result.status}" + (f": {result.error}" if result.error else ""),
        f"benchmark  {spec.benchmark} on {spec.dataset}, path {spec.path.name}, seed {spec.seed}, "
        f"{spec.epochs} epochs, batch {spec.batch_size}{' per replica' if spec.batch_per_replica else ''}, "
        f"input {spec.input}, "
        f"steps/execution {spec.steps_per_execution}, loop {spec.loop}",
        f"when       {result.started_utc} -> {result.finished_utc}",
    ]
    if result.benchmark:
        b = result.benchmark
        lines.append(
            f"defined    {b.origin}: {b.ref}" + (f" {b.version}" if b.version else "")
            + (f", sha256 {b.sha256[:16]}…" if b.sha256 else "") + f", source via {b.delivery}"
        )  # fmt: skip
    if result.dataset:
        d = result.dataset
        lines.append(
            f"dataset    {d.name} ({d.source}){' [SYNTHETIC]' if d.synthetic else ''}: "
            f"{samples_text(result)}, sha256 {d.sha256[:16]}…"
        )
    lines += _epoch_lines(result) + _measurement_lines(result)
    if result.log_tail and not result.ok:
        lines.append("log tail:")
        lines.extend(f"  {line}" for line in result.log_tail[-15:])
    return "\n".join(lines)


def samples_text(result: RunResult) -> str:
    """The samples the run trained/validated/tested on: what ran (``n_*_used``), not the dataset's sizes."""
    d = result.dataset
    if d is None:
        return "no dataset recorded"
    full = (d.n_train - d.n_val, d.n_val)
    limit = result.run_spec.max_train_samples
    used = (result.n_train_used, result.n_val_used)
    if used[0] is None or used[1] is None:
        text = f"{full[0]} train / {full[1]} val / {d.n_test} test"
        return text + (f" (max_train_samples {limit}: samples used not recorded)" if limit is not None else "")
    text = f"{used[0]} train / {used[1]} val / {d.n_test} test"
    if used != full:
        text += f" (of {full[0]} / {full[1]}: max_train_samples {limit})"
    return text


def _epoch_lines(result: RunResult) -> list[str]:
    lines = []
    if result.epochs:
        lines.append("epoch  train loss  train acc  val loss  val acc  time s")
        for e in result.epochs:
            val_loss = "-" if e.val_loss is None else f"{e.val_loss:.4f}"
            val_acc = "-" if e.val_accuracy is None else f"{e.val_accuracy:.4f}"
            lines.append(
                f"{e.epoch:>5}  {e.train_loss:>10.4f}  {e.train_accuracy:>9.4f}  {val_loss:>8}  "
                f"{val_acc:>7}  {e.epoch_time_s:>6.2f}"
            )
    if result.test_accuracy is not None:
        gap = "-" if result.generalization_gap is None else f"{result.generalization_gap:+.4f}"
        loss = "-" if result.test_loss is None else f"{result.test_loss:.4f}"
        lines.append(f"test       accuracy {result.test_accuracy:.4f}, loss {loss}; gap (train-val) {gap}; "
                     f"params {result.params or 0:,}")  # fmt: skip
    return lines


def _measurement_lines(result: RunResult) -> list[str]:
    lines = []
    if result.timing:
        t = result.timing
        thr = "-" if t.steady_throughput_samples_per_s is None else f"{t.steady_throughput_samples_per_s:,.0f}"
        p = (
            "-"
            if t.step_time_ms_p50 is None
            else f"{t.step_time_ms_p50:.3f}/{t.step_time_ms_p90:.3f}/{t.step_time_ms_p99:.3f}"
        )
        lines.append(f"speed      steady {thr} samples/s; step ms p50/p90/p99 {p}; compile {t.compile_time_s:.2f} s; "
                     f"warm-up {t.warmup_steps} steps {t.warmup_time_s:.2f} s; train {t.train_time_s:.1f} s; "
                     f"total {t.total_wall_time_s:.1f} s")  # fmt: skip
    if result.memory:
        m = result.memory
        tf_peak = "-" if m.tf_peak_mb is None else f"{m.tf_peak_mb:.0f} MB"
        lines.append(f"memory     peak RSS {m.peak_rss_mb:.0f} MB (getrusage {m.ru_maxrss_mb:.0f} MB); "
                     f"TF allocator peak on {m.tf_device} {tf_peak}")  # fmt: skip
    if result.evidence:
        ev = result.evidence
        scale = f" (scale {ev.loss_scale:g})" if ev.loss_scale is not None else ""
        lines.append(f"evidence   variables on {ev.variable_device}; policy {ev.dtype_policy}; "
                     f"jit_compile {ev.jit_compile}; deterministic ops {ev.deterministic_ops}; "
                     f"TF32 {ev.tensor_float_32}; loss scaling {ev.loss_scaling}{scale}")  # fmt: skip
        if ev.num_replicas_in_sync is not None and (ev.num_replicas_in_sync > 1 or result.run_spec.path.replicas > 1):
            copies = ", ".join(d.rsplit("/", 1)[-1] for d in ev.variable_replica_devices)
            lines.append(f"replicas   {ev.distribute_strategy}: {ev.num_replicas_in_sync} in sync; variables "
                         f"{ev.variable_class} on {copies}; global batch {ev.global_batch_size} "
                         f"({ev.per_replica_batch_size} per replica); sync BN {ev.sync_batchnorm}")  # fmt: skip
        if ev.num_workers is not None:
            lines.append(f"cluster    {ev.num_workers} workers {ev.cluster}; this result from {ev.task_type} "
                         f"{ev.task_index}")  # fmt: skip
    for member in result.workers:  # a multi-worker run's containers, the chief first
        code = "" if member.exit_code is None else f", exit {member.exit_code}"
        ended = member.outcome + code + (f"; {member.error}" if member.error else "")
        task = f"{member.task} ({member.task_type} {member.task_index})"
        where = member.container_id[:12] or member.container
        lines.append(f"worker     {task} {member.address}, container {where}: {ended}")
    lines += _hardware_lines(result)
    env = result.environment
    if env:
        image = (
            f", image {env.get('container_image')} {str(env.get('image_id') or '')[:19]}"
            if env.get("container_image")
            else ""
        )
        lines.append(f"env        TF {env.get('tensorflow_version')} ({env.get('backend')}{image}), "
                     f"{env.get('cpu_model')} x{env.get('cpu_count')}, commit {env.get('git_commit')}")  # fmt: skip
    return lines


def _hardware_lines(result: RunResult) -> list[str]:
    """The GPU the run had and what it did during training; the CPU's power settings where readable."""
    t = result.telemetry
    if t is None:
        return []
    lines = []
    for g in t.gpus:
        lines.append(f"gpu        {g.name} {g.uuid or ''}, driver {t.driver_version} (CUDA {t.cuda_driver_version}, "
                     f"{t.source}); power limit {g.power_limit_w} W, persistence {g.persistence_mode}, "
                     f"ECC {g.ecc_enabled}")  # fmt: skip
    if not t.gpus and result.run_spec.path.device == "gpu":
        lines.append(f"gpu        not recorded: {t.unavailable}")
    s = gpu_summary(result)
    if s is not None:
        energy = "-" if s.energy_j is None else f"{s.energy_j:.0f} J"
        per_j = "-" if s.samples_per_j is None else f"{s.samples_per_j:.1f}"
        throttled = ", ".join(f"{k} {v:.0%}" for k, v in s.throttle_share.items()) or "none"
        lines.append(f"gpu run    {s.n_samples} samples; SM clock p50 {fmt(s.sm_clock_mhz_p50, '.0f')} MHz, util p50 "
                     f"{fmt(s.utilization_gpu_pct_p50, '.0f')} %, temperature max {fmt(s.temperature_c_max, '.0f')} C, "
                     f"power mean {fmt(s.power_w_mean, '.0f')} W; energy {energy} ({per_j} samples/J); "
                     f"throttled: {throttled}")  # fmt: skip
    if t.cpu_governors or t.cpu_boost is not None or t.rapl_domains:
        rapl = "-" if t.rapl_energy_j is None else f"{t.rapl_energy_j:.1f} J"
        lines.append(f"cpu power  governor {'/'.join(t.cpu_governors) or '-'}; boost {t.cpu_boost}; RAPL {rapl}")
    return lines
