"""Two `ksqlpy run` processes with one service id share a persistent query: the consumer group splits the
input's partitions between them, and together they write every input record."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app_process import KsqlpyRun, write_sql

PARTITIONS = 4
RECORDS = 400
ASSIGNED = re.compile(r"query CSAS_SCALED_0: assigned partitions \[([\d, ]*)\]")


def latest_assignment(run: KsqlpyRun) -> set[int]:
    found = ASSIGNED.findall(run.stderr)
    return {int(p) for p in found[-1].split(",") if p.strip()} if found else set()


def test_two_processes_with_one_service_id_split_the_partitions(
    broker: str, tmp_path: Path, unique_topic: Callable[..., str], produce_json: Callable[..., None],
    consume_all: Callable[..., Any], wait_until: Callable[..., Any],
) -> None:
    source, sink = unique_topic("events"), unique_topic("scaled")
    service_id = f"scale_{uuid.uuid4().hex[:10]}_"
    sql = write_sql(tmp_path, "scale", (
        "SET 'auto.offset.reset'='earliest';\n"
        f"CREATE STREAM events (k STRING KEY, id INT) WITH (kafka_topic='{source}', value_format='JSON', "
        f"partitions={PARTITIONS});\n"
        f"CREATE STREAM scaled WITH (kafka_topic='{sink}') AS SELECT k, id FROM events;\n"
    ))
    first = KsqlpyRun(sql, broker, service_id, "--verbose")
    second: KsqlpyRun | None = None
    try:
        wait_until(lambda: latest_assignment(first), timeout=20, message=f"the first process's partitions\n"
                   f"{first.describe()}")
        second = KsqlpyRun(sql, broker, service_id, "--verbose")
        runs = (first, second)

        def split_between_both() -> bool:
            mine, theirs = latest_assignment(first), latest_assignment(second)
            return bool(mine) and bool(theirs) and not mine & theirs and mine | theirs == set(range(PARTITIONS))

        wait_until(split_between_both, timeout=25, message=f"a rebalance over both processes\n{second.describe()}")
        produce_json(broker, source, [(f"key{i}", {"ID": i}) for i in range(RECORDS)], partitions=PARTITIONS)
        output = consume_all(broker, sink, expected_count=RECORDS, timeout=15)
        for run in runs:
            assert run.stop() == 0, run.describe()
    finally:
        first.ensure_stopped()
        if second is not None:
            second.ensure_stopped()
    assert "Already running as query CSAS_SCALED_0" in second.stdout
    assert {r.json_value["ID"] for r in output} == set(range(RECORDS))
    processed = [run.totals()["CSAS_SCALED_0"].records_in for run in runs]
    assert all(count > 0 for count in processed), processed
    assert sum(processed) >= RECORDS
