"""Topic tools over Kafka: create topics, produce and consume JSON lines, and ksqlDB-style PRINT output.

JSON-lines record form (what `ksqlpy consume` writes and `ksqlpy produce` reads):

    {"key": ..., "value": ..., "partition": 0, "offset": 3, "timestamp": 1609459200000, "headers": [["h", "v"]]}

Key and value bytes are shown as the JSON they hold when they parse as JSON, else as UTF-8 text, else as
base64 text flagged by "key_encoding"/"value_encoding": "base64". Header values are UTF-8 text, null, or
{"base64": "..."} for binary ones.

`produce` accepts that envelope form (a JSON object with a "value" member and no members beyond the envelope's
own, so consume output can be fed straight back) or a bare JSON value. Encoding on the way in: null is a
tombstone / absent key, a JSON string is written as its raw UTF-8 text (so KAFKA and DELIMITED formats can be
produced), anything else as compact JSON. The one lossy case is a JSON string value, which comes back as text.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import itertools
import json
import struct
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from ksqlpy.errors import KsqlError
from ksqlpy.execution.pipeline import Headers, Record
from ksqlpy.runtime.clients import KafkaClients, describe_error
from ksqlpy.runtime.config import load_config
from ksqlpy.runtime.worker import take_fetched

ADMIN_TIMEOUT_S = 15.0
POLL_INTERVAL_S = 0.2
BATCH_SIZE = 500
# How long to wait for the last stored batch when locating a partition's true end (see end_offsets).
END_PROBE_TIMEOUT_S = 2.0
# Reading a whole topic (read_to_end): how long it may take, and how long a partition must stay quiet after
# its end-of-partition event to count as read.
READ_TO_END_TIMEOUT_S = 60.0
QUIET_AFTER_END_S = 1.0
ENVELOPE_FIELDS = frozenset(
    {"key", "value", "timestamp", "headers", "partition", "offset", "key_encoding", "value_encoding"}
)
NO_DATA_FORMAT = "¯\\_(ツ)_/¯ - no data processed"


def ensure_topic(admin: AdminClient, name: str, partitions: int = 1, config: dict[str, str] | None = None) -> bool:
    """Create `name` unless it exists; True when this call created it."""
    # Asking first avoids the broker's "already exists" answer, after which Tansu 0.6 no longer shuts down
    # on SIGTERM. The full listing is used because a metadata request naming a topic auto-creates it there.
    try:
        if name in admin.list_topics(timeout=ADMIN_TIMEOUT_S).topics:
            return False
    except KafkaException as error:
        raise KsqlError(f"Cannot list topics: {describe_error(error)}") from error
    # replication_factor=-1 lets the broker pick its default, which suits both one-node and real clusters.
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=-1, config=config or {})],
        operation_timeout=ADMIN_TIMEOUT_S,
        request_timeout=ADMIN_TIMEOUT_S,
    )
    try:
        futures[name].result()
    except KafkaException as error:
        kafka_error = error.args[0] if error.args else None
        if isinstance(kafka_error, KafkaError) and kafka_error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return False
        raise KsqlError(f"Cannot create topic {name}: {describe_error(error)}") from error
    return True


@dataclass(frozen=True)
class ConsumedRecord:
    """One record as read from a topic, payloads left as bytes."""

    key: bytes | None
    value: bytes | None
    partition: int
    offset: int
    timestamp: int
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)

    @property
    def key_text(self) -> str | None:
        return None if self.key is None else self.key.decode("utf-8")

    @property
    def json_value(self) -> Any:
        return None if self.value is None else json.loads(self.value)


def _as_bytes(data: str | bytes | None) -> bytes | None:
    return data.encode("utf-8") if isinstance(data, str) else data


def record_from_message(message: Message) -> ConsumedRecord:
    raw_headers = message.headers() or []
    header_items = raw_headers.items() if isinstance(raw_headers, dict) else raw_headers
    return ConsumedRecord(
        key=_as_bytes(message.key()),
        value=_as_bytes(message.value()),
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        timestamp=message.timestamp()[1],
        headers=[(name, _as_bytes(value)) for name, value in header_items],
    )


# ---------------------------------------------------------------------------------------------- reading


def _raise_for_error(message: Message) -> bool:
    """True when `message` carries a record; False for partition-EOF events; raises on real errors."""
    error = message.error()
    if error is None:
        return True
    if error.code() == KafkaError._PARTITION_EOF:
        return False
    raise KsqlError(f"Reading topic {message.topic()} failed: {error.str()}")


def topic_partition_ids(consumer: Consumer, topic: str) -> list[int]:
    try:
        metadata = consumer.list_topics(topic, timeout=ADMIN_TIMEOUT_S)
    except KafkaException as error:
        raise KsqlError(f"Cannot read the partitions of topic {topic}: {describe_error(error)}") from error
    described = metadata.topics.get(topic)
    if described is None or described.error is not None or not described.partitions:
        raise KsqlError(
            f"Could not find topic '{topic}', or the KSQL user does not have permissions to list the topic. "
            "Topic names are case-sensitive."
        )
    return sorted(described.partitions)


def end_offsets(consumer: Consumer, topic: str, partitions: list[int]) -> dict[int, int]:
    """The offset after each partition's last stored record, found by reading the last batch.

    Some brokers (Tansu 0.6) report the high watermark as the last batch's base offset + 1, so starting at
    the reported end would replay the tail of that batch; reading from there finds the real end.
    """
    watermarks = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=ADMIN_TIMEOUT_S) for p in partitions}
    ends = {p: high for p, (_low, high) in watermarks.items()}
    probe = {p: max(low, high - 1) for p, (low, high) in watermarks.items() if high > low}
    if not probe:
        return ends
    consumer.assign([TopicPartition(topic, p, offset) for p, offset in probe.items()])
    pending = set(probe)
    seen: set[int] = set()
    deadline = time.monotonic() + END_PROBE_TIMEOUT_S
    while pending and time.monotonic() < deadline:
        messages = consumer.consume(BATCH_SIZE, timeout=POLL_INTERVAL_S)
        for message in messages:
            partition = message.partition() or 0
            if _raise_for_error(message):
                ends[partition] = max(ends[partition], (message.offset() or 0) + 1)
            seen.add(partition)
        # A fetch returns whole batches, so one answer per partition settles its end once all of it is taken:
        # a batch can hold more than BATCH_SIZE records, and a poll short of BATCH_SIZE found nothing more queued.
        if len(messages) < BATCH_SIZE:
            pending -= seen
    return ends


def read_batches(
    clients: KafkaClients,
    topic: str,
    from_beginning: bool,
    idle_timeout_s: float | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[list[ConsumedRecord]]:
    """Record batches from every partition of `topic`, without a consumer group or commits.

    Stops once no record arrived for `idle_timeout_s` (None: never) or when `cancel` is set.
    """
    consumer = clients.consumer(f"_ksqlpy_reader_{uuid.uuid4().hex}", **{"enable.partition.eof": True})
    try:
        partitions = topic_partition_ids(consumer, topic)
        if from_beginning:
            starts = dict.fromkeys(partitions, OFFSET_BEGINNING)
        else:
            starts = end_offsets(consumer, topic, partitions)
        consumer.assign([TopicPartition(topic, p, offset) for p, offset in starts.items()])
        last_arrival = time.monotonic()
        while cancel is None or not cancel.is_set():
            if idle_timeout_s is not None and time.monotonic() - last_arrival >= idle_timeout_s:
                return
            # what is fetched, at once: PRINT and consume show each record as soon as it arrives
            records = [record_from_message(m) for m in take_fetched(consumer, POLL_INTERVAL_S) if _raise_for_error(m)]
            if records:
                last_arrival = time.monotonic()
                yield records
    finally:
        consumer.close()


def read_to_end(clients: KafkaClients, topic: str) -> list[Record]:
    """Every record `topic` holds now: each partition from its beginning to the end it had when reading
    began, without a consumer group or commits."""
    consumer = clients.consumer(f"_ksqlpy_reader_{uuid.uuid4().hex}", **{"enable.partition.eof": True})
    try:
        return read_new_records(consumer, topic, {})
    finally:
        consumer.close()


def read_new_records(consumer: Consumer, topic: str, positions: dict[int, int]) -> list[Record]:
    """The records of `topic` from `positions` (partition -> next offset to read; a partition missing there
    is read from its beginning) to the end each partition had when reading began; `positions` is moved to
    those ends, so the next call reads only what came after. `consumer` is made with enable.partition.eof.

    A partition is read once its last record has come, or once it has stayed quiet for QUIET_AFTER_END_S after
    its end-of-partition event (where a transaction marker, not a record, ends the partition).
    """
    partitions = topic_partition_ids(consumer, topic)
    lows = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=ADMIN_TIMEOUT_S)[0]
            for p in partitions}
    ends = end_offsets(consumer, topic, partitions)
    starts = {p: max(lows[p], positions.get(p, lows[p])) for p in partitions}
    pending = {p for p in partitions if ends[p] > starts[p]}
    consumer.assign([TopicPartition(topic, p, starts[p]) for p in sorted(pending)])
    ended_at: dict[int, float] = {}
    deadline = time.monotonic() + READ_TO_END_TIMEOUT_S
    records: list[Record] = []
    while pending:
        if time.monotonic() > deadline:
            raise KsqlError(f"Reading topic {topic} to its end took over {READ_TO_END_TIMEOUT_S:.0f} s: is the "
                            "broker reachable?")
        for message in take_fetched(consumer, POLL_INTERVAL_S):
            partition = message.partition() or 0
            if not _raise_for_error(message):
                ended_at.setdefault(partition, time.monotonic())
                continue
            ended_at.pop(partition, None)
            offset = message.offset() or 0
            if starts[partition] <= offset < ends[partition]:
                # consumed headers are always (name, bytes | None) pairs; the stubs also allow a dict
                headers: Headers = tuple(message.headers() or ())  # type: ignore[arg-type]
                records.append(Record(message.key(), message.value(), message.timestamp()[1], headers,
                                      partition, offset, topic))
            if offset + 1 >= ends[partition]:
                pending.discard(partition)
        now = time.monotonic()
        pending -= {p for p, since in ended_at.items() if now - since >= QUIET_AFTER_END_S}
    positions.update({p: max(starts[p], ends[p]) for p in partitions})
    return records


def read_records(
    clients: KafkaClients,
    topic: str,
    from_beginning: bool,
    idle_timeout_s: float | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[ConsumedRecord]:
    for batch in read_batches(clients, topic, from_beginning, idle_timeout_s, cancel):
        yield from batch


# ---------------------------------------------------------------------------------------------- JSON lines


def _decode_payload(data: bytes) -> tuple[str, bool]:
    """(JSON text for the payload, whether it had to be base64-encoded)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return json.dumps(base64.b64encode(data).decode("ascii")), True
    try:
        parsed = json.loads(text)
    except ValueError:
        return json.dumps(text, ensure_ascii=False), False
    stripped = text.strip()
    # The original text keeps number spellings exactly (1.10 stays 1.10) when it fits on one line.
    single_line = "\n" not in stripped and "\r" not in stripped
    return (stripped if single_line else json.dumps(parsed, ensure_ascii=False)), False


def _header_json(value: bytes | None) -> Any:
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(value).decode("ascii")}


def record_to_json_line(record: ConsumedRecord) -> str:
    parts: list[str] = []
    for name, payload in (("key", record.key), ("value", record.value)):
        if payload is None:
            parts.append(f'"{name}":null')
            continue
        text, is_base64 = _decode_payload(payload)
        parts.append(f'"{name}":{text}')
        if is_base64:
            parts.append(f'"{name}_encoding":"base64"')
    parts.append(f'"partition":{record.partition},"offset":{record.offset},"timestamp":{record.timestamp}')
    if record.headers:
        headers = [[name, _header_json(value)] for name, value in record.headers]
        parts.append('"headers":' + json.dumps(headers, ensure_ascii=False, separators=(",", ":")))
    return "{" + ",".join(parts) + "}"


def consume_lines(
    clients: KafkaClients,
    topic: str,
    from_beginning: bool,
    max_records: int | None = None,
    timeout_s: float | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[str]:
    """JSON lines for the records of `topic`; stops after `max_records` or `timeout_s` without a new record."""
    records = read_records(clients, topic, from_beginning, timeout_s, cancel)
    for record in itertools.islice(records, max_records):
        yield record_to_json_line(record)


@dataclass(frozen=True)
class OutgoingRecord:
    key: bytes | None
    value: bytes | None
    timestamp: int  # 0: the producer's current time
    headers: list[tuple[str, str | bytes | None]]
    partition: int | None


def _encode_payload(value: Any, encoding: Any, where: str) -> bytes | None:
    if value is None:
        return None
    if encoding == "base64":
        if not isinstance(value, str):
            raise KsqlError(f"{where}: a base64-encoded payload must be a JSON string")
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as error:
            raise KsqlError(f"{where}: invalid base64 payload: {error}") from error
    if encoding is not None:
        raise KsqlError(f"{where}: unknown payload encoding {encoding!r} (only 'base64')")
    return encode_text_or_json(value)


def encode_text_or_json(value: Any) -> bytes:
    """A JSON string as its raw UTF-8 text, any other JSON value as compact JSON."""
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _encode_headers(headers: Any, where: str) -> list[tuple[str, str | bytes | None]]:
    pairs = headers.items() if isinstance(headers, dict) else headers
    if not isinstance(pairs, Iterable) or isinstance(pairs, str | bytes):
        raise KsqlError(f"{where}: headers must be an object or a list of [name, value] pairs")
    encoded: list[tuple[str, str | bytes | None]] = []
    for pair in pairs:
        if not isinstance(pair, Sequence) or isinstance(pair, str) or len(pair) != 2 or not isinstance(pair[0], str):
            raise KsqlError(f"{where}: each header must be a [name, value] pair, got {pair!r}")
        name, value = pair
        if isinstance(value, dict) and set(value) == {"base64"}:
            encoded.append((name, _encode_payload(value["base64"], "base64", where)))
        elif value is None or isinstance(value, str):
            encoded.append((name, None if value is None else value.encode("utf-8")))
        else:
            raise KsqlError(f"{where}: header {name!r} must be text, null or {{\"base64\": ...}}")
    return encoded


def _is_envelope(document: Any) -> bool:
    return isinstance(document, dict) and "value" in document and set(document) <= ENVELOPE_FIELDS


def parse_input_line(line: str, key_field: str | None, where: str) -> OutgoingRecord:
    try:
        document = json.loads(line)
    except ValueError as error:
        raise KsqlError(f"{where}: not valid JSON: {error}") from error
    envelope: dict[str, Any] = document if _is_envelope(document) else {"value": document}
    value = envelope["value"]
    key = envelope.get("key")
    if "key" not in envelope and key_field is not None and isinstance(value, dict):
        key = value.get(key_field)
    timestamp = envelope.get("timestamp") or 0
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp < 0:
        raise KsqlError(f"{where}: timestamp must be epoch milliseconds, got {timestamp!r}")
    partition = envelope.get("partition")
    if partition is not None and (not isinstance(partition, int) or isinstance(partition, bool) or partition < 0):
        raise KsqlError(f"{where}: partition must be a non-negative integer, got {partition!r}")
    return OutgoingRecord(
        key=_encode_payload(key, envelope.get("key_encoding"), where),
        value=_encode_payload(value, envelope.get("value_encoding"), where),
        timestamp=timestamp,
        headers=_encode_headers(envelope.get("headers") or [], where),
        partition=partition,
    )


def produce_lines(clients: KafkaClients, topic: str, lines: Iterable[str], key_field: str | None = None) -> int:
    """Write one record per non-blank JSON line (envelope or bare value, see the module doc); returns the count.

    `key_field`: for lines without an explicit key, the key is that field of the (object) value.
    """
    producer = clients.producer()
    failures: list[str] = []
    delivered = 0

    def on_delivery(error: KafkaError | None, _message: Message) -> None:
        nonlocal delivered
        if error is None:
            delivered += 1
        else:
            failures.append(error.str())

    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = parse_input_line(line, key_field, f"line {number}")
        extra: dict[str, Any] = {} if record.partition is None else {"partition": record.partition}
        while True:
            try:
                producer.produce(topic, value=record.value, key=record.key, timestamp=record.timestamp,
                                 headers=record.headers or None, on_delivery=on_delivery, **extra)
                break
            except BufferError:
                # The local queue is full: let deliveries drain, then retry this record.
                producer.poll(POLL_INTERVAL_S)
        producer.poll(0)
    remaining = producer.flush(ADMIN_TIMEOUT_S)
    if failures or remaining:
        reason = failures[0] if failures else "the broker did not acknowledge them in time"
        raise KsqlError(
            f"{len(failures) + remaining} records could not be written to {topic} ({delivered} were): {reason}"
        )
    return delivered


# ---------------------------------------------------------------------------------------------- PRINT

_FORMAT_ORDER = ("JSON", "KAFKA_INT", "KAFKA_BIGINT", "KAFKA_DOUBLE", "KAFKA_STRING")


def _printable_text(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if all(char.isprintable() or char.isspace() for char in text) else None


def candidate_formats(data: bytes) -> set[str]:
    """Formats that could have written `data`; readable text is never taken for a binary number."""
    text = _printable_text(data)
    if text is not None:
        try:
            json.loads(text)
        except ValueError:
            return {"KAFKA_STRING"}
        return {"JSON", "KAFKA_STRING"}
    if len(data) == 4:
        return {"KAFKA_INT"}
    if len(data) == 8:
        return {"KAFKA_BIGINT", "KAFKA_DOUBLE"}
    return set()


class FormatGuess:
    """Narrows the possible formats of a topic's keys or values as records are seen (as ksqlDB's PRINT does)."""

    def __init__(self) -> None:
        self.formats: set[str] | None = None  # None until a non-null payload is seen

    def observe(self, data: bytes | None) -> None:
        if data is None:
            return
        candidates = candidate_formats(data)
        self.formats = candidates if self.formats is None else self.formats & candidates

    def describe(self) -> str:
        if self.formats is None:
            return NO_DATA_FORMAT
        if not self.formats:
            return "MIXED"
        return " or ".join(name for name in _FORMAT_ORDER if name in self.formats)


def render_print_payload(data: bytes | None) -> str:
    if data is None:
        return "<null>"
    text = _printable_text(data)
    if text is not None:
        return text
    if len(data) == 4:
        return str(struct.unpack(">i", data)[0])
    if len(data) == 8:
        return str(struct.unpack(">q", data)[0])
    return base64.b64encode(data).decode("ascii")


def format_rowtime(timestamp_ms: int) -> str:
    moment = datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)
    return moment.strftime("%Y/%m/%d %H:%M:%S.") + f"{timestamp_ms % 1000:03d} Z"


def format_print_line(record: ConsumedRecord) -> str:
    return (
        f"rowtime: {format_rowtime(record.timestamp)}, key: {render_print_payload(record.key)}, "
        f"value: {render_print_payload(record.value)}, partition: {record.partition}"
    )


def print_topic(
    clients: KafkaClients,
    topic: str,
    from_beginning: bool = False,
    interval: int | None = None,
    limit: int | None = None,
    idle_timeout_s: float | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[str]:
    """ksqlDB's PRINT: "Key format:" / "Value format:" lines guessed from the first batch, then every
    `interval`-th record as a `rowtime: ..., key: ..., value: ..., partition: N` line, at most `limit` of them.
    """
    every = interval or 1
    if every < 1:
        raise KsqlError("PRINT INTERVAL must be a positive number")
    if limit is not None and limit < 1:
        return
    printed = 0
    seen = 0
    header_done = False
    for batch in read_batches(clients, topic, from_beginning, idle_timeout_s, cancel):
        if not header_done:
            key_guess, value_guess = FormatGuess(), FormatGuess()
            for record in batch:
                key_guess.observe(record.key)
                value_guess.observe(record.value)
            yield f"Key format: {key_guess.describe()}"
            yield f"Value format: {value_guess.describe()}"
            header_done = True
        for record in batch:
            seen += 1
            if (seen - 1) % every:
                continue
            yield format_print_line(record)
            printed += 1
            if limit is not None and printed >= limit:
                return


# ---------------------------------------------------------------------------------------------- CLI entries

NO_BROKER_MESSAGE = (
    "no Kafka cluster configured: pass --bootstrap-servers HOST:PORT (or set KSQLPY_BOOTSTRAP_SERVERS), "
    "or start one with `ksqlpy broker` and pass the address it prints"
)


def _add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("topic", help="topic name (case-sensitive)")
    parser.add_argument("--bootstrap-servers", help="Kafka bootstrap servers, e.g. localhost:9092")
    parser.add_argument("--config", help="properties file with librdkafka settings (name=value lines)")
    parser.add_argument("-p", "--property", action="append", default=[], metavar="NAME=VALUE",
                        help="a librdkafka setting (repeatable)")


def _clients_from_arguments(args: argparse.Namespace) -> KafkaClients:
    config = load_config(bootstrap_servers=args.bootstrap_servers, config_file=args.config, overrides=args.property)
    if config.bootstrap_servers is None:
        raise KsqlError(NO_BROKER_MESSAGE)
    return KafkaClients.connected(config)


def run_tool(program: str, job: Callable[[], int]) -> int:
    """Run a command's work: a KsqlError or a Kafka client error is printed as `program: message` (exit 1),
    Ctrl-C exits 130."""
    try:
        return job()
    except KsqlError as error:
        print(f"{program}: {error}", file=sys.stderr)
        return 1
    except KafkaException as error:
        print(f"{program}: Kafka error: {describe_error(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def main_produce(argv: Sequence[str], stdin: TextIO | None = None) -> int:
    """`ksqlpy produce TOPIC`: JSON lines from stdin (or --input) to TOPIC."""
    parser = argparse.ArgumentParser(prog="ksqlpy produce", description=main_produce.__doc__)
    _add_connection_arguments(parser)
    parser.add_argument("--key-field", help="take the key from this field of object values without a key")
    parser.add_argument("--partitions", type=int, default=1, help="partitions when the topic is created (1)")
    parser.add_argument("--input", help="read this file instead of stdin")
    args = parser.parse_args(list(argv))

    def job() -> int:
        clients = _clients_from_arguments(args)
        ensure_topic(clients.admin(), args.topic, args.partitions)
        if args.input is not None:
            try:
                with open(args.input, encoding="utf-8") as source:
                    count = produce_lines(clients, args.topic, source, args.key_field)
            except OSError as error:
                raise KsqlError(f"Cannot read {args.input}: {error.strerror}") from error
        else:
            count = produce_lines(clients, args.topic, stdin or sys.stdin, args.key_field)
        print(f"Produced {count} records to {args.topic}", file=sys.stderr)
        return 0

    return run_tool("ksqlpy produce", job)


def main_consume(argv: Sequence[str], stdout: TextIO | None = None) -> int:
    """`ksqlpy consume TOPIC`: records of TOPIC as JSON lines on stdout."""
    parser = argparse.ArgumentParser(prog="ksqlpy consume", description=main_consume.__doc__)
    _add_connection_arguments(parser)
    parser.add_argument("--from-beginning", action="store_true", help="start at the oldest record (default: new ones)")
    parser.add_argument("-n", "--max-records", type=int, help="stop after this many records")
    parser.add_argument("--timeout", type=float, metavar="SECONDS", help="stop once no record arrived for this long")
    args = parser.parse_args(list(argv))
    out = stdout or sys.stdout

    def job() -> int:
        clients = _clients_from_arguments(args)
        try:
            for line in consume_lines(clients, args.topic, args.from_beginning, args.max_records, args.timeout):
                out.write(line + "\n")
                out.flush()
        except BrokenPipeError:
            pass  # the reader (e.g. `head`) is done
        return 0

    return run_tool("ksqlpy consume", job)
