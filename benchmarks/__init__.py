"""Benchmarks of tfparity itself, run from a checkout (``make perf``: :mod:`benchmarks.perf`)."""
