"""ksqlDB's test-only functions: loaded for conformance runs only, and behaving as their cases need."""

from __future__ import annotations

from ksqlpy.driver import InMemoryDriver
from ksqlpy.functions.registry import FunctionRegistry
from ksqlpy.testing.test_functions import in_memory_driver_with_test_functions, registry_with_test_functions

TEST_ONLY = ("TEST_UDF", "BAD_UDF", "WHENCONDITION", "WHENRESULT", "TOSTRUCT", "TEST_UDTF", "TEST_UDAF", "VAR_ARG",
             "MID_VAR_ARG", "MULTI_ARG", "FIVE_ARG", "GENERIC_VAR_ARG", "OBJ_COL_ARG")


def test_every_test_function_loads_and_none_is_in_the_default_registry() -> None:
    loaded = registry_with_test_functions()
    assert all(loaded.exists(name) for name in TEST_ONLY)
    default = FunctionRegistry.with_builtins()
    assert not any(default.exists(name) for name in TEST_ONLY)
    assert not InMemoryDriver().engine.registry.exists("TEST_UDF")


def outputs(sql: str, values: list[bytes]) -> list[bytes | None]:
    driver = in_memory_driver_with_test_functions({})
    driver.execute("CREATE STREAM s (k STRING KEY, n INT, t STRING, flag BOOLEAN) "
                   "WITH (kafka_topic='s', value_format='JSON');" + sql)
    for offset, value in enumerate(values):
        driver.produce("s", b"x", value, offset)
    driver.process()
    return [record.value for record in driver.records("O")]


def test_case_evaluates_only_the_branch_it_takes() -> None:
    sql = ("CREATE STREAM o AS SELECT k, CASE WHEN WHENCONDITION(flag, true) THEN WHENRESULT(n, flag) "
           "ELSE WHENRESULT(0, NOT flag) END AS r FROM s;")
    assert outputs(sql, [b'{"N": 7, "FLAG": true}', b'{"N": 7, "FLAG": false}']) == [b'{"R":7}', b'{"R":0}']


def test_a_throwing_function_nulls_its_column() -> None:
    sql = "CREATE STREAM o AS SELECT k, BAD_UDF(flag) AS r, n FROM s;"
    assert outputs(sql, [b'{"N": 1, "FLAG": false}', b'{"N": 2, "FLAG": true}']) == [
        b'{"R":0,"N":1}', b'{"R":null,"N":2}']


def test_the_table_function_emits_each_argument_as_text() -> None:
    sql = ("CREATE STREAM o AS SELECT k, TEST_UDTF(n, CAST(n AS BIGINT), 1.5e0, flag, t, "
           "CAST(1.5 AS DECIMAL(20, 10)), STRUCT(A := t)) AS r FROM s;")
    assert outputs(sql, [b'{"N": 3, "T": "a", "FLAG": true}']) == [
        b'{"R":"3"}', b'{"R":"3"}', b'{"R":"1.5"}', b'{"R":"true"}', b'{"R":"a"}', b'{"R":"1.5000000000"}',
        b'{"R":"Struct{A=a}"}']
