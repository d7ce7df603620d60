"""The trainer's error taxonomy: each maps to one CLI exit code and a one-line reason."""


class TrainingError(Exception):
    """Base of the errors the trainer reports to users rather than crashing on."""

    exit_code = 1


class DataSourceError(TrainingError):
    """The data could not be read or fetched."""

    exit_code = 3


class DataValidationError(TrainingError):
    """The data broke the feature schema; the message holds the full report."""

    exit_code = 4


class QualityGateError(TrainingError):
    """The trained model failed a gate (for example ONNX parity) and was not registered."""

    exit_code = 5


class DriftInputError(TrainingError):
    """The inputs do not fit together (missing features, text in a numeric column)."""

    exit_code = 4


class ReportWriteError(TrainingError):
    """The report folder cannot be written."""

    exit_code = 1


class LogStoreError(TrainingError):
    """The inference log store is unreachable or has no log table."""

    exit_code = 8
