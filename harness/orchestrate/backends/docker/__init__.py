"""The ``docker`` backend, one module per docker noun: the engine choke point (:mod:`.engine`),
images (:mod:`.image`), compose projects and containers (:mod:`.compose`), the container user
(:mod:`.ownership`), the GPU runtime check (:mod:`.gpu`) and the backend itself (:mod:`.backend`).

python-on-whales is imported lazily (on the first docker call), so the package imports without it.
"""

from harness.orchestrate.backends.docker.backend import DockerBackend

__all__ = ["DockerBackend"]
