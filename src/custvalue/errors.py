"""Exceptions raised by custvalue.

One module for every error the package raises on purpose. Messages say what is wrong, where
(column, row count, example values) and what to do. The CLI turns any :class:`CustvalueError`
into one line on stderr and exit code 2.
"""

from __future__ import annotations

__all__ = [
    "ConvergenceError",
    "CustvalueError",
    "DataSourceError",
    "DataValidationError",
    "DataWarning",
    "ModelNotFittedError",
    "ParameterError",
    "ReportFailedError",
    "SourceNotFoundError",
]


class CustvalueError(Exception):
    """Base class for every error custvalue raises on purpose."""


class DataValidationError(CustvalueError, ValueError):
    """Input data is missing columns, malformed, or empty after cleaning."""


class ParameterError(CustvalueError, ValueError):
    """An argument has an invalid value (unknown frequency, negative horizon, ...)."""


class ConvergenceError(CustvalueError, RuntimeError):
    """A model fit failed: the optimiser did not converge or a parameter ran away."""


class ModelNotFittedError(CustvalueError, RuntimeError):
    """A prediction was asked of a model that has neither been fitted nor given parameters."""


class DataSourceError(CustvalueError, OSError):
    """A data source cannot be reached: a database server down, a wrong password, no such host."""


class ReportFailedError(CustvalueError, RuntimeError):
    """A report notebook raised, timed out or its kernel died; the message is one line.

    ``failed_html`` is the failed notebook written as HTML with its code, when one was written.
    """

    def __init__(self, message: str, *, failed_html: object = None) -> None:
        super().__init__(message)
        self.failed_html = failed_html


class SourceNotFoundError(DataValidationError, FileNotFoundError):
    """A transaction source (file, glob or directory) matches no file.

    Both a :class:`DataValidationError` and a ``FileNotFoundError``, so ``except OSError`` and
    ``except CustvalueError`` both catch it; every entry point raises this one type.
    """


class DataWarning(UserWarning):
    """The data was accepted but looks wrong (negative raw amounts in a summary, ...)."""
