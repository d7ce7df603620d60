"""The trainer's error taxonomy: each maps to one CLI exit code and a one-line reason.

The codes are ``driftline.exit_codes``, the numbers the operator and ``kubectl`` readers share.
"""

from driftline import exit_codes


class TrainingError(Exception):
    """Base of the errors the trainer reports to users rather than crashing on."""

    exit_code = exit_codes.UNEXPECTED


class DataSourceError(TrainingError):
    """The data could not be read or fetched."""

    exit_code = exit_codes.DATA_SOURCE


class DataValidationError(TrainingError):
    """The data broke the feature schema; the message holds the full report."""

    exit_code = exit_codes.DATA_INVALID


class QualityGateError(TrainingError):
    """The trained model failed a gate (for example ONNX parity) and was not registered."""

    exit_code = exit_codes.QUALITY_GATE


class DriftInputError(TrainingError):
    """The inputs do not fit together (missing features, text in a numeric column)."""

    exit_code = exit_codes.DATA_INVALID


class ReportWriteError(TrainingError):
    """The report folder cannot be written."""

    exit_code = exit_codes.UNEXPECTED


class LogStoreError(TrainingError):
    """The inference log store is unreachable or has no log table."""

    exit_code = exit_codes.LOG_STORE
