"""``synthetic``: generated, never downloaded; MNIST-shaped data with a linear teacher.

6,000 train / 1,000 test images from the raw PCG64 stream of a fixed seed (:data:`SYNTHETIC_SEED`):
images are a fixed random linear map of a 16-dimensional latent vector, labels the argmax of a
fixed random linear teacher on the same latent (exact integer arithmetic, so every machine gets the
same arrays and fingerprint; a linear classifier reaches ~0.9 test accuracy). Results on it are
flagged ``dataset.synthetic`` everywhere.
"""

from __future__ import annotations

import math

import numpy as np

from harness.data.canonical import N_CLASSES, N_PIXELS, Canonical

# Changing the seed changes the fingerprint: results before and after would not compare.
SYNTHETIC_SEED = 20261125
SYNTHETIC_N_TRAIN = 6000
SYNTHETIC_N_TEST = 1000
SYNTHETIC_LATENT_DIM = 16


def generate() -> Canonical:
    """MNIST-shaped data with labels from a fixed linear teacher (see the module docstring).

    Each sample has a latent vector ``z`` of :data:`SYNTHETIC_LATENT_DIM` int8 values; its image
    is ``clip(z @ B // 256, 0, 255)`` for a fixed int8 basis ``B`` (about half the pixels are 0,
    like MNIST), its label the argmax of the norm-scaled, class-centred scores ``z @ T`` of a
    fixed int8 teacher ``T``. The label is (up to the clipping) a linear function of the pixels
    living in 16 dimensions, so a linear classifier on the pixels reaches about 0.9 test accuracy:
    learnable, far from trivial. Only PCG64's raw 64-bit output (stable across NumPy versions by
    NumPy's policy for bit generators) and exact integer arithmetic are used, so the arrays and
    the fingerprint are identical on every machine.
    """
    bitgen = np.random.PCG64(SYNTHETIC_SEED)
    n = SYNTHETIC_N_TRAIN + SYNTHETIC_N_TEST

    def raw_int8(*shape: int) -> np.ndarray:
        count = math.prod(shape)
        words = bitgen.random_raw((count + 7) // 8).astype("<u8")
        u8 = np.frombuffer(words.tobytes(), dtype=np.uint8)[:count]
        return (u8.astype(np.int64) - 128).reshape(shape)

    z = raw_int8(n, SYNTHETIC_LATENT_DIM)
    basis = raw_int8(SYNTHETIC_LATENT_DIM, N_PIXELS)
    teacher = raw_int8(SYNTHETIC_LATENT_DIM, N_CLASSES)
    x = np.clip((z @ basis) // 256, 0, 255).astype(np.uint8)  # exact: integers, no BLAS rounding
    scores = z @ teacher
    # Centre each class score and divide by the teacher column's norm so that no class dominates
    # (class counts 442-945 of 7,000 instead of 374-1021).
    scores -= scores.sum(axis=0) // n
    norms = np.array([math.isqrt(int((teacher[:, c] ** 2).sum())) for c in range(N_CLASSES)], dtype=np.int64)
    y = ((scores << 16) // norms).argmax(axis=1).astype(np.uint8)  # ties -> lowest class
    return Canonical(
        x_train=x[:SYNTHETIC_N_TRAIN],
        y_train=y[:SYNTHETIC_N_TRAIN],
        x_test=x[SYNTHETIC_N_TRAIN:],
        y_test=y[SYNTHETIC_N_TRAIN:],
        source=f"generated:synthetic(seed={SYNTHETIC_SEED})",
    )
