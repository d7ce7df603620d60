"""Driftline's shared package: what two images both need (schema, statistics, registry)."""

__version__ = "0.1.0"
