"""Built-in NULL-handling functions: COALESCE, IFNULL and NULLIF."""

from __future__ import annotations

from typing import Any

from ksqlpy.functions.registry import T, scalar_function

_CATEGORY = "NULL"


@scalar_function(
    "COALESCE", params=[T, T], returns=T, variadic=True, null_on_null=False, category=_CATEGORY, declared_name="COALESCE",
    description="Returns the first argument that is not NULL, or NULL if all are.",
)
def coalesce(*values: Any) -> Any:
    return next((value for value in values if value is not None), None)


@scalar_function(
    "IFNULL", params=[T, T], returns=T, null_on_null=False, category=_CATEGORY, declared_name="IFNULL",
    description="Returns the first argument, or the second when the first is NULL.",
)
def ifnull(value: Any, alternative: Any) -> Any:
    return alternative if value is None else value


@scalar_function(
    "NULLIF", params=[T, T], returns=T, null_on_null=False, category=_CATEGORY,
    description="Returns NULL when both arguments are equal, otherwise the first argument.",
)
def nullif(value: Any, other: Any) -> Any:
    return None if value is not None and value == other else value
