"""UDF API extensions: TypeVar and Any hints as generic and ANY parameters, aggregate literal parameters from
`init`'s signature with a variadic parameter before them, the declared name in messages, and primitive
accumulators over formats that hold one value only."""

from __future__ import annotations

from typing import Any, TypeVar

import pytest

from ksqlpy import udaf, udf
from ksqlpy.driver import InMemoryDriver
from ksqlpy.errors import StatementError
from ksqlpy.functions.registry import FunctionRegistry, Overload
from ksqlpy.functions.udf import declarations_of
from ksqlpy.types import BIGINT, INTEGER, STRING, ArrayType, MapType

T = TypeVar("T")


@udf(name="LAST_OF")
def last_of(values: list[T]) -> T:
    return values[-1]


@udf(name="DESCRIBED")
def described(value: Any) -> str:
    return type(value).__name__


@udaf(name="SEEDED_LENGTHS")
class SeededLengths:
    """The seed plus the number and the lengths of the texts of every row."""

    def init(self, seed: int) -> int:
        return seed

    def add(self, total: int, number: int | None, *texts: str | None) -> int:
        return total + (number or 0) + sum(len(text) for text in texts if text is not None)

    def merge(self, total: int, other: int) -> int:
        return total + other

    def result(self, total: int) -> int:
        return total


def registry_with(*targets: Any) -> FunctionRegistry:
    registry = FunctionRegistry.with_builtins()
    for target in targets:
        for overload in declarations_of(target):
            registry.add(overload)
    return registry


def only_overload(target: Any) -> Overload:
    [overload] = declarations_of(target)
    return overload


def test_a_type_variable_hint_binds_to_the_argument_type() -> None:
    registry = registry_with(last_of)
    assert registry.resolve("LAST_OF", [ArrayType(STRING)]).return_type == STRING
    assert registry.resolve("LAST_OF", [ArrayType(MapType(STRING, BIGINT))]).return_type == MapType(STRING, BIGINT)


def test_an_any_hint_accepts_every_type() -> None:
    registry = registry_with(described)
    for sql_type in (STRING, INTEGER, ArrayType(BIGINT)):
        assert registry.resolve("DESCRIBED", [sql_type]).arg_types == [sql_type]


def test_init_parameters_are_trailing_literals_after_the_variadic_one() -> None:
    overload = only_overload(SeededLengths)
    assert overload.literals == 1
    assert overload.signature_text() == "SEEDED_LENGTHS(BIGINT, STRING..., BIGINT)"
    registry = registry_with(SeededLengths)
    for texts in (0, 1, 3):
        bound = registry.resolve("SEEDED_LENGTHS", [BIGINT, *[STRING] * texts, INTEGER], "aggregate")
        assert bound.arg_types == [BIGINT, *[STRING] * texts, BIGINT]
    with pytest.raises(StatementError, match=r"Function 'SEEDED_LENGTHS' does not accept parameters \(BIGINT, "
                                             r"INTEGER, INTEGER\)"):
        registry.resolve("SEEDED_LENGTHS", [BIGINT, INTEGER, INTEGER], "aggregate")


def run(registry: FunctionRegistry, value_format: str, select: str, values: list[bytes]) -> list[bytes | None]:
    driver = InMemoryDriver(registry=registry)
    driver.execute(f"CREATE STREAM s (k STRING KEY, n BIGINT, a STRING, b STRING) "
                   f"WITH (kafka_topic='s', value_format='{value_format}');"
                   f"CREATE TABLE t AS SELECT k, {select} AS r FROM s GROUP BY k;")
    for offset, value in enumerate(values):
        driver.produce("s", b"x", value, offset)
    driver.process()
    return [record.value for record in driver.records("T")]


def test_a_query_seeds_each_group_with_the_literal_and_adds_every_variadic_argument() -> None:
    rows = [b'{"N": 1, "A": "ab", "B": "cde"}', b'{"N": null, "A": "f", "B": null}']
    assert run(registry_with(SeededLengths), "JSON", "SEEDED_LENGTHS(n, a, b, 100)", rows) == [
        b'{"R":106}', b'{"R":107}']


def test_a_literal_parameter_given_a_column_is_refused() -> None:
    with pytest.raises(StatementError, match="must be a literal"):
        run(registry_with(SeededLengths), "JSON", "SEEDED_LENGTHS(n, a, n)", [])


def test_a_primitive_accumulator_aggregates_a_delimited_source() -> None:
    assert run(registry_with(SeededLengths), "DELIMITED", "SEEDED_LENGTHS(n, a, 0)", [b"2,abc,x"]) == [b"5"]


def test_a_column_named_like_a_time_unit_is_the_column_when_passed_to_a_function() -> None:
    driver = InMemoryDriver()
    driver.execute("CREATE STREAM s (k STRING KEY, second STRING) WITH (kafka_topic='s', value_format='JSON');"
                   "CREATE STREAM o AS SELECT k, CONCAT(second, '!') AS c, "
                   "TIMESTAMPADD(SECONDS, 1, FROM_UNIXTIME(0)) AS t FROM s;")
    driver.produce("s", b"x", b'{"SECOND": "tick"}', 0)
    driver.process()
    assert [record.value for record in driver.records("O")] == [b'{"C":"tick!","T":1000}']
