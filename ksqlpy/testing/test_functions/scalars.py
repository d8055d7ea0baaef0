"""ksqlDB's test-only scalar functions: overloads picked by argument types, NULL-tolerant calls, a struct
result, a function that throws (to exercise error handling) and two that fail when evaluated eagerly."""

from __future__ import annotations

from itertools import count
from typing import Any

from ksqlpy import udf

_A_STRUCT = "STRUCT<A STRING>"


@udf(name="TEST_UDF", returns=_A_STRUCT)
def a_struct() -> dict[str, Any]:
    return {"A": "foo"}


@udf(name="TEST_UDF", params=[_A_STRUCT], returns="STRING")
def field_a(struct: dict[str, Any]) -> str | None:
    return struct.get("A")


# The overloads below name the signature that was picked, so a case shows which one resolution chose.
@udf(name="TEST_UDF", null_on_null=False)
def long_string(number: int | None, text: str | None) -> str:
    return "doStuffLongString"


@udf(name="TEST_UDF", null_on_null=False)
def long_long_string(first: int | None, second: int | None, text: str | None) -> str:
    return "doStuffLongLongString"


@udf(name="TEST_UDF", null_on_null=False)
def long_varargs(*numbers: int | None) -> str:
    return "doStuffLongVarargs"


@udf(name="TOSTRUCT", returns=_A_STRUCT)
def to_struct(text: str) -> dict[str, Any]:
    return {"A": text}


class Boom(RuntimeError):
    """What BAD_UDF raises."""


_calls = count(1)


@udf(name="BAD_UDF", params=["INT"], returns="INT")
def always_fails(number: int) -> int:
    raise Boom(f"BAD_UDF always fails ({number})")


@udf(name="BAD_UDF")
def fails_when_asked(should_throw: bool) -> int:
    if should_throw:
        raise Boom("BAD_UDF was asked to fail")
    return 0


@udf(name="BAD_UDF")
def fails_every_other_call(text: str) -> str:
    """Fails on the first call and every second one after it: half the rows of a query fail."""
    if next(_calls) % 2 == 1:
        raise Boom(f"BAD_UDF fails on odd calls ({text})")
    return text


class EagerEvaluation(AssertionError):
    """A CASE branch was evaluated although it should not have been."""


@udf(name="WHENCONDITION")
def when_condition(result: bool, should_be_evaluated: bool) -> bool:
    """`result`, failing when a CASE evaluates a WHEN condition it should have skipped."""
    if not should_be_evaluated:
        raise EagerEvaluation("a WHEN condition was evaluated after an earlier one matched")
    return result


@udf(name="WHENRESULT", params=["INT", "BOOLEAN"], returns="INT")
def when_result(result: int, should_be_evaluated: bool) -> int:
    """`result`, failing when a CASE evaluates a THEN or ELSE result it should have skipped."""
    if not should_be_evaluated:
        raise EagerEvaluation("the result of a branch not taken was evaluated")
    return result
