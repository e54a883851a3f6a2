"""End-of-suite summary: per model, mean +/- sd over seeds, and the seed's claims as measured facts.

Pure functions: results in, rows and text out (the CLI prints the text).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass

from harness.results import RunResult


@dataclass(frozen=True)
class MeanSd:
    mean: float | None
    sd: float | None
    n: int

    @classmethod
    def of(cls, values: list[float]) -> MeanSd:
        values = [v for v in values if v is not None]
        if not values:
            return cls(None, None, 0)
        sd = statistics.stdev(values) if len(values) > 1 else None
        return cls(statistics.fmean(values), sd, len(values))

    def fmt(self, scale: float = 1.0, digits: int = 4) -> str:
        if self.mean is None:
            return "-"
        text = f"{self.mean * scale:.{digits}f}"
        if self.sd is not None:
            text += f" ± {self.sd * scale:.{digits}f}"
        return text


@dataclass(frozen=True)
class ModelRow:
    dataset: str
    path: str
    benchmark: str
    runs_ok: int
    runs_failed: int
    synthetic: bool
    train_accuracy: MeanSd
    val_accuracy: MeanSd
    test_accuracy: MeanSd
    gap: MeanSd
    throughput_samples_per_s: MeanSd
    peak_rss_mb: float | None


def summarize(results: list[RunResult]) -> list[ModelRow]:
    groups: dict[tuple[str, str, str], list[RunResult]] = defaultdict(list)
    for r in results:
        spec = r.run_spec
        groups[(spec.dataset, spec.path.name, spec.benchmark)].append(r)
    rows = []
    for (dataset, path, benchmark), rs in sorted(groups.items()):
        ok = [r for r in rs if r.ok]
        rows.append(ModelRow(
            dataset=dataset, path=path, benchmark=benchmark, runs_ok=len(ok), runs_failed=len(rs) - len(ok),
            synthetic=any(r.dataset is not None and r.dataset.synthetic for r in rs),
            train_accuracy=MeanSd.of([r.epochs[-1].train_accuracy for r in ok if r.epochs]),
            val_accuracy=MeanSd.of([r.epochs[-1].val_accuracy for r in ok if r.epochs]),
            test_accuracy=MeanSd.of([r.test_accuracy for r in ok]),
            gap=MeanSd.of([r.generalization_gap for r in ok]),
            throughput_samples_per_s=MeanSd.of(
                [r.timing.steady_throughput_samples_per_s for r in ok if r.timing]),
            peak_rss_mb=max((r.memory.peak_rss_mb for r in ok if r.memory), default=None),
        ))
    return rows


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join([line, sep, *body])


def render_probes(probes: list[RunResult]) -> list[str]:
    """One line per numerics-probe run: within tolerance of float64, or the first layer that is not."""
    lines = []
    for r in probes:
        payload = r.extra.get("probe") or {}
        if not r.ok:
            verdict = f"{r.status}: {r.error}"
        elif payload.get("passed"):
            verdict = (f"within tolerance of float64 (loss rel. error {payload.get('loss_rel_err', float('nan')):.1e}, "
                       f"logits {payload.get('logits_rel_err', float('nan')):.1e})")
        else:
            verdict = f"first divergent layer {payload.get('first_divergent_layer')!r}: {payload.get('divergence')}"
        lines.append(f"  {r.run_id}: {verdict}")
    return lines


def render_summary(results: list[RunResult]) -> str:
    """The text printed at the end of ``tfparity run``."""
    probes = [r for r in results if r.run_spec.mode == "probe"]
    if probes:
        results = [r for r in results if r.run_spec.mode != "probe"]
        if not results:
            return "\n".join(["Numerics probe (one fixed batch vs a float64 reference):", *render_probes(probes)])
    rows = summarize(results)
    table_rows = []
    for r in rows:
        name = r.benchmark + (" [synthetic data]" if r.synthetic else "")
        table_rows.append([
            r.dataset, r.path, name, f"{r.runs_ok}/{r.runs_ok + r.runs_failed}",
            r.train_accuracy.fmt(), r.val_accuracy.fmt(), r.test_accuracy.fmt(), r.gap.fmt(),
            r.throughput_samples_per_s.fmt(digits=0), "-" if r.peak_rss_mb is None else f"{r.peak_rss_mb:.0f}",
        ])
    text = [_table(["dataset", "path", "model", "ok", "train acc", "val acc", "test acc", "gap (train-val)",
                    "steady samples/s", "peak RSS MB"], table_rows)]
    # The same claim checks as the report (one definition of what the seed claimed).
    from harness.report import seed_claims

    claim_rows = [[c.dataset, c.path, c.claim, c.claimed, c.measured, "yes" if c.holds else "NO", c.note]
                  for c in seed_claims(results) if c.holds is not None]
    if claim_rows:
        text += ["", "The seed's claims, as measured (mean ± sd over seeds):",
                 _table(["dataset", "path", "claim", "claimed", "measured", "holds", "note"], claim_rows)]
    if probes:
        text += ["", "Numerics probe (one fixed batch vs a float64 reference):", *render_probes(probes)]
    failed = [r for r in results if not r.ok]
    if failed:
        text += ["", f"{len(failed)} run(s) did not finish:"]
        text += [f"  {r.run_id}: {r.status}: {r.error}" for r in failed]
    return "\n".join(text)
