"""Restore rate of a GROUP BY's state from its changelog, against a raw consume loop of the same topic.

On an embedded broker (Tansu) started here, per scenario:

1. `ksqlpy run --until-idle` of a counting GROUP BY over a one-partition stream holding one record creates
   the query's changelog topics and commits its input offset (1);
2. `--records` changelog records shaped like the real ones (the key's bytes, `values.encode` of an entry
   ((count, sum), max timestamp, (key,)), the input offset header at 1 so at-least-once applies them all)
   are produced to its entries changelog, over `--keys` distinct keys (or all distinct);
3. raw: a confluent-kafka loop consumes the topic to its end, with the restore consumer's settings
   (read_committed, end-of-partition events, batches of RESTORE_BATCH) and touching key, value and headers;
4. ksqlpy: the query's state directory is deleted and the same file run again (`--verbose`); the restore's
   own log line ("restored partition 0 from N changelog records in S s (R records/s)") gives the figure.

    .venv/bin/python bench/restore.py [--records 500000] [--keys 100000] [--profile DIR]

`--keys 0` runs the all-distinct scenario only; by default both run. `--profile DIR` records the restoring
run under py-spy (collapsed stacks per scenario in DIR, for speedscope or flamegraph.pl). The issue's target: >= 200 000 records/s. A missed
target is reported, not an error.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from ksqlpy.runtime.broker import EmbeddedBroker
from ksqlpy.runtime.changelog import INPUT_OFFSET_HEADER, RESTORE_BATCH, changelog_topic
from ksqlpy.runtime.clients import CONSUMER_DEFAULTS, PRODUCER_DEFAULTS
from ksqlpy.runtime.worker import consumer_group_id
from ksqlpy.state.values import encode

TARGET_RECORDS_PER_S = 200_000
QUERY_ID = "CTAS_RESTORE_COUNTS_0"  # what ksqlpy names the file's one persistent query
STORE = "Aggregate-Aggregate-Materialize"
COMMITTED_INPUT_OFFSET = 1  # the first run reads the one input record and commits past it
RESTORED_LINE = re.compile(r"restored partition 0 from (\d+) changelog records in [\d.]+ s \((\d+) records/s\)")
RUN_TIMEOUT_S = 300
SQL = """\
SET 'auto.offset.reset'='earliest';
CREATE STREAM restore_input (k STRING KEY, v INT) WITH (kafka_topic='{topic}', value_format='JSON', partitions=1);
CREATE TABLE restore_counts AS SELECT k, COUNT(*) AS n, SUM(v) AS total FROM restore_input GROUP BY k;
"""


@dataclass(frozen=True)
class Scenario:
    records: int
    keys: int  # distinct keys among the records

    def __str__(self) -> str:
        distinct = "all distinct" if self.keys >= self.records else f"{self.keys:,} distinct keys"
        return f"{self.records:,} records, {distinct}"


def run_ksqlpy(sql: Path, bootstrap: str, service_id: str, state_dir: Path, profile: Path | None) -> str:
    """`ksqlpy run --until-idle` of the file; returns its stderr (the log)."""
    command = [sys.executable, "-m", "ksqlpy.cli", "run", str(sql), "--bootstrap-servers", bootstrap,
               "--service-id", service_id, "--until-idle", "1", "--verbose", "-p", f"ksql.streams.state.dir={state_dir}"]
    if profile is not None:
        command = [str(Path(sys.executable).parent / "py-spy"), "record", "--rate", "200", "--format", "raw", "--output", str(profile),
                   "--", *command]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    if finished.returncode != 0:
        raise SystemExit(f"ksqlpy run failed ({finished.returncode}):\n{finished.stderr[-4000:]}")
    return finished.stderr


def fill_changelog(bootstrap: str, topic: str, scenario: Scenario) -> None:
    producer = Producer({**PRODUCER_DEFAULTS, "bootstrap.servers": bootstrap, "linger.ms": "20",
                         "queue.buffering.max.messages": "500000"})
    headers: list[tuple[str, str | bytes | None]] = [(INPUT_OFFSET_HEADER, str(COMMITTED_INPUT_OFFSET).encode())]
    counts: dict[int, int] = {}
    for number in range(scenario.records):
        key_number = number % scenario.keys
        count = counts[key_number] = counts.get(key_number, 0) + 1
        key = f"user{key_number}"
        value = encode(((count, count * 3), 1_700_000_000_000 + number, (key,)))
        while True:
            try:
                producer.produce(topic, value, key.encode(), 0, headers=headers)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(60) != 0:
        raise SystemExit(f"could not fill {topic}")


def raw_consume_rate(bootstrap: str, topic: str) -> tuple[int, float]:
    """Records read and records/s of a plain loop over the topic, read as the restore reads it."""
    consumer = Consumer({**CONSUMER_DEFAULTS, "bootstrap.servers": bootstrap, "group.id": f"raw_{uuid.uuid4().hex}",
                         "enable.partition.eof": True, "isolation.level": "read_committed"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    count = 0
    began = time.perf_counter()
    held: dict[bytes, bytes | None] = {}
    try:
        at_end = False
        while not at_end:
            for message in consumer.consume(RESTORE_BATCH, 0.5):
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        raise SystemExit(f"could not read {topic}: {error.str()}")
                    at_end = True
                    continue
                message.headers()
                held[message.key() or b""] = message.value()
                count += 1
    finally:
        consumer.close()
    return count, count / (time.perf_counter() - began)


def measure(bootstrap: str, workdir: Path, scenario: Scenario, profile_dir: Path | None) -> None:
    """Prints raw and ksqlpy restore records/s for one scenario on fresh topics."""
    tag = uuid.uuid4().hex[:8]
    input_topic, service_id = f"restore_input_{tag}", f"restore_{tag}_"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(input_topic, 1, 1)]).values():
        future.result()
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(input_topic, b'{"V": 1}', b"user0", 0)
    producer.flush(10)
    sql = workdir / f"restore_{tag}.sql"
    sql.write_text(SQL.format(topic=input_topic))
    state_dir = workdir / f"state_{tag}"
    run_ksqlpy(sql, bootstrap, service_id, state_dir, None)

    topic = changelog_topic(consumer_group_id(service_id, QUERY_ID), STORE)
    fill_changelog(bootstrap, topic, scenario)
    records, raw_rate = raw_consume_rate(bootstrap, topic)

    shutil.rmtree(state_dir)  # no local state, no checkpoint: the whole changelog is read
    profile = None if profile_dir is None else profile_dir / f"restore_{scenario.records}_{scenario.keys}.folded"
    log = run_ksqlpy(sql, bootstrap, service_id, state_dir, profile)
    restored = RESTORED_LINE.search(log)
    if restored is None:
        raise SystemExit(f"no restore line in the log:\n{log[-4000:]}")
    restored_records, rate = int(restored[1]), float(restored[2])
    # The restore also reads the positions changelog: a record or so beyond the entries'.
    check = "" if restored_records >= records else f"  (restored only {restored_records:,} of {records:,}!)"
    print(f"{scenario!s:<42}raw {raw_rate:>10,.0f}/s   ksqlpy {rate:>10,.0f}/s   "
          f"{rate / raw_rate:>5.2f}x raw   target {TARGET_RECORDS_PER_S:,}/s "
          f"{'met' if rate >= TARGET_RECORDS_PER_S else 'MISSED'}{check}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--keys", type=int, default=100_000, help="distinct keys of the first scenario (0: skip it)")
    parser.add_argument("--profile", type=Path, help="a folder for py-spy flame graphs of the restoring runs")
    arguments = parser.parse_args()
    scenarios = [Scenario(arguments.records, arguments.records)]
    if 0 < arguments.keys < arguments.records:
        scenarios.insert(0, Scenario(arguments.records, arguments.keys))
    if arguments.profile is not None:
        arguments.profile.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ksqlpy-bench-restore-") as workdir, EmbeddedBroker() as broker:
        print("restore of one changelog partition into an empty RocksDB state directory "
              "(raw: a confluent-kafka consume loop of the same topic)", flush=True)
        for scenario in scenarios:
            measure(broker.bootstrap_servers, Path(workdir), scenario, arguments.profile)


if __name__ == "__main__":
    main()
