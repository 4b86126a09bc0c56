"""Fixtures: the synthetic score table of :mod:`._synth` in memory and as a Parquet file."""

from __future__ import annotations

import pandas as pd
import pytest

from ._synth import make_scores


@pytest.fixture
def scores() -> pd.DataFrame:
    return make_scores()


@pytest.fixture
def score_file(tmp_path, scores):
    path = tmp_path / "scores.parquet"
    scores.to_parquet(path, index=False)
    return path
