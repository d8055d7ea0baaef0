"""Which stages a persistent query runs in on Kafka: repartition stages where rows must move to the partition
of a new key, and a lease where a query still moves them in process (so one process at a time runs it)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ksqlpy.driver import InMemoryDriver
from ksqlpy.execution.pipeline import Pipeline
from ksqlpy.runtime.stages import query_stages

SOURCES = (
    "CREATE STREAM readings (reading_id STRING KEY, car_id STRING, speed INT) WITH (kafka_topic='readings', "
    "value_format='JSON', partitions=4);"
    "CREATE TABLE cars (id STRING PRIMARY KEY, model STRING, owner_id STRING) WITH (kafka_topic='cars', "
    "value_format='JSON', partitions=4);"
    "CREATE TABLE owners (id STRING PRIMARY KEY, name STRING) WITH (kafka_topic='owners', value_format='JSON', "
    "partitions=2);"
)


def stages_of(query_text: str, durable: bool = False) -> list[tuple[str, list[str], str | None]]:
    """(name, topics read, lease topic) per stage of the query planned by the in-memory driver; `durable`: with
    state committed by its runner, as on Kafka, where rows then move through repartition topics."""
    made = InMemoryDriver()
    made.execute(SOURCES + query_text)
    (query,) = made.engine.queries.values()
    if durable:
        query = replace(query, pipeline=Pipeline(query.plan, lambda *_: None, query.sink, commits_state=False))
    return [(stage.name, sorted(stage.sources), stage.lease_topic) for stage in query_stages(query, "app")]


@pytest.mark.parametrize("query_text", [
    "CREATE STREAM o AS SELECT r.reading_id, c.model FROM readings r JOIN cars c ON r.reading_id = c.id;",
    "CREATE TABLE o AS SELECT reading_id, COUNT(*) AS n FROM readings GROUP BY reading_id;",
])
def test_a_query_whose_rows_stay_in_their_partitions_is_one_stage_shared_by_partitions(query_text: str) -> None:
    (stage,) = stages_of(query_text)
    assert stage[0] == "" and stage[2] is None


@pytest.mark.parametrize("query_text", [
    "CREATE TABLE o AS SELECT c.id, c.model, w.name FROM cars c JOIN owners w ON c.owner_id = w.id;",
    "CREATE TABLE o AS SELECT model, COUNT(*) AS n FROM cars GROUP BY model;",
    "CREATE TABLE o AS SELECT c.model, COUNT(*) AS n FROM readings r JOIN cars c ON r.car_id = c.id "
    "GROUP BY c.model;",
])
def test_a_query_moving_rows_between_partitions_in_process_is_leased(query_text: str) -> None:
    (stage,) = stages_of(query_text)
    assert stage[2] == "app-lease"


def test_a_join_on_a_value_column_rekeys_that_side_in_a_stage_of_its_own() -> None:
    assert stages_of("CREATE STREAM o AS SELECT r.car_id, c.model FROM readings r JOIN cars c ON r.car_id = c.id;",
                     durable=True) == [("Join-left", ["readings"], None), ("", ["app-Join-left-repartition", "cars"], None)]


def test_a_group_by_a_value_column_rekeys_in_a_stage_of_its_own() -> None:
    assert stages_of("CREATE TABLE o AS SELECT car_id, COUNT(*) AS n FROM readings GROUP BY car_id;", durable=True) == \
        [("GroupBy", ["readings"], None), ("", ["app-Aggregate-GroupBy-repartition"], None)]


def test_a_group_by_over_a_rekeyed_join_is_staged_and_leased() -> None:
    assert stages_of("CREATE TABLE o AS SELECT c.model, COUNT(*) AS n FROM readings r JOIN cars c ON r.car_id = c.id "
                     "GROUP BY c.model;", durable=True) == \
        [("Join-left", ["readings"], None), ("", ["app-Join-left-repartition", "cars"], "app-lease")]
