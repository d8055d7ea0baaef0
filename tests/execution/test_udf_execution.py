"""User functions inside queries: vectorized calls once per batch, NULL handling, failures and udf.error.policy."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from decimal import Decimal
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


class Escape(BaseException):
    """An exception outside the Exception hierarchy, as a careless library might raise."""


def exiting_udf(raised: BaseException) -> Callable[..., Any]:
    @udf
    def exits(n: int) -> int:
        if n == 13:
            raise raised
        return n

    return exits


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message for you")


@pytest.mark.parametrize(("raised", "reason"), [
    (SystemExit(3), "SystemExit: 3"),
    (Escape("out"), "Escape: out"),
    (GeneratorExit(), "GeneratorExit"),
    (Unprintable(), "RuntimeError: Unprintable whose message cannot be shown"),
], ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else "")
def test_any_exception_a_udf_raises_is_a_failure_of_its_row(raised: BaseException, reason: str) -> None:
    driver = driver_with(exiting_udf(raised))
    driver.execute("CREATE STREAM out AS SELECT id, EXITS(n) AS e, EXITS(n) + 1 AS e1 FROM src;")
    assert feed(driver, ROWS) == [{"E": 1, "E1": 2}, {"E": None, "E1": None}, {"E": 2, "E1": 3}]
    assert [e["offset"] for e in driver.processing_log] == [1, 1]  # once per expression calling it
    assert f"UDF EXITS failed: {reason}" in driver.processing_log[0]["reason"]


def test_sys_exit_in_a_udf_follows_the_policy() -> None:
    driver = driver_with(exiting_udf(SystemExit(1)), properties={"udf.error.policy": "dlq"})
    driver.execute("CREATE STREAM out AS SELECT id, EXITS(n) AS e FROM src;")
    assert feed(driver, ROWS) == [{"E": 1}, {"E": 2}]
    assert [letter.key for letter in driver.records("OUT_dlq")] == [b"k1"]


def test_the_fail_policy_logs_the_failure_once() -> None:
    driver = driver_with(exiting_udf(SystemExit(1)), properties={"udf.error.policy": "fail"})
    driver.execute("CREATE STREAM out AS SELECT id, EXITS(n) + 1 AS e FROM src;")
    with pytest.raises(UdfError, match="SystemExit"):
        feed(driver, ROWS)
    assert len(driver.processing_log) == 1


def test_a_keyboard_interrupt_stops_the_main_thread_but_fails_only_the_row_elsewhere() -> None:
    driver = driver_with(exiting_udf(KeyboardInterrupt()))
    driver.execute("CREATE STREAM out AS SELECT id, EXITS(n) AS e FROM src;")
    with pytest.raises(KeyboardInterrupt):  # the user's Ctrl-C arrives on the main thread
        feed(driver, ROWS)
    outputs: list[list[dict[str, Any] | None]] = []
    worker = threading.Thread(target=lambda: outputs.append(feed(driver, ROWS)))
    worker.start()
    worker.join()
    assert outputs == [[{"E": 1}, {"E": None}, {"E": 2}]]


def test_a_vectorized_batch_ending_in_system_exit_is_retried_row_by_row() -> None:
    @udf(vectorized=True)
    def inverse(x: NDArray[np.float64]) -> NDArray[np.float64]:
        if (x == 0).any():
            sys.exit("cannot invert zero")
        return 1 / x

    driver = driver_with(inverse)
    driver.execute("CREATE STREAM out AS SELECT id, INVERSE(x) AS inv FROM src;")
    assert feed(driver, [{"X": 2.0}, {"X": 0.0}, {"X": 4.0}]) == [{"INV": 0.5}, {"INV": None}, {"INV": 0.25}]
    [entry] = driver.processing_log
    assert "UDF INVERSE failed: SystemExit: cannot invert zero" in entry["reason"]


def test_a_table_function_raising_system_exit_gives_no_rows_for_that_input() -> None:
    @udtf
    def repeat(s: str, times: int) -> list[str]:
        if times < 0:
            sys.exit(2)
        return [s] * times

    driver = driver_with(repeat)
    driver.execute("CREATE STREAM out AS SELECT id, REPEAT(s, n) AS word FROM src;")
    assert feed(driver, [{"S": "ab", "N": 1}, {"S": "bad", "N": -1}]) == [{"WORD": "ab"}]
    assert "UDF REPEAT failed: SystemExit: 2" in driver.processing_log[0]["reason"]


# --------------------------------------------------------------------------- results of the wrong type


def returning(values: dict[int, Any], returns: str, vectorized: bool = False) -> Callable[..., Any]:
    """A UDF declared to return `returns` that returns values[n] for its argument n (n itself otherwise)."""
    if vectorized:
        @udf(name="GIVES", params=["BIGINT"], returns=returns, vectorized=True)
        def gives_column(n: NDArray[np.int64]) -> Any:
            column = np.empty(len(n), dtype=object)  # one Python object per row, whatever each one is
            for row, v in enumerate(n.tolist()):
                column[row] = values.get(v, v)
            return column

        return gives_column

    @udf(name="GIVES", params=["BIGINT"], returns=returns)
    def gives(n: int) -> Any:
        return values.get(n, n)

    return gives


WRONG_VALUES = [
    pytest.param("BIGINT", "2", id="string for BIGINT"),
    pytest.param("BIGINT", 2.5, id="float for BIGINT"),
    pytest.param("BIGINT", True, id="bool for BIGINT"),
    pytest.param("BIGINT", 2**63, id="BIGINT out of range"),
    pytest.param("INT", 2**31, id="INT out of range"),
    pytest.param("DOUBLE", [1.0], id="list for DOUBLE"),
    pytest.param("DOUBLE", "1.0", id="string for DOUBLE"),
    pytest.param("STRING", 7, id="int for STRING"),
    pytest.param("BOOLEAN", 1, id="int for BOOLEAN"),
    pytest.param("ARRAY<BIGINT>", ["a"], id="string element for ARRAY<BIGINT>"),
    pytest.param("MAP<STRING, DOUBLE>", {"a": "b"}, id="string value for MAP<STRING, DOUBLE>"),
]


@pytest.mark.parametrize("vectorized", [False, True], ids=["row", "vectorized"])
@pytest.mark.parametrize(("returns", "wrong"), WRONG_VALUES)
def test_a_result_of_the_wrong_type_is_null_and_logged(returns: str, wrong: Any, vectorized: bool) -> None:
    right = {"BIGINT": 1, "INT": 1, "DOUBLE": 1.5, "STRING": "s", "BOOLEAN": False, "ARRAY<BIGINT>": [1],
             "MAP<STRING, DOUBLE>": {"a": 1.5}}[returns]
    driver = driver_with(returning({1: right, 2: wrong}, returns, vectorized))
    driver.execute("CREATE STREAM out AS SELECT id, GIVES(n) AS g FROM src;")
    assert feed(driver, [{"N": 1}, {"N": 2}, {"N": None}]) == [{"G": right}, {"G": None}, {"G": None}]
    [entry] = driver.processing_log
    assert entry["offset"] == 1
    assert f"UDF GIVES failed: UdfResultTypeError: returned {wrong!r} ({type(wrong).__name__}) where" in entry["reason"]
    assert "Traceback" not in entry["reason"]  # the UDF raised nothing: no trace of ksqlpy's own frames


def test_a_numpy_column_of_the_wrong_kind_is_null_not_truncated() -> None:
    @udf(vectorized=True, params=["DOUBLE"], returns="BIGINT")
    def doubled(x: NDArray[np.float64]) -> NDArray[np.float64]:
        return x * 2

    driver = driver_with(doubled)
    driver.execute("CREATE STREAM out AS SELECT id, DOUBLED(x) AS d FROM src;")
    assert feed(driver, [{"X": 1.25}, {"X": 2.0}]) == [{"D": None}, {"D": None}]
    assert "returned 2.5 (float) where BIGINT is declared" in driver.processing_log[0]["reason"]


def test_a_wrong_result_inside_an_expression_is_null_there_and_follows_the_policy() -> None:
    driver = driver_with(returning({2: "two"}, "BIGINT"), properties={"udf.error.policy": "skip"})
    driver.execute("CREATE STREAM out AS SELECT id, GIVES(n) * 10 AS g FROM src WHERE GIVES(n) > 0;")
    assert feed(driver, [{"N": 1}, {"N": 2}, {"N": 3}]) == [{"G": 10}, {"G": 30}]
    assert {e["offset"] for e in driver.processing_log} == {1}


def test_numbers_that_widen_to_the_declared_type_are_converted() -> None:
    @udf(vectorized=True, params=["BIGINT"], returns="DOUBLE")
    def as_is(n: NDArray[np.int64]) -> NDArray[np.int64]:
        return n

    driver = driver_with(returning({2: Decimal("2.5"), 3: np.int32(3)}, "DOUBLE"), as_is)
    driver.execute("CREATE STREAM out AS SELECT id, GIVES(n) AS g, AS_IS(n) AS a FROM src;")
    out = feed(driver, [{"N": 1}, {"N": 2}, {"N": 3}])
    assert out == [{"G": 1.0, "A": 1.0}, {"G": 2.5, "A": 2.0}, {"G": 3.0, "A": 3.0}]
    assert {type(value) for row in out if row for value in row.values()} == {float}
    assert driver.processing_log == []


def test_a_wrong_result_that_cannot_even_be_shown_is_still_null_and_logged() -> None:
    class Opaque:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    driver = driver_with(returning({2: Opaque()}, "STRING"))
    driver.execute("CREATE STREAM out AS SELECT id, GIVES(n) AS g FROM src;")
    assert feed(driver, [{"N": 2}]) == [{"G": None}]
    assert "returned <Opaque instance at" in driver.processing_log[0]["reason"]


def test_a_struct_result_takes_field_names_in_any_case_and_rejects_unknown_ones() -> None:
    @udf(params=["BIGINT"], returns="STRUCT<total BIGINT, label STRING>")
    def summary(n: int) -> dict[str, Any]:
        return {"total": n, "label": "x"} if n else {"total": n, "colour": "red"}

    driver = driver_with(summary)
    driver.execute("CREATE STREAM out AS SELECT id, SUMMARY(n) AS s FROM src;")
    assert feed(driver, [{"N": 4}, {"N": 0}]) == [{"S": {"TOTAL": 4, "LABEL": "x"}}, {"S": None}]
    assert "it has no field 'colour'" in driver.processing_log[0]["reason"]


def test_a_table_function_element_of_the_wrong_type_is_null() -> None:
    @udtf(params=["BIGINT"], returns="BIGINT")
    def parts(n: int) -> list[Any]:
        return [n, str(n)]

    driver = driver_with(parts)
    driver.execute("CREATE STREAM out AS SELECT id, PARTS(n) AS p FROM src;")
    assert feed(driver, [{"N": 5}]) == [{"P": 5}, {"P": None}]
    assert "returned '5' (str) where BIGINT is declared" in driver.processing_log[0]["reason"]


def test_a_udf_returning_the_declared_types_is_called_once_per_row() -> None:
    calls: list[int] = []

    @udf
    def counted(n: int) -> int:
        calls.append(n)
        return n + 1

    driver = driver_with(counted)
    driver.execute("CREATE STREAM out AS SELECT id, COUNTED(n) AS c, COUNTED(n) * 2 AS c2 FROM src;")
    assert feed(driver, [{"N": 1}, {"N": 2}]) == [{"C": 2, "C2": 4}, {"C": 3, "C2": 6}]
    assert calls == [1, 2, 1, 2]  # one loop per expression, no row-by-row re-run


def test_a_whole_expression_udf_result_is_converted_in_place_without_calling_again() -> None:
    calls: list[float] = []

    @udf
    def mean_of(x: float) -> float:
        calls.append(x)
        return np.mean([x, 0.0]) if x else "none"  # a numpy float64 is a float, but not a plain one

    driver = driver_with(mean_of)
    driver.execute("CREATE STREAM out AS SELECT id, MEAN_OF(x) AS m FROM src;")
    assert feed(driver, [{"X": 3.0}, {"X": 0.0}]) == [{"M": 1.5}, {"M": None}]
    assert calls == [3.0, 0.0]
    assert "returned 'none' (str) where DOUBLE is declared" in driver.processing_log[0]["reason"]
