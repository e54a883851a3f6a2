"""Write the example's tiny dataset: 8x8 images with one bright blob, labelled by the blob's quadrant.

``python benchmarks/examples/make_blobs.py OUT.npz`` writes the arrays ``tfparity run --dataset
npz:OUT.npz`` reads: ``x_train`` (1,200, 8, 8) and ``x_test`` (300, 8, 8) uint8 images (scaled to
[0, 1] by tfparity, as the built-in datasets), ``y_train``/``y_test`` labels 0-3 (the quadrant of
the blob's centre), plus noise. The generator is seeded: every run writes the same bytes, so every
machine gets the same dataset fingerprint.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SEED = 20261202
SIZE = 8
N_TRAIN, N_TEST = 1200, 300


def blobs(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` noisy 8x8 images with a Gaussian blob, and the quadrant (0-3) of the blob's centre."""
    centres = rng.uniform(0.5, SIZE - 1.5, size=(n, 2))
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    dist2 = (rows[None] - centres[:, 0, None, None]) ** 2 + (cols[None] - centres[:, 1, None, None]) ** 2
    images = 200.0 * np.exp(-dist2 / 2.0) + rng.normal(0.0, 20.0, size=(n, SIZE, SIZE))
    labels = 2 * (centres[:, 0] >= SIZE / 2 - 0.5) + (centres[:, 1] >= SIZE / 2 - 0.5)
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.uint8)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python benchmarks/examples/make_blobs.py OUT.npz", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    x_train, y_train = blobs(N_TRAIN, rng)
    x_test, y_test = blobs(N_TEST, rng)
    np.savez(out, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    print(f"wrote {out}: {N_TRAIN} train / {N_TEST} test images of {SIZE}x{SIZE}, 4 classes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
