"""Driftline's Kubernetes API: the custom resources' types, one module per API version."""
