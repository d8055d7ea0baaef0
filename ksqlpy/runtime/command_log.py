"""The command log: every successful DDL/DML statement, with its session properties, kept in a Kafka topic.

On start-up the log is replayed to rebuild the catalog and restart persistent queries, so metadata
survives restarts and every process sharing a service id sees the same statements. Records are
`{"statement": text, "properties": {...}}` JSON values keyed by a sequence number. Secrets are never
recorded: sensitive settings in a statement are masked and sensitive properties left out (each process
takes them from its own configuration).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

from ksqlpy.errors import KsqlError
from ksqlpy.runtime.tools import ensure_topic
from ksqlpy.secrets import mask_statement, without_secrets
from ksqlpy.state.rocksdb import SETTING_PROPERTIES, STATE_DIR_PROPERTIES
from ksqlpy.syntax import ast

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Producer

    from ksqlpy.runtime.clients import KafkaClients

log = logging.getLogger(__name__)

FLUSH_TIMEOUT_S = 15.0
# Tansu's watermarks cannot be trusted, so the end of the log is "partition EOF, then nothing for a while".
QUIET_AFTER_EOF_S = 0.3
# How long replay waits for the first fetch (or anything at all) before deciding the log is exhausted.
REPLAY_IDLE_TIMEOUT_S = 5.0
# The log must outlive everything it describes.
COMMAND_TOPIC_CONFIG = {"retention.ms": "-1"}

# Statements that change what exists or runs; everything else is a read or only changes the session.
RECORDED_STATEMENTS: tuple[type[ast.Statement], ...] = (
    ast.CreateSource,
    ast.CreateAsSelect,
    ast.InsertInto,
    ast.DropSource,
    ast.Terminate,
    ast.CreateType,
    ast.DropType,
)


@dataclass(frozen=True)
class Command:
    statement: str
    properties: dict[str, Any] = field(default_factory=dict)


def command_topic(service_id: str) -> str:
    return f"_ksqlpy_{service_id}_command_topic"


def is_recorded(statement: ast.Statement) -> bool:
    return isinstance(statement, RECORDED_STATEMENTS)


def recordable(statement_text: str, properties: dict[str, Any]) -> Command:
    """The command as the log keeps it: secrets masked in the text and left out of the properties, and so are
    the settings of the process that ran it (where it keeps its state): another process running the same
    file runs the same command, from its own directory."""
    shared = {name: value for name, value in without_secrets(properties).items() if not is_process_local(name)}
    return Command(mask_statement(statement_text), shared)


def is_process_local(name: str) -> bool:
    return name in STATE_DIR_PROPERTIES or name in SETTING_PROPERTIES


def command_key(statement_text: str, properties: dict[str, Any]) -> str:
    """Identity of a command for "already recorded" checks: whitespace-insensitive text plus properties, as
    recorded."""
    command = recordable(statement_text, properties)
    normalized = " ".join(command.statement.split())
    return normalized + "\0" + orjson.dumps(command.properties, option=orjson.OPT_SORT_KEYS, default=str).decode()


class CommandLog:
    def __init__(self, clients: KafkaClients, service_id: str) -> None:
        self.clients = clients
        self.topic = command_topic(service_id)
        self._producer: Producer | None = None
        self._next_sequence = 0
        self._topic_ready = False
        self._recorded: list[Command] = []  # what this process has read from or written to the log
        self._written_here: set[int] = set()  # offsets of the commands this process appended

    def ensure_topic(self) -> None:
        """Create the single-partition command topic unless it exists; keep its records forever."""
        if self._topic_ready:
            return
        ensure_topic(self.clients.admin(), self.topic, 1, COMMAND_TOPIC_CONFIG)
        self._topic_ready = True

    def replay(self) -> list[Command]:
        """Every command recorded so far, oldest first."""
        self.ensure_topic()
        # A throwaway group: replay never commits, so every process reads the whole log.
        consumer = self.clients.consumer(f"_ksqlpy_replay_{uuid.uuid4().hex}", **{"enable.partition.eof": True})
        commands: list[Command] = []
        try:
            consumer.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])
            reached_eof = False
            while True:
                message = consumer.poll(QUIET_AFTER_EOF_S if reached_eof else REPLAY_IDLE_TIMEOUT_S)
                if message is None:
                    break
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        reached_eof = True
                        continue
                    raise KsqlError(f"Cannot read command topic {self.topic}: {error.str()}")
                offset = message.offset() or 0
                command = _decode(message.value())
                if command is None:
                    log.warning("skipping unreadable record at offset %d of %s", offset, self.topic)
                else:
                    commands.append(command)
                self._next_sequence = max(self._next_sequence, offset + 1)
        finally:
            consumer.close()
        self._recorded = list(commands)
        return commands

    def append(self, statement: str, properties: dict[str, Any]) -> None:
        """Record one statement durably; raises KsqlError when the broker does not acknowledge it."""
        command = recordable(statement, properties)
        self.ensure_topic()
        if self._producer is None:
            self._producer = self.clients.producer(**{"enable.idempotence": True, "acks": "all"})
        failures: list[str] = []

        def on_delivery(error: KafkaError | None, message: Any) -> None:
            if error is not None:
                failures.append(error.str())
            else:
                self._written_here.add(message.offset())

        value = orjson.dumps({"statement": command.statement, "properties": command.properties}, default=str)
        try:
            self._producer.produce(self.topic, value=value, key=str(self._next_sequence), on_delivery=on_delivery)
        except (KafkaException, BufferError) as error:
            raise KsqlError(f"Cannot record statement in {self.topic}: {error}") from error
        deadline = time.monotonic() + FLUSH_TIMEOUT_S
        while self._producer.flush(max(0.0, deadline - time.monotonic())) > 0:
            if time.monotonic() >= deadline:
                raise KsqlError(f"Cannot record statement in {self.topic}: the broker did not acknowledge it")
        if failures:
            raise KsqlError(f"Cannot record statement in {self.topic}: {failures[0]}")
        self._next_sequence += 1
        self._recorded.append(command)

    def learn(self, offset: int, value: bytes | None) -> Command | None:
        """The command a follower read at `offset`, unless this process appended it (and so ran it already).
        Call it while no statement of this process is being run and appended."""
        self._next_sequence = max(self._next_sequence, offset + 1)
        if offset in self._written_here:
            return None
        command = _decode(value)
        if command is None:
            log.warning("skipping unreadable record at offset %d of %s", offset, self.topic)
            return None
        self._recorded.append(command)
        return command

    def follow(self) -> CommandFollower:
        """A reader of the commands other processes append from now on (after what replay read)."""
        consumer = self.clients.consumer(f"_ksqlpy_follow_{uuid.uuid4().hex}")
        consumer.assign([TopicPartition(self.topic, 0, self._next_sequence)])
        return CommandFollower(self, consumer)

    def rewrite(self) -> None:
        """Write every command this process knows into a command topic the broker has lost (and that has
        been created again, empty), so the next start recovers the same statements."""
        # The idempotent producer's identity died with the broker's state: a new one starts afresh.
        self._producer = None
        self._next_sequence = 0
        commands, self._recorded = self._recorded, []
        for command in commands:
            self.append(command.statement, command.properties)
        log.warning("command log: wrote %d statement(s) again to %s", len(commands), self.topic)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(FLUSH_TIMEOUT_S)
            self._producer = None


class CommandFollower:
    """Reads the commands appended to the log after a replay: with `CommandLog.learn`, what other processes
    sharing the service id ran since."""

    def __init__(self, log: CommandLog, consumer: Consumer) -> None:
        self.log = log
        self.consumer = consumer

    def new_records(self, timeout: float) -> list[tuple[int, bytes | None]]:
        """(offset, value) of the records appended since the last call, waiting up to `timeout` for one."""
        records = []
        for message in self.consumer.consume(100, timeout):
            error = message.error()
            if error is None:
                records.append((message.offset() or 0, message.value()))
            elif error.code() != KafkaError._PARTITION_EOF:
                log.warning("reading %s: %s", self.log.topic, error.str())
        return records

    def close(self) -> None:
        self.consumer.close()


def _decode(value: bytes | None) -> Command | None:
    try:
        decoded = orjson.loads(value or b"")
        return Command(str(decoded["statement"]), dict(decoded.get("properties") or {}))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return None
