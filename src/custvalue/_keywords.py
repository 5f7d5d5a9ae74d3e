"""Keyword arguments declared once and forwarded (``**kwargs: Unpack[SomeTypedDict]``).

Where two public functions take the same group of keyword arguments (a function and the
estimator method it wraps, or two interval functions), the group is a ``TypedDict`` declared
once and each function forwards ``**kwargs`` typed with it. :func:`forwarded` checks the
keywords against that declaration so that a misspelt or missing one is reported with the public
function's name, as Python does for an explicit signature.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["forwarded"]


def forwarded(function: str, given: Mapping[str, Any], declared: Any) -> dict[str, Any]:
    """The keywords ``given`` to ``function``, checked against the TypedDict ``declared``.

    Raises
    ------
    TypeError
        A keyword ``declared`` does not have, or a required one that is missing.
    """
    allowed = declared.__required_keys__ | declared.__optional_keys__
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise TypeError(f"{function}() got an unexpected keyword argument {unknown[0]!r}")
    missing = sorted(declared.__required_keys__ - set(given))
    if missing:
        raise TypeError(f"{function}() missing required keyword-only argument(s): {', '.join(missing)}")
    return dict(given)
