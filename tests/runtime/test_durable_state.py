"""Durable state on the embedded broker: a GROUP BY killed mid-stream and run again ends with exact counts
(exactly_once) or none short (at_least_once); restarts with and without local state; two processes sharing
an aggregate, one of them killed; TERMINATE removing state and changelogs; expired windows leaving the
store and their changelog."""

from __future__ import annotations

import io
import shutil
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from app_process import KsqlpyRun, write_sql

from ksqlpy.runtime.app import KsqlpyApp
from ksqlpy.runtime.changelog import changelog_topic
from ksqlpy.runtime.clients import KafkaClients
from ksqlpy.runtime.config import RuntimeConfig
from ksqlpy.runtime.tools import ConsumedRecord
from ksqlpy.runtime.worker import consumer_group_id

KEYS = 20
STORE = "Aggregate-Aggregate-Materialize"


def counting_query(source: str, sink: str, partitions: int, *settings: str) -> str:
    sets = "".join(f"SET '{name}'='{value}';\n" for name, value in (s.split("=", 1) for s in settings))
    return (
        f"{sets}SET 'auto.offset.reset'='earliest';\n"
        f"CREATE STREAM clicks (k STRING KEY, v INT) WITH (kafka_topic='{source}', value_format='JSON', "
        f"partitions={partitions});\n"
        f"CREATE TABLE click_counts WITH (kafka_topic='{sink}') AS\n"
        "  SELECT k, COUNT(*) AS n, SUM(v) AS total FROM clicks GROUP BY k;\n"
    )


def clicks(numbers: range) -> list[tuple[str, dict[str, int]]]:
    return [(f"user{i % KEYS}", {"V": i}) for i in numbers]


def expected_counts(numbers: range) -> dict[str, int]:
    return dict(Counter(f"user{i % KEYS}" for i in numbers))


def latest_counts(records: list[ConsumedRecord]) -> dict[str, int]:
    """Each key's last count on the table's topic (a key's updates share a partition, in offset order)."""
    return {str(record.key_text): record.json_value["N"] for record in records if record.value is not None}


def runner_until_idle(sql: Path, broker: str, service_id: str, state_dir: Path) -> Callable[[], KsqlpyRun]:
    """Runs `ksqlpy run` of the file until idle with its own state directory, each time it is called."""

    def run_until_idle() -> KsqlpyRun:
        run = KsqlpyRun(sql, broker, service_id, "--until-idle", "2", "--verbose",
                        "-p", f"ksql.streams.state.dir={state_dir}")
        assert run.wait(90) == 0, run.describe()
        return run

    return run_until_idle


def service() -> str:
    return f"dur_{uuid.uuid4().hex[:10]}_"


@pytest.mark.parametrize("guarantee", ["exactly_once", "at_least_once"])
def test_a_group_by_killed_mid_stream_resumes_from_its_changelog(
    broker: str, tmp_path: Path, guarantee: str, unique_topic: Callable[..., str],
    produce_json: Callable[..., None], consume_all: Callable[..., list[ConsumedRecord]],
) -> None:
    source, sink = unique_topic("clicks"), unique_topic("click_counts")
    sql = write_sql(tmp_path, "count", counting_query(source, sink, 1, f"processing.guarantee={guarantee}"))
    service_id, total = service(), 6000
    produce_json(broker, source, clicks(range(total // 2)))
    first = KsqlpyRun(sql, broker, service_id)
    try:
        assert consume_all(broker, sink, expected_count=1, timeout=30), first.describe()
        produce_json(broker, source, clicks(range(total // 2, total)))
    finally:
        first.kill()
    # Killed: no checkpoint, so the state comes back from the changelog alone (the local copy is wiped).
    second = KsqlpyRun(sql, broker, service_id, "--until-idle", "3", "--verbose")
    assert second.wait(90) == 0, second.describe()
    assert "restored partition 0 from" in second.stderr, second.describe()
    counts = latest_counts(consume_all(broker, sink, idle=1.5))
    expected = expected_counts(range(total))
    if guarantee == "exactly_once":
        assert counts == expected
    else:
        assert set(counts) == set(expected)
        assert all(counts[key] >= expected[key] for key in expected), (counts, expected)


def test_a_restart_uses_the_local_state_after_a_clean_stop_and_the_changelog_without_it(
    broker: str, tmp_path: Path, unique_topic: Callable[..., str],
    produce_json: Callable[..., None], consume_all: Callable[..., list[ConsumedRecord]],
) -> None:
    source, sink = unique_topic("clicks"), unique_topic("click_counts")
    state_dir = tmp_path / "state"
    sql = write_sql(tmp_path, "count", counting_query(source, sink, 2))
    service_id = service()

    run_until_idle = runner_until_idle(sql, broker, service_id, state_dir)

    produce_json(broker, source, clicks(range(0, 400)), partitions=2)
    run_until_idle()
    checkpoints = sorted(path.name for path in (state_dir / service_id / "CTAS_CLICK_COUNTS_0").glob("*.checkpoint"))
    assert checkpoints == ["0.checkpoint", "1.checkpoint"]  # a clean stop checkpoints every partition

    produce_json(broker, source, clicks(range(400, 600)), partitions=2)
    with_state = run_until_idle()
    assert "after its checkpoint" not in with_state.stderr or "restored partition" in with_state.stderr
    assert latest_counts(consume_all(broker, sink, idle=1.5)) == expected_counts(range(600))

    shutil.rmtree(state_dir)  # a new machine: everything comes back from the changelogs
    produce_json(broker, source, clicks(range(600, 700)), partitions=2)
    without_state = run_until_idle()
    assert without_state.stderr.count("restored partition") == 2, without_state.describe()
    assert latest_counts(consume_all(broker, sink, idle=1.5)) == expected_counts(range(700))


def test_two_processes_share_an_aggregate_and_one_killed_and_restarted_loses_and_repeats_nothing(
    broker: str, tmp_path: Path, unique_topic: Callable[..., str], produce_json: Callable[..., None],
    consume_all: Callable[..., list[ConsumedRecord]], wait_until: Callable[..., Any],
) -> None:
    """The killed process is restarted from its state directory, as a supervisor would restart it. Its open
    transaction must end for read_committed readers of the sink to see past it: a restart ends it at once (its
    transactional ids come back), where the broker's transaction timeout would take 10 s on Kafka and for ever
    on the test broker (Tansu never times a transaction out)."""
    source, sink = unique_topic("clicks"), unique_topic("click_counts")
    partitions, total = 4, 4000
    sql = write_sql(tmp_path, "count", counting_query(source, sink, partitions, "processing.guarantee=exactly_once"))
    service_id = service()

    def start(name: str) -> KsqlpyRun:
        return KsqlpyRun(sql, broker, service_id, "--verbose", "-p", f"ksql.streams.state.dir={tmp_path / name}")

    produce_json(broker, source, clicks(range(total // 2)), partitions=partitions)
    doomed, survivor = start("doomed"), start("survivor")
    processes = [doomed, survivor]
    try:
        wait_until(lambda: "assigned partitions [" in doomed.stderr and "assigned partitions [" in survivor.stderr,
                   timeout=40, message=f"both processes to hold partitions\n{doomed.describe()}\n{survivor.describe()}")
        assert consume_all(broker, sink, expected_count=1, timeout=30)
        produce_json(broker, source, clicks(range(total // 2, total)), partitions=partitions)
        doomed.kill()
        restarted = start("doomed")
        processes.append(restarted)
        expected = expected_counts(range(total))
        wait_until(lambda: latest_counts(consume_all(broker, sink, idle=1.0)) == expected, timeout=60,
                   message=f"exact counts\n{survivor.describe()}\n{restarted.describe()}")
        assert survivor.stop() == 0, survivor.describe()
        assert restarted.stop() == 0, restarted.describe()
    finally:
        for process in processes:
            process.ensure_stopped()
    # the dead process's partitions were taken over with their state, restored from the changelogs
    assert "restored partition" in survivor.stderr + restarted.stderr, f"{survivor.describe()}\n{restarted.describe()}"


def test_terminate_removes_the_local_state_and_the_changelog_topics(
    broker: str, tmp_path: Path, unique_topic: Callable[..., str], produce_json: Callable[..., None],
    consume_all: Callable[..., list[ConsumedRecord]], wait_until: Callable[..., Any],
) -> None:
    source, sink = unique_topic("clicks"), unique_topic("click_counts")
    produce_json(broker, source, clicks(range(10)))
    config = RuntimeConfig(bootstrap_servers=broker, service_id=service(),
                           properties={"auto.offset.reset": "earliest", "ksql.streams.state.dir": str(tmp_path)})
    with KsqlpyApp(config, status=io.StringIO()).start() as app:
        [_stream, created] = app.execute(counting_query(source, sink, 1).split(";\n", 1)[1])
        query_id = created.query_id
        assert query_id is not None
        changelog = changelog_topic(consumer_group_id(config.service_id, query_id), STORE)
        assert consume_all(broker, sink, expected_count=1, timeout=20)
        assert changelog in app.backend.list_topics(include_internal=True)
        assert consume_all(broker, changelog, expected_count=1, timeout=20)  # the state reached its changelog
        query_directory = tmp_path / config.service_id / query_id
        assert query_directory.is_dir()

        app.execute(f"TERMINATE {query_id};")

        assert not query_directory.exists()
        assert changelog not in app.backend.list_topics(include_internal=True)


def test_windows_past_their_retention_leave_the_store_and_are_deleted_from_the_changelog(
    broker: str, tmp_path: Path, unique_topic: Callable[..., str], produce_json: Callable[..., None],
    consume_all: Callable[..., list[ConsumedRecord]],
) -> None:
    source, sink = unique_topic("beats"), unique_topic("beat_counts")
    minute = 60_000
    # windows of a minute kept for two; after the first two records stream time moves on by an hour
    produce_json(broker, source, [("a", {"V": 1}, 10 * minute), ("b", {"V": 1}, 10 * minute + 30_000)])
    config = RuntimeConfig(bootstrap_servers=broker, service_id=service(),
                           properties={"auto.offset.reset": "earliest", "ksql.streams.state.dir": str(tmp_path)})
    with KsqlpyApp(config, status=io.StringIO()).start() as app:
        [_stream, created] = app.execute(
            f"CREATE STREAM beats (k STRING KEY, v INT) WITH (kafka_topic='{source}', value_format='JSON');"
            f"CREATE TABLE beat_counts WITH (kafka_topic='{sink}') AS SELECT k, COUNT(*) AS n FROM beats "
            "WINDOW TUMBLING (SIZE 1 MINUTE, RETENTION 2 MINUTES, GRACE PERIOD 0 SECONDS) GROUP BY k;")
        query_id = created.query_id
        assert query_id is not None
        changelog = changelog_topic(consumer_group_id(config.service_id, query_id), STORE)
        assert len(consume_all(broker, changelog, expected_count=2, timeout=20)) == 2
        produce_json(broker, source, [("a", {"V": 1}, 70 * minute)])
        records = consume_all(broker, changelog, expected_count=5, timeout=20)
        store = app.engine.state.store(query_id, STORE, 0)
        kept = [key for key, _entry in store.range()]
    # the hour-later window is written, and the two of minute 10, past their retention, deleted (tombstones)
    assert [record.value is None for record in records] == [False, False, False, True, True]
    assert [record.key for record in records[3:]] == [record.key for record in records[:2]]
    assert kept == [records[2].key]


def test_local_state_ahead_of_a_recreated_changelog_is_wiped_not_trusted(
    broker: str, tmp_path: Path, unique_topic: Callable[..., str], clients: KafkaClients,
    produce_json: Callable[..., None], consume_all: Callable[..., list[ConsumedRecord]],
) -> None:
    source, sink = unique_topic("clicks"), unique_topic("click_counts")
    state_dir = tmp_path / "state"
    sql = write_sql(tmp_path, "count", counting_query(source, sink, 1))
    service_id = service()

    run_until_idle = runner_until_idle(sql, broker, service_id, state_dir)

    produce_json(broker, source, clicks(range(0, 100)))
    run_until_idle()  # a clean stop: the local state is checkpointed against the changelog
    changelog = changelog_topic(consumer_group_id(service_id, "CTAS_CLICK_COUNTS_0"), STORE)
    admin = clients.admin()
    admin.delete_topics([changelog])[changelog].result()  # as a broker that lost its data would

    produce_json(broker, source, clicks(range(100, 140)))
    rerun = run_until_idle()
    assert "ahead of its changelog" in rerun.stderr, rerun.describe()
    # the state the changelog no longer backs is gone: each key's count starts again from the next input
    assert latest_counts(consume_all(broker, sink, idle=1.5)) == expected_counts(range(100, 140))


def test_with_the_embedded_broker_and_no_state_directory_state_lasts_as_long_as_the_run() -> None:
    # the embedded broker forgets its changelogs when it stops: state kept longer could never match them
    with KsqlpyApp(RuntimeConfig(service_id=service()), status=io.StringIO()).start() as app:
        assert app.state is not None
        directory = app.state.directory
        assert directory.parent.is_dir() and directory.parent.name.startswith("ksqlpy-state-")
    assert not directory.parent.exists()
