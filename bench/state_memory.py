"""Peak resident memory of `ksqlpy run` holding a GROUP BY over many distinct keys in its RocksDB state.

On an embedded broker (Tansu) started here: `--records` JSON records, each with its own key, are produced to
a one-partition stream; then `ksqlpy run --until-idle` of `CREATE TABLE ... AS SELECT k, COUNT(*) ... GROUP BY
k` reads them all (RocksDB state, changelog on, default record cache). The ksqlpy process's peak resident set
(VmHWM, and the kernel's own figure for the waited-for child) is reported against the issue's target
(< 600 MB), with a check that the table's topic got one row per key.

    .venv/bin/python bench/state_memory.py [--records 1000000] [-p NAME=VALUE ...]

`-p` passes settings to `ksqlpy run` (e.g. a smaller cache, to see what the peak is made of). A missed
target is reported, not an error.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from ksqlpy.runtime.broker import EmbeddedBroker
from ksqlpy.runtime.clients import PRODUCER_DEFAULTS

TARGET_BYTES = 600 * 1024 * 1024
SAMPLE_EVERY_S = 0.5
RUN_TIMEOUT_S = 900
SQL = """\
SET 'auto.offset.reset'='earliest';
CREATE STREAM memory_input (k STRING KEY, v INT) WITH (kafka_topic='{source}', value_format='JSON', partitions=1);
CREATE TABLE memory_counts WITH (kafka_topic='{sink}') AS SELECT k, COUNT(*) AS n FROM memory_input GROUP BY k;
"""


def produce_distinct(bootstrap: str, topic: str, records: int) -> None:
    producer = Producer({**PRODUCER_DEFAULTS, "bootstrap.servers": bootstrap, "linger.ms": "20",
                         "queue.buffering.max.messages": "500000"})
    for number in range(records):
        while True:
            try:
                producer.produce(topic, b'{"V": %d}' % number, b"key%08d" % number, 0)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(120) != 0:
        raise SystemExit(f"could not fill {topic}")


def status_kib(pid: int, field: str) -> int | None:
    """A `VmRSS`/`VmHWM` line of /proc/<pid>/status in KiB; None once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def run_sampling(command: list[str], log: Path) -> tuple[int, int, float]:
    """Runs `command` to its end; returns (exit status, peak resident bytes, seconds). Prints the resident
    set as it goes."""
    began = time.monotonic()
    with log.open("wb") as errors:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors, stdin=subprocess.DEVNULL)
    peak_kib = 0
    last_print = began
    # Reaped with wait4, never Popen.poll: the kernel then gives the child's exact peak, even past the last sample.
    while True:
        reaped, status, usage = os.wait4(process.pid, os.WNOHANG)
        if reaped == process.pid:
            break
        if time.monotonic() - began > RUN_TIMEOUT_S:
            process.kill()
            _reaped, status, usage = os.wait4(process.pid, 0)
            break
        peak_kib = max(peak_kib, status_kib(process.pid, "VmHWM") or 0)
        if time.monotonic() - last_print >= 10:
            resident_mb = (status_kib(process.pid, "VmRSS") or 0) / 1024
            print(f"  {time.monotonic() - began:5.0f} s: resident {resident_mb:,.0f} MB", flush=True)
            last_print = time.monotonic()
        time.sleep(SAMPLE_EVERY_S)
    peak_kib = max(peak_kib, usage.ru_maxrss)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, peak_kib * 1024, time.monotonic() - began


def table_rows(bootstrap: str, topic: str) -> int:
    """Distinct keys on the table's topic."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check_{uuid.uuid4().hex}",
                         "enable.partition.eof": True, "auto.offset.reset": "earliest"})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, partition, 0) for partition in partitions])
    keys: set[bytes] = set()
    at_end: set[int] = set()
    try:
        while len(at_end) < len(partitions):
            for message in consumer.consume(50_000, 1.0):
                error = message.error()
                if error is None:
                    keys.add(message.key() or b"")
                elif error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition() or 0)
                else:
                    raise SystemExit(f"could not read {topic}: {error.str()}")
    finally:
        consumer.close()
    return len(keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("-p", "--property", action="append", default=[], help="NAME=VALUE for ksqlpy run")
    arguments = parser.parse_args()
    tag = uuid.uuid4().hex[:8]
    source, sink = f"memory_input_{tag}", f"memory_counts_{tag}"
    with tempfile.TemporaryDirectory(prefix="ksqlpy-bench-memory-") as workdir, EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap_servers
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for future in admin.create_topics([NewTopic(source, 1, 1)]).values():
            future.result()
        produce_distinct(bootstrap, source, arguments.records)
        sql = Path(workdir) / "memory.sql"
        sql.write_text(SQL.format(source=source, sink=sink))
        settings = [f"ksql.streams.state.dir={workdir}/state", *arguments.property]
        command = [sys.executable, "-m", "ksqlpy.cli", "run", str(sql), "--bootstrap-servers", bootstrap,
                   "--service-id", f"memory_{tag}_", "--until-idle", "2",
                   *(option for setting in settings for option in ("-p", setting))]
        print(f"GROUP BY over {arguments.records:,} distinct keys through ksqlpy run --until-idle", flush=True)
        log = Path(workdir) / "ksqlpy.err"
        status, peak, seconds = run_sampling(command, log)
        if status != 0:
            raise SystemExit(f"ksqlpy run failed ({status}):\n{log.read_text()[-4000:]}")
        rows = table_rows(bootstrap, sink)
    verdict = "met" if peak < TARGET_BYTES else "MISSED"
    count_check = "ok" if rows == arguments.records else f"WRONG (expected {arguments.records:,})"
    print(f"peak resident {peak / 1024 / 1024:,.0f} MB (target < {TARGET_BYTES // 1024 // 1024} MB: {verdict}); "
          f"{rows:,} table rows ({count_check}); {seconds:.0f} s, {arguments.records / seconds:,.0f} records/s")


if __name__ == "__main__":
    main()
