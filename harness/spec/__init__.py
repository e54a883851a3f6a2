"""WHAT to run, TensorFlow-free: the registry of names, run specs, suites and presets.

The lowest layer of the package: it imports nothing from tfparity but :mod:`harness.errors`.
"""
