"""How Driftline uses the MLflow model registry: the alias names and the compared metrics (pure).

Every image, the CLI and the operator spell these the same way; this module is their one
definition.
"""

from __future__ import annotations

# The alias whose version serves most traffic, and the one tried on a share of it.
CHAMPION = "champion"
CHALLENGER = "challenger"
VARIANTS = (CHAMPION, CHALLENGER)
# The variant the inference log records for the challenger's answer to a shadowed copy of a
# champion request (same request id as the champion's row; never returned to the client).
SHADOW = "shadow"
# Training logs its held-out test metrics as ``test_<metric>``; promotion compares those.
METRIC_PREFIX = "test_"
# Set on a model version whose rollout was aborted (the value says why): the operator does not
# roll that version out again until `driftline retry` removes the tag.
REJECTED_TAG = "driftline.rejected"
# A training run that scored the champion and itself on the same rows tags the champion version
# it compared with, and logs ``paired_<dataset>_<metric>_<champion|challenger|difference|low|
# high>`` and ``paired_<dataset>_rows``. Datasets in the order promotion prefers them: the
# recent labelled holdout, then the reference's test split.
PAIRED_CHAMPION_TAG = "driftline.paired_champion"
PAIRED_DATASETS = ("recent", "test")
