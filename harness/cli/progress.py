"""Progress of a suite on stderr: one line per run, epoch updates in place on a terminal."""

from __future__ import annotations

import sys
from typing import TextIO

from harness.orchestrate.runner import RunEvent


class ProgressPrinter:
    """Renders runner events on stderr: one line per run, epoch updates in place on a terminal."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()

    def __call__(self, event: RunEvent) -> None:
        prefix = f"[{event.index}/{event.total}] {event.spec.run_id}"
        r, p = event.result, event.progress
        if event.kind == "skip" and r is not None:
            self._line(f"{prefix}: already {r.status}, skipped")
        elif event.kind == "start":
            self._line(f"{prefix}: started{_eta(event.eta_s)}", final=not self.tty)
        elif event.kind == "progress" and p is not None:
            self._line(f"{prefix}: epoch {p.epoch}/{p.epochs}{_eta(event.eta_s)}", final=not self.tty)
        elif event.kind == "finish" and r is not None:
            if r.ok:
                what = f"ok, test accuracy {r.test_accuracy:.4f}" if r.test_accuracy is not None else "ok"
                if r.timing and r.timing.steady_throughput_samples_per_s:
                    what += f", {r.timing.steady_throughput_samples_per_s:,.0f} samples/s"
            else:
                what = f"{r.status.upper()}: {r.error}"
            self._line(f"{prefix}: {what}{_eta(event.eta_s) if event.eta_s else ''}")

    def _line(self, text: str, final: bool = True) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(int(round(seconds)), 60)
    return f" (ETA {minutes}m{secs:02d}s)" if minutes else f" (ETA {secs}s)"
