"""ksqlDB's test-only aggregate functions: variadic arguments (last, or before literal parameters), literal
parameters that seed the accumulator, generic and ANY-typed arguments, and a STRUCT accumulator."""

from __future__ import annotations

from typing import Any, TypeVar

from ksqlpy import udaf

T = TypeVar("T")
U = TypeVar("U")


def weight(*values: int | str | None) -> int:
    """Numbers count as themselves, strings as their length, NULLs as nothing."""
    return sum(len(v) if isinstance(v, str) else v for v in values if v is not None)


class _WeightSum:
    """A running total of argument weights (see weight), seeded by the literal parameters' weights."""

    def init(self) -> int:
        return 0

    def merge(self, total: int, other: int) -> int:
        return total + other

    def result(self, total: int) -> int:
        return total


@udaf(name="VAR_ARG")
class NumberAndTexts(_WeightSum):
    def add(self, total: int, number: int | None, *texts: str | None) -> int:
        return total + weight(number, *texts)


@udaf(name="MID_VAR_ARG")
class NumberAndTextsFromSeed(_WeightSum):
    def init(self, first: int, second: int) -> int:  # type: ignore[override]
        return weight(first, second)

    def add(self, total: int, number: int | None, *texts: str | None) -> int:
        return total + weight(number, *texts)


class _FourLiteralSeed(_WeightSum):
    def init(self, number: int, first: str, second: str, third: str) -> int:  # type: ignore[override]
        return weight(number, first, second, third)


@udaf(name="MULTI_ARG")
class NumberAndText(_FourLiteralSeed):
    def add(self, total: int, number: int | None, text: str | None) -> int:
        return total + weight(number, text)


@udaf(name="FIVE_ARG")
class FiveColumns(_FourLiteralSeed):
    def add(self, total: int, number: int | None, first: str | None, second: str | None, third: str | None,
            other: int | None) -> int:
        return total + weight(number, first, second, third, other)


def _complete(*values: Any) -> bool:
    return all(value is not None for value in values)


class _FirstsOfCompleteRows:
    """The first argument of every row whose arguments are all non-NULL, in arrival order."""

    def init(self) -> list[Any]:
        return []

    def merge(self, firsts: list[Any], others: list[Any]) -> list[Any]:
        return firsts + others


@udaf(name="GENERIC_VAR_ARG")
class GenericFirsts(_FirstsOfCompleteRows):
    def add(self, firsts: list[T], first: T, number: int | None, *others: U) -> list[T]:
        return [*firsts, first] if _complete(first, number, *others) else firsts

    def result(self, firsts: list[T]) -> list[T]:
        return firsts


@udaf(name="OBJ_COL_ARG")
class IntegerFirsts(_FirstsOfCompleteRows):
    def add(self, firsts: list[int], first: int | None, *others: Any) -> list[int]:
        return [*firsts, first] if first is not None and _complete(*others) else firsts

    def result(self, firsts: list[int]) -> list[int]:
        return firsts


_AB = "STRUCT<A INT, B INT>"


@udaf(name="TEST_UDAF")
class Sum(_WeightSum):
    def add(self, total: int, number: int | None) -> int:
        return total + weight(number)


@udaf(name="TEST_UDAF", params=[_AB], returns=_AB)
class FieldSums:
    """Each field summed over the rows (a NULL struct or field adds nothing)."""

    def init(self) -> dict[str, int]:
        return {"A": 0, "B": 0}

    def add(self, sums: dict[str, int], struct: dict[str, int | None] | None) -> dict[str, int]:
        if struct is None:
            return sums
        return {name: total + (struct.get(name) or 0) for name, total in sums.items()}

    def merge(self, sums: dict[str, int], others: dict[str, int]) -> dict[str, int]:
        return {name: total + others[name] for name, total in sums.items()}

    def result(self, sums: dict[str, int]) -> dict[str, int]:
        return sums
