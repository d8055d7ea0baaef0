"""Throughput of a stream-table join (sensor readings enriched from a table of cars): ksqlpy against a raw loop.

On one embedded broker (Tansu, `ksqlpy.runtime.broker.EmbeddedBroker`), in the same run:

1. a `cars` table topic gets `--cars` rows (key = car id, JSON {model, owner, region}), then a readings topic
   `--n` connected-car sensor records (the shared harness's generator, ../shared/bench/peers.py, key = car id)
   over 5% more car ids than the table holds, so an inner join drops about one reading in twenty; both topics
   have `--partitions` partitions (co-partitioned), the cars written first (older timestamps);
2. each contender reads both topics from the beginning into a fresh output topic:
   - raw:    a confluent-kafka program that reads the cars topic to its end into a dict, then consumes the
             readings in batches (as the harness's ceiling-raw does), looks each car up and produces the
             enriched JSON (orjson);
   - ksqlpy: `ksqlpy run` of a CSAS `... FROM readings r JOIN cars c ON r.car_id = c.car_id`;
3. the output topic's record count is sampled every 50 ms (the harness's TopicWatch); steady records/s is
   the output between the first sample showing output and the one showing all of it, over that time;
4. the output is checked: its count equals the readings whose car exists, and every reading of 20 sample
   cars comes out once, joined with its car's row.

    .venv/bin/python bench/join.py [--n 300000] [--cars 1000] [--repeat N] [--json FILE] [--profile DIR]

Prints records/s per contender (medians over repeats, contenders interleaved) and ksqlpy's ratio to the raw
loop; the issue's target is >= 0.7x. `--profile DIR` records the ksqlpy runs under py-spy (collapsed stacks).
Also the entry point of the raw loop (`join.py raw-loop ...`), run as a subprocess.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from ksqlpy.runtime.broker import EmbeddedBroker

REPO = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.7  # issue 12
BATCH = 5000  # what the harness's ceiling-raw takes per consume call
SAMPLE_CARS = 20
UNKNOWN_CAR_SHARE = 0.05  # readings name this many more car ids than the table holds
POLL_S = 0.05
MODELS = ("Model S", "Model 3", "Corolla", "Golf", "Civic", "Leaf", "Zoe", "Ioniq")
REGIONS = ("north", "south", "east", "west", "central")
READING_FIELDS = ("ts", "speed", "coolant_temp", "battery_percentage")
CAR_FIELDS = ("model", "owner", "region")
SQL = """\
CREATE STREAM readings (car_id VARCHAR KEY, ts BIGINT, speed DOUBLE, coolant_temp DOUBLE, battery_percentage DOUBLE)
  WITH (KAFKA_TOPIC='{readings}', VALUE_FORMAT='JSON', PARTITIONS={partitions});
CREATE TABLE cars (car_id VARCHAR PRIMARY KEY, model VARCHAR, owner VARCHAR, region VARCHAR)
  WITH (KAFKA_TOPIC='{cars}', VALUE_FORMAT='JSON', PARTITIONS={partitions});
CREATE STREAM enriched WITH (KAFKA_TOPIC='{output}', VALUE_FORMAT='JSON') AS
  SELECT r.car_id AS car_id, r.ts, r.speed, r.coolant_temp, r.battery_percentage, c.model, c.owner, c.region
  FROM readings r JOIN cars c ON r.car_id = c.car_id EMIT CHANGES;
"""


# -- the raw loop (a subprocess)


def raw_loop(bootstrap: str, cars_topic: str, readings_topic: str, sink: str, group: str) -> None:
    stopping = [False]
    signal.signal(signal.SIGTERM, lambda *_: stopping.__setitem__(0, True))
    loads, dumps = orjson.loads, orjson.dumps
    cars = read_table(bootstrap, cars_topic)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": True, "session.timeout.ms": 6000})
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "queue.buffering.max.messages": 500_000})
    raw_produce = producer.produce

    def produce(value: bytes, key: bytes | None) -> None:
        while True:
            try:
                raw_produce(sink, value, key)
                return
            except BufferError:
                producer.poll(0.05)

    consumer.subscribe([readings_topic])
    try:
        while not stopping[0]:
            for message in consumer.consume(BATCH, 0.2):
                if message.error() is not None:
                    continue
                key = message.key()
                car = cars.get(key)  # type: ignore[arg-type]
                if car is None:
                    continue
                reading = loads(message.value())  # type: ignore[arg-type]
                produce(dumps({"car_id": key.decode(),  # type: ignore[union-attr]
                               "ts": reading["ts"], "speed": reading["speed"],
                               "coolant_temp": reading["coolant_temp"],
                               "battery_percentage": reading["battery_percentage"],
                               "model": car["model"], "owner": car["owner"], "region": car["region"]}), key)
            producer.poll(0)
    finally:
        producer.flush(5)
        consumer.close()


def read_table(bootstrap: str, topic: str) -> dict[bytes, dict[str, Any]]:
    """The topic's latest value per key, read from the start of every partition to its end."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"join-raw-table-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, partition, 0) for partition in partitions])
    table: dict[bytes, dict[str, Any]] = {}
    open_partitions = set(partitions)
    try:
        while open_partitions:
            for message in consumer.consume(BATCH, 0.5):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        open_partitions.discard(message.partition())
                    continue
                value = message.value()
                if value is None:
                    table.pop(message.key(), None)  # type: ignore[arg-type]
                else:
                    table[message.key()] = orjson.loads(value)  # type: ignore[index]
    finally:
        consumer.close()
    return table


# -- the harness


@dataclass
class Expected:
    """What an inner join must output: the count, and every joined row of the sample cars."""

    count: int = 0
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)


@dataclass
class RunResult:
    contender: str
    repeat: int
    status: str
    records_out: int
    wall_s: float
    first_output_s: float | None
    steady_rps: float | None
    cpu_s: float | None  # CPU seconds of the contender's processes from its start until done
    verify: str
    progress: list[tuple[float, int]]  # (seconds since start, records out), about every 0.25 s


def car_id(number: int) -> str:
    return f"car-{number:05d}"


class Harness:
    def __init__(self, peers: Any, bootstrap: str, workdir: Path, args: argparse.Namespace) -> None:
        self.peers, self.bootstrap, self.workdir, self.args = peers, bootstrap, workdir, args
        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        tag = uuid.uuid4().hex[:6]
        self.cars_topic, self.readings_topic = f"join-cars-{tag}", f"join-readings-{tag}"

    def load(self) -> Expected:
        """Fills the cars and readings topics; returns what the join must output."""
        args = self.args
        for topic in (self.cars_topic, self.readings_topic):
            self.peers.create_topic(self.admin, topic, args.partitions)
        rng = random.Random(args.seed)
        producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 20, "batch.num.messages": 10_000,
                             "queue.buffering.max.messages": 1_000_000, "partitioner": "murmur2_random"})
        cars: dict[str, dict[str, str]] = {}
        for number in range(args.cars):
            car = {"model": rng.choice(MODELS), "owner": f"owner-{rng.randrange(10**6):06d}",
                   "region": rng.choice(REGIONS)}
            cars[car_id(number)] = car
            self.produce(producer, self.cars_topic, orjson.dumps(car), car_id(number))
        if producer.flush(60):
            sys.exit("could not load the cars table")
        time.sleep(0.01)  # every reading's timestamp is later than every car's
        expected = Expected(rows={car_id(number): [] for number in range(SAMPLE_CARS)})
        base_ts = int(time.time() * 1000) - 3_600_000
        ids = int(args.cars * (1 + UNKNOWN_CAR_SHARE))
        for number in range(args.n):
            reading = self.peers.make_record(rng, number, base_ts)
            reading["car_id"] = key = car_id(rng.randrange(ids))
            joined = cars.get(key)
            if joined is not None:
                expected.count += 1
                if key in expected.rows:
                    expected.rows[key].append(tuple(reading[name] for name in READING_FIELDS)
                                              + tuple(joined[name] for name in CAR_FIELDS))
            self.produce(producer, self.readings_topic, orjson.dumps(reading), key)
            if number % 20_000 == 0:
                producer.poll(0)
        if producer.flush(60):
            sys.exit("could not load the readings")
        self.peers.log(f"loaded {args.cars:,} cars and {args.n:,} readings ({expected.count:,} with a car)")
        return expected

    @staticmethod
    def produce(producer: Producer, topic: str, value: bytes, key: str) -> None:
        while True:
            try:
                producer.produce(topic, value, key.encode())
                return
            except BufferError:
                producer.poll(0.05)

    def command(self, contender: str, sink: str, group: str) -> list[str]:
        python = sys.executable
        if contender == "raw":
            return [python, __file__, "raw-loop", self.bootstrap, self.cars_topic, self.readings_topic, sink, group]
        sql = self.workdir / f"{group}.sql"
        sql.write_text(SQL.format(readings=self.readings_topic, cars=self.cars_topic, output=sink,
                                  partitions=self.args.partitions), encoding="utf-8")
        command = [python, "-m", "ksqlpy.cli", "run", "--bootstrap-servers", self.bootstrap, "--service-id", group,
                   "-p", "auto.offset.reset=earliest", str(sql)]
        if self.args.profile is not None:
            # py-spy writes its profile when the program ends by itself, which --until-idle makes it do.
            profile = self.args.profile / f"{group}.folded"
            command = [str(Path(python).parent / "py-spy"), "record", "--rate", "100", "--format", "raw",
                       "--output", str(profile), "--", *command, "--until-idle", "1"]
        return command

    def run(self, contender: str, repeat: int, expected: Expected) -> RunResult:
        tag = f"{contender}-{repeat}-{uuid.uuid4().hex[:6]}"
        sink = f"join-out-{tag}"
        self.peers.create_topic(self.admin, sink, self.args.partitions)
        watch = self.peers.TopicWatch(self.bootstrap, sink, self.args.partitions)
        samples: list[tuple[float, int]] = []
        status = "ok"
        cpu = None
        log_path = self.workdir / f"{tag}.log"
        with log_path.open("wb") as log_file:
            started = time.monotonic()
            process = self.peers.spawn(self.command(contender, sink, f"join-{tag}"), contender,
                                       stdout=log_file, stderr=subprocess.STDOUT, cwd=REPO)
            try:
                while True:
                    count = sum(watch.highs())
                    samples.append((time.monotonic() - started, count))
                    if count >= expected.count:
                        break
                    if process.poll() is not None:
                        status = f"exited rc={process.returncode}"
                        break
                    if samples[-1][0] > self.args.timeout:
                        status = "timeout"
                        break
                    time.sleep(POLL_S)
                cpu = self.peers.cpu_seconds(pgid=process.pid)
            finally:
                if self.args.profile is not None and status == "ok":
                    process.wait(self.args.timeout)
                self.peers.kill_group(process)
        time.sleep(0.3)
        highs = watch.highs()
        watch.close()
        done_s, done_count = samples[-1]
        first = next(((at, count) for at, count in samples if count > 0), None)
        steady = (done_count - first[1]) / (done_s - first[0]) if first and done_s > first[0] else None
        verdict = (verify(self.peers.read_all(self.bootstrap, sink, highs), expected) if status == "ok"
                   else f"skipped; see {log_path}")
        progress = [(round(at, 2), count) for number, (at, count) in enumerate(samples) if number % 5 == 0]
        result = RunResult(contender, repeat, status, sum(highs), round(done_s, 2),
                           round(first[0], 2) if first else None, round(steady) if steady else None,
                           None if cpu is None else round(cpu, 2), verdict, progress)
        self.peers.log(f"{contender} #{repeat}: {status}, {result.records_out:,} out, steady {result.steady_rps} "
                       f"records/s, wall {result.wall_s} s (first output {result.first_output_s} s), "
                       f"cpu {result.cpu_s} s, verify {verdict}")
        return result


def verify(records: list[tuple[bytes | None, bytes]], expected: Expected) -> str:
    if len(records) != expected.count:
        return f"FAIL: {len(records):,} records, expected {expected.count:,}"
    got: dict[str, list[tuple[Any, ...]]] = {car: [] for car in expected.rows}
    for key, value in records:
        car = (key or b"").decode()
        if car in got:
            row = {name.lower(): column for name, column in orjson.loads(value).items()}
            got[car].append(tuple(row.get(name) for name in (*READING_FIELDS, *CAR_FIELDS)))
    for car, rows in expected.rows.items():
        if sorted(got[car]) != sorted(rows):
            wrong = next(iter(set(got[car]) ^ set(rows)), None)
            return f"FAIL: {car}: {len(got[car])} rows, expected {len(rows)} (first difference {wrong})"
    return f"ok: {expected.count:,} records, {sum(map(len, expected.rows.values())):,} rows of {SAMPLE_CARS} cars"


def summarize(results: list[RunResult]) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for contender in dict.fromkeys(result.contender for result in results):
        runs = [r for r in results if r.contender == contender and r.status == "ok" and r.steady_rps]
        rates = [r.steady_rps for r in runs if r.steady_rps]
        summary[contender] = {"runs": len([r for r in results if r.contender == contender]), "ok_runs": len(runs),
                              "steady_rps": statistics.median(rates) if rates else None,
                              "min_rps": min(rates, default=None), "max_rps": max(rates, default=None),
                              "wall_s": statistics.median(r.wall_s for r in runs) if runs else None,
                              "verify": "; ".join(sorted({r.verify.split(":")[0] for r in results
                                                          if r.contender == contender}))}
    raw = summary.get("raw", {}).get("steady_rps")
    ksqlpy = summary.get("ksqlpy", {}).get("steady_rps")
    if raw and ksqlpy:
        summary["ksqlpy"]["vs_raw"] = ratio = ksqlpy / raw
        summary["ksqlpy"]["target_met"] = ratio >= TARGET_RATIO
    print(f"{'contender':<10} {'runs':>5} {'steady out/s':>13} {'(min-max)':>15} {'wall s':>7}  {'vs raw':>7}  verify")
    for name, row in summary.items():
        spread = f"{row['min_rps'] / 1000:.0f}-{row['max_rps'] / 1000:.0f}k" if row["ok_runs"] > 1 else ""
        versus = f"{row['vs_raw']:.2f}x" if "vs_raw" in row else ""
        rate = f"{row['steady_rps']:,.0f}" if row["steady_rps"] else "-"
        wall = f"{row['wall_s']:.2f}" if row["wall_s"] else "-"
        print(f"{name:<10} {row['ok_runs']:>2}/{row['runs']:<2} {rate:>13} {spread:>15} {wall:>7}  {versus:>7}  "
              f"{row['verify']}")
    if "vs_raw" in summary.get("ksqlpy", {}):
        met = "met" if summary["ksqlpy"]["target_met"] else "MISSED"
        print(f"ksqlpy / raw = {summary['ksqlpy']['vs_raw']:.2f}x (target >= {TARGET_RATIO}x: {met})")
    return summary


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "raw-loop":
        raw_loop(*sys.argv[2:7])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=300_000, help="readings (default 300000)")
    parser.add_argument("--cars", type=int, default=1000, help="rows of the cars table (default 1000)")
    parser.add_argument("--partitions", type=int, default=1, help="partitions of every topic (default 1)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per contender, interleaved; medians shown")
    parser.add_argument("--contender", action="append", choices=["raw", "ksqlpy"], help="default both")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per run (default 180)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, help="write every run and the summary here")
    parser.add_argument("--profile", type=Path, help="a folder for py-spy profiles of the ksqlpy runs")
    parser.add_argument("--shared-bench", default=os.environ.get("KSQLPY_SHARED_BENCH", str(REPO.parent / "shared" / "bench")),
                        help="folder holding peers.py (record generator, output watch, process handling)")
    args = parser.parse_args()
    sys.path.insert(0, args.shared_bench)
    import peers  # the shared harness, used in place

    atexit.register(peers._cleanup)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="ksqlpy-bench-join-"))
    peers.log(f"work dir {workdir}")
    with EmbeddedBroker() as broker:
        harness = Harness(peers, broker.bootstrap_servers, workdir, args)
        expected = harness.load()
        results = []
        for repeat in range(1, args.repeat + 1):
            for contender in args.contender or ["raw", "ksqlpy"]:
                time.sleep(1.0)  # let the previous run's teardown settle
                results.append(harness.run(contender, repeat, expected))
    print(f"stream-table join: {args.n:,} readings, {args.cars:,} cars, {args.partitions} partition(s), "
          f"{expected.count:,} expected out")
    summary = summarize(results)
    if args.json is not None:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "runs": [asdict(r) for r in results], "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
