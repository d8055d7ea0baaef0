"""User functions inside queries: vectorized calls once per batch, NULL handling, failures and udf.error.policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest
from numpy.typing import NDArray

from ksqlpy import udf, udtf
from ksqlpy.driver import InMemoryDriver
from ksqlpy.errors import StatementError, UdfError
from ksqlpy.functions.registry import FunctionRegistry
from ksqlpy.functions.udf import declarations_of


def driver_with(*functions: Callable[..., Any], properties: dict[str, str] | None = None) -> InMemoryDriver:
    registry = FunctionRegistry.with_builtins()
    for function in functions:
        for overload in declarations_of(function):
            overload.source = "test"
            registry.add(overload)
    driver = InMemoryDriver(properties, registry)
    driver.execute("CREATE STREAM src (id STRING KEY, x DOUBLE, n INT, s STRING) "
                   "WITH (kafka_topic='src', value_format='JSON');")
    return driver


def feed(driver: InMemoryDriver, rows: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
    for index, row in enumerate(rows):
        driver.produce("src", f"k{index}".encode(), orjson.dumps(row), index)
    driver.process()
    return [None if r.value is None else orjson.loads(r.value) for r in driver.records("OUT")]


def test_a_vectorized_udf_runs_once_per_batch_on_numpy_columns() -> None:
    batches: list[tuple[str, str, int]] = []

    @udf(vectorized=True)
    def weighted(x: NDArray[np.float64], n: NDArray[np.int64]) -> NDArray[np.float64]:
        batches.append((str(x.dtype), str(n.dtype), len(x)))
        return x * n

    driver = driver_with(weighted)
    driver.execute("CREATE STREAM out AS SELECT id, WEIGHTED(x, n) AS w, WEIGHTED(x, n) + 1 AS w1 FROM src "
                   "WHERE WEIGHTED(x, n) > 1;")
    out = feed(driver, [{"X": 1.5, "N": 2}, {"X": 0.5, "N": 1}, {"X": None, "N": 4}, {"X": 2.0, "N": 3}])
    assert out == [{"W": 3.0, "W1": 4.0}, {"W": 6.0, "W1": 7.0}]
    # once for the filter (the NULL row left out), once for the projection of the rows that passed: the
    # projection's two expressions share one call
    assert batches == [("float64", "int64", 3), ("float64", "int64", 2)]


def test_integer_columns_reach_a_double_parameter_as_float_arrays() -> None:
    received: list[NDArray[np.float64]] = []

    @udf(vectorized=True)
    def halved(x: NDArray[np.float64]) -> NDArray[np.float64]:
        received.append(x)
        return x / 2

    driver = driver_with(halved)
    driver.execute("CREATE STREAM out AS SELECT id, HALVED(n) AS h, HALVED(n + 1) AS h1 FROM src;")
    out = feed(driver, [{"N": 3}, {"N": None}, {"N": -7}])
    assert out == [{"H": 1.5, "H1": 2.0}, {"H": None, "H1": None}, {"H": -3.5, "H1": -3.0}]
    assert [(a.dtype, a.tolist()) for a in received] == [(np.float64, [3.0, -7.0]), (np.float64, [4.0, -6.0])]


def test_vectorized_nulls_strings_and_integer_results() -> None:
    @udf(vectorized=True, params=["STRING", "INT"], returns="INT")
    def clipped_length(s: list[str], limit: Any) -> Any:
        assert isinstance(s, list)
        return np.minimum([len(v) for v in s], limit)

    driver = driver_with(clipped_length)
    driver.execute("CREATE STREAM out AS SELECT id, CLIPPED_LENGTH(s, n) AS l FROM src;")
    out = feed(driver, [{"S": "abcdef", "N": 3}, {"S": None, "N": 3}, {"S": "ab", "N": 5}])
    assert out == [{"L": 3}, {"L": None}, {"L": 2}]


def test_a_failing_vectorized_batch_is_retried_row_by_row() -> None:
    @udf(vectorized=True)
    def inverse(x: NDArray[np.float64]) -> NDArray[np.float64]:
        if (x == 0).any():
            raise ZeroDivisionError("cannot invert zero")
        return 1 / x

    driver = driver_with(inverse)
    driver.execute("CREATE STREAM out AS SELECT id, INVERSE(x) AS inv FROM src;")
    out = feed(driver, [{"X": 2.0}, {"X": 0.0}, {"X": 4.0}])
    assert out == [{"INV": 0.5}, {"INV": None}, {"INV": 0.25}]
    [entry] = driver.processing_log
    assert entry["offset"] == 1
    assert "UDF INVERSE failed: ZeroDivisionError: cannot invert zero" in entry["reason"]
    assert "Traceback" in entry["reason"]


def test_a_vectorized_udf_returning_the_wrong_length_nulls_and_logs_each_row() -> None:
    @udf(vectorized=True)
    def broken(x: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.zeros(len(x) + 1)

    driver = driver_with(broken)
    driver.execute("CREATE STREAM out AS SELECT id, BROKEN(x) AS b FROM src;")
    assert feed(driver, [{"X": 1.0}, {"X": 2.0}]) == [{"B": None}, {"B": None}]
    assert [e["offset"] for e in driver.processing_log] == [0, 1]
    assert "returned 2 values for 1 rows" in driver.processing_log[0]["reason"]


def test_a_vectorized_udf_inside_a_lambda_is_called_per_element() -> None:
    @udf(vectorized=True)
    def plus_one(x: NDArray[np.float64]) -> NDArray[np.float64]:
        return x + 1

    driver = driver_with(plus_one)
    driver.execute("CREATE STREAM out AS SELECT id, TRANSFORM(ARRAY[x, x * 2], v => PLUS_ONE(v)) AS a FROM src;")
    assert feed(driver, [{"X": 1.0}]) == [{"A": [2.0, 3.0]}]


def failing_udf() -> Callable[..., Any]:
    @udf
    def risky(n: int) -> int:
        if n == 13:
            raise ValueError("unlucky")
        return n

    return risky


ROWS = [{"N": 1}, {"N": 13}, {"N": 2}]


def test_default_policy_nulls_the_result_and_logs_the_row_and_traceback() -> None:
    driver = driver_with(failing_udf())
    driver.execute("CREATE STREAM out AS SELECT id, RISKY(n) AS r, n FROM src;")
    assert feed(driver, ROWS) == [{"R": 1, "N": 1}, {"R": None, "N": 13}, {"R": 2, "N": 2}]
    [entry] = driver.processing_log
    assert "UDF RISKY failed: ValueError: unlucky" in entry["reason"] and "raise ValueError" in entry["reason"]


def test_skip_policy_drops_the_row() -> None:
    driver = driver_with(failing_udf(), properties={"udf.error.policy": "skip"})
    driver.execute("CREATE STREAM out AS SELECT id, RISKY(n) AS r FROM src;")
    assert feed(driver, ROWS) == [{"R": 1}, {"R": 2}]
    assert len(driver.processing_log) == 1


def test_fail_policy_stops_processing() -> None:
    driver = driver_with(failing_udf())
    driver.execute("SET 'udf.error.policy'='fail';")
    driver.execute("CREATE STREAM out AS SELECT id, RISKY(n) AS r FROM src;")
    with pytest.raises(UdfError, match="unlucky"):
        feed(driver, ROWS)


def test_dlq_policy_sends_the_input_record_to_the_dead_letter_topic() -> None:
    driver = driver_with(failing_udf(), properties={"udf.error.policy": "dlq"})
    driver.execute("CREATE STREAM out AS SELECT id, RISKY(n) AS r FROM src;")
    assert feed(driver, ROWS) == [{"R": 1}, {"R": 2}]
    [letter] = driver.records("OUT_dlq")
    assert (letter.key, orjson.loads(letter.value or b"")) == (b"k1", {"N": 13})
    headers = dict(letter.headers)
    assert headers["ksqlpy.error"] == b"UDF RISKY failed: ValueError: unlucky"
    assert headers["ksqlpy.query.id"] == b"CSAS_OUT_0"
    assert headers["ksqlpy.source.offset"] == b"1"


def test_dlq_topic_can_be_named_and_policy_is_validated() -> None:
    driver = driver_with(failing_udf(), properties={"udf.error.policy": "dlq", "udf.error.dlq.topic": "Bad_Rows"})
    driver.execute("CREATE STREAM out AS SELECT id, RISKY(n) AS r FROM src;")
    feed(driver, ROWS)
    assert len(driver.records("Bad_Rows")) == 1
    driver.execute("SET 'udf.error.policy'='ignore';")
    with pytest.raises(StatementError, match=r"Invalid value for udf\.error\.policy: 'ignore'"):
        driver.execute("CREATE STREAM out2 AS SELECT id, RISKY(n) AS r FROM src;")


def test_built_in_function_errors_keep_ksqldb_behaviour_under_any_policy() -> None:
    driver = driver_with(properties={"udf.error.policy": "skip"})
    driver.execute("CREATE STREAM out AS SELECT id, CAST(s AS INT) AS i FROM src;")
    assert feed(driver, [{"S": "12"}, {"S": "twelve"}]) == [{"I": 12}, {"I": None}]


def test_a_user_table_function_turns_one_row_into_many() -> None:
    @udtf
    def repeat(s: str, times: int) -> list[str]:
        if times < 0:
            raise ValueError("negative")
        return [s] * times

    driver = driver_with(repeat)
    driver.execute("CREATE STREAM out AS SELECT id, REPEAT(s, n) AS word, n FROM src WHERE n IS NOT NULL;")
    out = feed(driver, [{"S": "ab", "N": 2}, {"S": "x", "N": 0}, {"S": "bad", "N": -1}, {"S": None, "N": 1}])
    assert out == [{"WORD": "ab", "N": 2}, {"WORD": "ab", "N": 2}]
    assert [r.key for r in driver.records("OUT")] == [b"k0", b"k0"]
    [entry] = driver.processing_log
    assert "UDF REPEAT failed: ValueError: negative" in entry["reason"]
    with pytest.raises(StatementError, match="Table function REPEAT is not allowed here"):
        driver.execute("CREATE STREAM out2 AS SELECT id, UCASE(REPEAT(s, n)) AS w FROM src;")
