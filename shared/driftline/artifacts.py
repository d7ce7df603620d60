"""Names of the artifacts every model version carries.

The trainer writes them; serving and drift checks read them (DESIGN.md section 3).
"""

# Folder of a training run's Driftline artifacts.
ARTIFACT_DIR = "driftline"
ONNX_MODEL = f"{ARTIFACT_DIR}/model.onnx"
FEATURE_SCHEMA = f"{ARTIFACT_DIR}/feature_schema.json"
BASELINE = f"{ARTIFACT_DIR}/baseline.json"
METRICS = f"{ARTIFACT_DIR}/metrics.json"
THRESHOLD = f"{ARTIFACT_DIR}/threshold.json"
LINEAGE = f"{ARTIFACT_DIR}/lineage.json"
# The MLflow model (sklearn flavour) inside the run.
MLFLOW_MODEL = "model"
