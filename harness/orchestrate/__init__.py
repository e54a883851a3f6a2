"""Host side: plan execution. The runner walks a suite; backends run one spec each, isolated.

TensorFlow-free: a run happens in a worker process or container (:mod:`harness.worker`), reached
only through files and the protocol of :mod:`harness.store.protocol`.
"""
