"""The Driftline operator (kopf): ModelDeployment and DriftPolicy reconcilers."""
