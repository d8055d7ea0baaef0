"""Tab completion at the shell prompt: keywords from the grammar, names from the catalog and the registry."""

from __future__ import annotations

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from ksqlpy.driver import InMemoryDriver
from ksqlpy.functions.registry import Overload
from ksqlpy.shell.complete import StatementCompleter
from ksqlpy.types import BIGINT


def completions(completer: StatementCompleter, text: str) -> list[tuple[str, int, str]]:
    found = completer.get_completions(Document(text), CompleteEvent(completion_requested=True))
    return [(c.text, c.start_position, c.display_meta_text) for c in found]


@pytest.fixture
def driver() -> InMemoryDriver:
    driver = InMemoryDriver()
    driver.execute(
        "CREATE STREAM carsensor (eventid VARCHAR KEY, sensorinput VARCHAR, `camelCase` INT) "
        "WITH (kafka_topic='car-sensor', value_format='JSON', partitions=1);"
    )
    return driver


def test_keywords_come_from_the_grammar_whatever_the_case_typed(driver: InMemoryDriver) -> None:
    completer = StatementCompleter(driver.engine)
    assert completions(completer, "sel") == [("SELECT", -3, "keyword")]
    assert ("TERMINATE", -4, "keyword") in completions(completer, "TERM")
    assert ("BEGINNING", -4, "keyword") in completions(completer, "PRINT t FROM begi")


def test_sources_columns_functions_and_types_are_offered_where_the_word_starts(driver: InMemoryDriver) -> None:
    completer = StatementCompleter(driver.engine)
    assert completions(completer, "SELECT * FROM car") == [("CARSENSOR", -3, "stream")]
    assert completions(completer, "SELECT eventid, sens") == [("SENSORINPUT", -4, "column")]
    assert ("ABS", -2, "function") in completions(completer, "SELECT AB")
    assert ("VARCHAR", -3, "type") in completions(completer, "CREATE STREAM s (x VAR")


def test_names_that_need_quoting_are_completed_with_backticks(driver: InMemoryDriver) -> None:
    assert completions(StatementCompleter(driver.engine), "SELECT cam") == [("`camelCase`", -3, "column")]


def test_nothing_is_offered_without_a_word_before_the_cursor(driver: InMemoryDriver) -> None:
    assert completions(StatementCompleter(driver.engine), "SELECT ") == []
    assert completions(StatementCompleter(driver.engine), "SELECT (") == []


def test_completions_follow_the_catalog_and_the_registry_as_they_change(driver: InMemoryDriver) -> None:
    completer = StatementCompleter(driver.engine)
    driver.execute("CREATE STREAM alerts AS SELECT eventid, sensorinput AS reading FROM carsensor;")
    assert completions(completer, "SELECT * FROM ale") == [("ALERTS", -3, "stream")]
    assert ("READING", -4, "column") in completions(completer, "SELECT read")

    driver.engine.registry.add(Overload(name="CAR_SPEED_KMH", params=(BIGINT,), returns=BIGINT, impl=abs))
    assert completions(completer, "SELECT car_sp") == [("CAR_SPEED_KMH", -6, "function")]

    driver.execute("TERMINATE ALL; DROP STREAM alerts;")
    assert completions(completer, "SELECT * FROM ale") == []
