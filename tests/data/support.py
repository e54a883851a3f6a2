"""What the data-layer tests share: the pinned fingerprints, the Fashion-MNIST availability rule and
small helpers (imported by tests/data/ test modules and their conftest; not a test module)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.data import Dataset
from harness.data.idx import DEBIAN_FASHION_DIR, IDX_FILES
from harness.errors import UserError
from tests.helpers import run_python

__all__ = ["run_python"]

# The fingerprints are the comparability contract of results: if one of these changes, results
# recorded before and after the change were trained on different data. Change them only on purpose.
PINNED_SHA256 = {
    "mnist-5k": "52c413da893f2ba06227d73e29d11166763df52cf53468043a259e41bf95b2d3",
    "fashion-mnist": "6d4fd50a3ee50df0cf90b910df48151103bd1e12d5d9ac9dd1ff2961d5d79dae",
    "synthetic": "776e7c28257431923a93682791dd86a06bab0601a50fb6e161ec0828b8f3ce27",
}

FASHION_DIR = DEBIAN_FASHION_DIR
HAVE_FASHION = all((FASHION_DIR / f).is_file() for f in IDX_FILES.values())
needs_fashion = pytest.mark.skipif(not HAVE_FASHION, reason="Debian package dataset-fashion-mnist not installed")
# A data dir that does not exist: load() then uses the dataset's own sources.
NO_DATA_DIR = Path("/nonexistent-tfparity-data")


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    """The message of a raised UserError, checked to be one line."""
    msg = str(exc.value)
    assert "\n" not in msg, msg
    assert isinstance(exc.value, UserError)
    return msg


def canonical_u8(ds: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Recover the canonical uint8 arrays from a loaded (scaled) dataset."""
    return (np.rint(ds.x_train * 255).astype(np.uint8), ds.y_train.astype(np.uint8),
            np.rint(ds.x_test * 255).astype(np.uint8), ds.y_test.astype(np.uint8))  # fmt: skip


def flip_byte(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))
