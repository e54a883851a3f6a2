"""The isolated process or container that runs one spec: the ONLY place TensorFlow is imported.

``python -m harness.worker SPEC.json RESULT.json [--data-dir DIR]`` (:mod:`harness.worker.main`)
reads a spec, runs it (:mod:`harness.worker.run`: :func:`~harness.worker.train.train` or
:func:`~harness.worker.probe.probe`), and writes one result JSON. Importing this package imports
no TensorFlow; its modules import it lazily, after :mod:`harness.worker.tf_setup` has set the
environment TensorFlow reads at import time.
"""
