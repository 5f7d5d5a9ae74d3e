"""Report declarations: :class:`Param`, :class:`ReportSpec` and the registry.

A report is a notebook in ``notebooks/`` with a cell tagged ``parameters`` plus a declaration
(:class:`ReportSpec`, made in the report's own module such as :mod:`custvalue.reports.value`):
each parameter's name, type, default and help text, declared once and used for validation,
``--help-params`` and the run header. :func:`validate_params` checks every value before any
kernel starts.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import difflib
import glob
import inspect
import math
import os
import re
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .. import _sources
from ..errors import ParameterError

__all__ = [
    "DATASET_NAMES",
    "Param",
    "ReportSpec",
    "accepted_values",
    "format_params_help",
    "get_report",
    "is_remote",
    "list_reports",
    "notebook_path",
    "register_report",
    "validate_params",
]

#: Built-in data sources a report's ``data`` parameter accepts besides a path (one list, shared
#: with the command line: :mod:`custvalue._sources`).
DATASET_NAMES = _sources.DATASET_NAMES


_PACKAGE_DIR = Path(__file__).resolve().parent.parent
#: Where report notebooks are looked for, first match wins: ``$CUSTVALUE_NOTEBOOKS``, the copy
#: shipped inside an installed wheel (``custvalue/_notebooks``, package data mapped from the
#: repository's ``notebooks/``), and the checkout's own ``notebooks/``.
_NOTEBOOK_DIRS = (_PACKAGE_DIR / "_notebooks", _PACKAGE_DIR.parent.parent / "notebooks")


def notebook_path(name: str) -> Path:
    """The report notebook ``name`` (e.g. ``"value_report.ipynb"``), in a checkout or a wheel."""
    env = os.environ.get("CUSTVALUE_NOTEBOOKS")
    dirs = (Path(env), *_NOTEBOOK_DIRS) if env else _NOTEBOOK_DIRS
    for folder in dirs:
        if (folder / name).is_file():
            return folder / name
    return dirs[0] / name


_TYPES = ("str", "int", "float", "bool", "date", "data", "path", "list", "choice")
_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}
_NONE = {"", "none", "null", "auto"}


def accepted_values(function: Callable[..., Any], argument: str) -> tuple[str, ...]:
    """The values ``function`` accepts for ``argument``, from its ``typing.Literal`` annotation.

    ``Literal["a", "b"]``, ``Literal[...] | None`` and ``Sequence[Literal[...]]`` are understood.

    Raises
    ------
    TypeError
        If the argument is not annotated with a ``Literal`` (the function then does not say what
        it accepts, and a report cannot offer choices for it).
    """
    import collections.abc
    import typing

    function = inspect.unwrap(function)
    annotation = function.__annotations__.get(argument)
    if isinstance(annotation, str):  # from __future__ import annotations
        annotation = eval(annotation, function.__globals__)  # our own source, not user input

    def literals(tp: Any) -> tuple[str, ...] | None:
        origin = typing.get_origin(tp)
        if origin is typing.Literal:
            return tuple(str(v) for v in typing.get_args(tp))
        if origin in (typing.Union, types.UnionType, list, tuple, collections.abc.Sequence):
            found = [literals(a) for a in typing.get_args(tp) if a is not type(None)]
            found = [f for f in found if f]
            return found[0] if len(found) == 1 else None
        return None

    accepted = literals(annotation)
    if not accepted:
        raise TypeError(
            f"{function.__qualname__}({argument}=...) is not annotated with a typing.Literal; "
            "annotate it so report parameters can take their choices from it"
        )
    return accepted


@dataclasses.dataclass(frozen=True)
class Param:
    """One report parameter, declared once.

    Parameters
    ----------
    name : str
        Python identifier used in the notebook's ``parameters`` cell.
    type : str
        ``str``, ``int``, ``float``, ``bool``, ``date`` (ISO date, stored as ``"YYYY-MM-DD"``),
        ``data`` (a path, glob or one of :data:`DATASET_NAMES`), ``path`` (an existing local
        file, e.g. a cost table), ``list`` (of strings; a comma-separated string on the command
        line) or ``choice`` (one of ``choices``). ``data`` and ``path`` values are made absolute
        during validation, because the notebook runs in another directory.
    default : Any
        Value used when the caller does not give one. ``None`` means "automatic" where
        ``nullable`` is true.
    help : str
        One sentence for ``--help-params`` and the report header.
    choices : tuple of str, optional
        Allowed values (``choice``) or allowed items (``list``). Leave it out and give ``feeds``
        instead wherever the value is passed on to a function: a second list drifts.
    minimum, maximum : float, optional
        Inclusive bounds for ``int``/``float``; ``exclusive_minimum`` makes the lower one strict.
    nullable : bool
        Whether ``None`` (or ``"auto"``/``"none"`` on the command line) is allowed.
    feeds : (callable, str), optional
        The function and argument the value is passed to, e.g.
        ``(custvalue.data.load_transactions, "returns")``. The choices are then read from that
        argument's ``typing.Literal`` annotation (:func:`accepted_values`), so they are exactly
        what the function accepts.
    """

    name: str
    type: str
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    nullable: bool = False
    feeds: tuple[Callable[..., Any], str] | None = dataclasses.field(
        default=None, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValueError(f"Param {self.name}: unknown type {self.type!r}; use one of {_TYPES}")
        if self.feeds is not None:
            accepted = accepted_values(*self.feeds)
            if self.choices is not None and tuple(self.choices) != accepted:
                raise ValueError(
                    f"Param {self.name}: choices {self.choices} differ from what "
                    f"{self.feeds[0].__qualname__}({self.feeds[1]}=...) accepts: {accepted}"
                )
            object.__setattr__(self, "choices", accepted)

    @property
    def type_label(self) -> str:
        label = self.type
        if self.type == "choice" and self.choices:
            label = "{" + "|".join(self.choices) + "}"
        if self.nullable:
            label += " or auto"
        return label

    def parse(self, value: Any) -> Any:
        """Convert ``value`` (a Python value or a command-line string) or raise ParameterError."""
        where = f"parameter {self.name!r}"
        if value is None or (
            isinstance(value, str)
            and value.strip().lower() in _NONE
            and (self.nullable or self.type not in ("str", "list"))
        ):
            if self.nullable:
                return None
            raise ParameterError(f"{where} needs a value ({self.type_label}); {self.help}")
        t = self.type
        if t in ("str", "data", "path"):
            if not isinstance(value, str | os.PathLike):
                raise ParameterError(
                    f"{where} must be a string, got {type(value).__name__} {value!r}"
                )
            return os.fspath(value)
        if t == "choice":
            text = str(value).strip()
            if self.choices and text not in self.choices:
                raise ParameterError(
                    f"{where} must be one of {', '.join(self.choices)}; got {text!r}"
                )
            return text
        if t == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                return value.strip().lower() in _TRUE
            raise ParameterError(f"{where} must be true or false, got {value!r}")
        if t in ("int", "float"):
            return self._parse_number(value, where)
        if t == "date":
            return self._parse_date(value, where)
        # list
        if isinstance(value, str):
            items = [v.strip() for v in value.split(",") if v.strip()]
        elif isinstance(value, list | tuple):
            items = [str(v).strip() for v in value]
        else:
            raise ParameterError(f"{where} must be a comma-separated list, got {value!r}")
        if self.choices:
            bad = [v for v in items if v not in self.choices]
            if bad:
                raise ParameterError(
                    f"{where}: unknown item(s) {', '.join(map(repr, bad))}; "
                    f"allowed: {', '.join(self.choices)}"
                )
        return items

    def _parse_number(self, value: Any, where: str) -> int | float:
        if isinstance(value, bool):
            raise ParameterError(f"{where} must be a number, got {value!r}")
        try:
            if self.type == "int":
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError
                number: int | float = (
                    int(str(value).strip()) if isinstance(value, str) else int(value)
                )
            else:
                number = float(value)
        except (TypeError, ValueError):
            kind = "a whole number" if self.type == "int" else "a number"
            raise ParameterError(f"{where} must be {kind}, got {value!r}") from None
        if isinstance(number, float) and not math.isfinite(number):
            raise ParameterError(f"{where} must be finite, got {value!r}")
        low, high = self.minimum, self.maximum
        if low is not None and (number < low or (self.exclusive_minimum and number <= low)):
            op = ">" if self.exclusive_minimum else ">="
            raise ParameterError(f"{where} must be {op} {low:g}, got {number:g}")
        if high is not None and number > high:
            raise ParameterError(f"{where} must be <= {high:g}, got {number:g}")
        return number

    @staticmethod
    def _parse_date(value: Any, where: str) -> str:
        if isinstance(value, _dt.datetime):
            return value.date().isoformat()
        if isinstance(value, _dt.date):
            return value.isoformat()
        text = str(value).strip()
        try:
            return _dt.date.fromisoformat(text[:10] if len(text) > 10 else text).isoformat()
        except ValueError:
            raise ParameterError(f"{where} must be a date like 2024-06-30, got {value!r}") from None


@dataclasses.dataclass(frozen=True)
class ReportSpec:
    """A report: its notebook, its parameters and what a successful run must produce.

    Parameters
    ----------
    name : str
        Name used on the command line (``custvalue report NAME``) and in output paths.
    title : str
        Human title for the HTML header.
    description : str
        One line for ``custvalue report --list``.
    notebook : Path
        The notebook to execute (must have a cell tagged ``parameters``).
    params : tuple of Param
        Declared parameters. The runner always injects ``output_dir`` as well.
    check : callable, optional
        ``check(values)`` raises :class:`ParameterError` for impossible combinations.
    outputs : tuple of str
        Files the notebook must write into ``output_dir``; a run without them fails.
    requirements : callable, optional
        ``requirements(transactions, values)`` raises :class:`~custvalue.errors.DataValidationError`
        when the loaded data cannot give this report (too few customers, no repeat buyers, no
        data on one side of the calibration end...). The runner calls it in pre-flight, before
        any kernel starts, with the transactions :func:`~custvalue.reports.inputs.load_report_data`
        returned.
    """

    name: str
    title: str
    description: str
    notebook: Path
    params: tuple[Param, ...]
    check: Callable[[dict[str, Any]], None] | None = None
    outputs: tuple[str, ...] = ()
    requirements: Callable[[Any, dict[str, Any]], None] | None = None

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        if "data" in names and "engine" not in names:  # every report reading transactions
            from .inputs import ENGINE_PARAM

            at = names.index("data") + 1
            params = (*self.params[:at], ENGINE_PARAM, *self.params[at:])
            object.__setattr__(self, "params", params)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)


_REGISTRY: dict[str, ReportSpec] = {}


def register_report(spec: ReportSpec, *, replace: bool = False) -> ReportSpec:
    """Add a report to the registry (``custvalue report --list`` shows it)."""
    if spec.name in _REGISTRY and not replace:
        raise ParameterError(f"a report named {spec.name!r} is already registered")
    names = [p.name for p in spec.params]
    if len(set(names)) != len(names) or "output_dir" in names:
        raise ParameterError(f"report {spec.name!r}: duplicate or reserved parameter names {names}")
    _REGISTRY[spec.name] = spec
    return spec


def list_reports() -> list[ReportSpec]:
    """The registered reports, by name."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def get_report(name: str | ReportSpec) -> ReportSpec:
    """Look a report up by name (a :class:`ReportSpec` is returned as is)."""
    if isinstance(name, ReportSpec):
        return name
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ParameterError(
            f"unknown report {name!r}{hint} Available: {', '.join(sorted(_REGISTRY)) or 'none'}"
        ) from None


def validate_params(
    report: str | ReportSpec, params: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Check and convert parameters; return every declared parameter with its value.

    Raises
    ------
    ParameterError
        Unknown name (with the closest declared one), wrong type, out-of-range value, missing
        data path, or an impossible combination (e.g. calibration end after observation end).
    """
    spec = get_report(report)
    given = dict(params or {})
    unknown = [k for k in given if k not in spec.param_names]
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, spec.param_names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ParameterError(
            f"unknown parameter {name!r} for report {spec.name!r}{hint} "
            f"(see `custvalue report {spec.name} --help-params`)"
        )
    values: dict[str, Any] = {}
    for p in spec.params:
        raw = given.get(p.name, p.default)
        values[p.name] = p.parse(raw) if (p.name in given or raw is not None) else None
        if values[p.name] is None and not p.nullable:
            raise ParameterError(f"parameter {p.name!r} is required: {p.help}")
        if p.type in ("data", "path") and values[p.name] is not None:
            # the notebook runs in a temporary directory: relative paths must not reach it
            values[p.name] = _check_data_path(values[p.name], p.name, bundled=p.type == "data")
    if spec.check is not None:
        spec.check(values)
    return values


def is_remote(path: str) -> bool:
    """Whether ``path`` is a URL (``s3://``, ``https://``...) rather than a local path."""
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", path))


def _check_data_path(source: str, name: str, *, bundled: bool = True) -> str:
    """Check that a local path or glob exists and return it absolute; names and URLs as given."""
    if (bundled and source in DATASET_NAMES) or is_remote(source):
        return source
    expanded = os.path.expanduser(source)
    if any(ch in source for ch in "*?[") and not Path(expanded).exists():
        if not glob.glob(expanded, recursive=True):
            raise ParameterError(f"parameter {name!r}: no file matches the pattern {source!r}")
        return os.path.abspath(expanded)
    if not Path(expanded).exists():
        what = (
            f"give a path to a CSV/Parquet file or one of {', '.join(DATASET_NAMES)}"
            if bundled
            else "give the path of an existing file"
        )
        raise ParameterError(
            f"parameter {name!r}: {'data ' if bundled else ''}file {source!r} does not exist "
            f"(cwd {os.getcwd()}); {what}"
        )
    return os.path.abspath(expanded)


def format_params_help(report: str | ReportSpec) -> str:
    """Plain-text table of a report's parameters: name, type, default and help."""
    spec = get_report(report)
    lines = [f"Parameters of the {spec.name!r} report ({spec.title}); set with -p name=value:", ""]
    width = max(len(p.name) for p in spec.params)
    for p in spec.params:
        default = (
            "auto"
            if p.default is None
            else (",".join(p.default) if isinstance(p.default, list | tuple) else str(p.default))
        )
        lines.append(f"  {p.name:<{width}}  {p.type_label}  (default: {default})")
        lines.append(f"  {'':<{width}}  {p.help}")
    return "\n".join(lines)

