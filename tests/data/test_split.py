"""Keras's validation split computed without Keras: the same row counts, refused where Keras would fail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import data
from harness.errors import DataError
from tests.data.support import one_line


def test_n_validation_matches_keras_train_validation_split(keras_probe: dict[str, Any]) -> None:
    splits = keras_probe["out"]["splits"]
    assert len(splits) > 80
    for n, split, keras_len in splits:
        assert data.n_validation(n, split) == keras_len, (n, split)
    assert data.n_validation(4000, 0.0) == 0


def test_split_too_small_for_keras_is_refused(tmp_path: Path) -> None:
    # synthetic has 6000 training rows: a split leaving none for validation (1 - 1e-17 == 1.0 in
    # floating point, so split_at == n) or none for training (split_at == 0) is what Keras refuses
    # with a ValueError in the middle of fit(); here it is refused before TF is even imported.
    for split in (1e-17, 0.9999):
        with pytest.raises(DataError) as exc:
            data.load("synthetic", tmp_path, validation_split=split)
        assert "too few" in one_line(exc) and repr(split) in str(exc.value)
    assert data.load("synthetic", tmp_path, validation_split=1e-6).info.n_val == 1
