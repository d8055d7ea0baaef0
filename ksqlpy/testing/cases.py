"""Test cases and their records, loaded from conformance JSONL files and ksql-test-runner JSON files."""

from __future__ import annotations

import base64
import binascii
import decimal
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Headers = tuple[tuple[str, bytes | None], ...]


class CaseFileError(Exception):
    """A test file that cannot be read or does not follow the expected format; the message says where."""


@dataclass(frozen=True)
class Window:
    start: int
    end: int
    type: str  # 'time' (tumbling/hopping) or 'session'

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "type": self.type}


@dataclass(frozen=True)
class RecordSpec:
    """A record as a test file writes it: logical key/value (see the conformance README)."""

    topic: str
    key: Any
    value: Any
    # None on an expected record means "not checked"; inputs always carry one.
    timestamp: int | None
    window: Window | None = None
    headers: Headers = ()


@dataclass(frozen=True)
class ExpectedError:
    message: str  # the run's error message must contain this ('' when the file gives none)
    category: str  # 'parse', 'statement', 'runtime' or 'unspecified'
    type: str = ""
    status: int | None = None  # REST-flavour cases: the HTTP status of the failing statement's answer


@dataclass(frozen=True)
class Case:
    id: str
    statements: tuple[str, ...]
    inputs: tuple[RecordSpec, ...]
    outputs: tuple[RecordSpec, ...]
    expected_error: ExpectedError | None = None
    properties: Mapping[str, object] = field(default_factory=dict)
    suite: str = "qtt"
    group: str = ""
    features: tuple[str, ...] = ()
    functions: tuple[str, ...] = ()
    tier: int | None = None
    # REST-flavour cases: what the server answers each statement ({"admin": entity} or {"query": [...]}),
    # whether inputs wait for a running push query, and whether query rows must come in order.
    responses: tuple[Any, ...] | None = None
    topics: Mapping[str, int] = field(default_factory=dict)  # topics the case declares, by partition count
    wait_for_push_query: bool = False
    ordered_rows: bool = False

    def property_flag(self, name: str, default: bool) -> bool:
        """A boolean property, accepting the JSON booleans and the 'true'/'false' strings files use."""
        value = self.properties.get(name, default)
        if isinstance(value, str):
            return value.strip().lower() == "true"
        return bool(value)

    @property
    def exact_numeric_comparison(self) -> bool:
        return self.property_flag("use.exact.numeric.comparison", True)


def parse_json_text(text: str) -> Any:
    """JSON with floats kept as exact Decimals: the scale of DECIMAL values matters when comparing."""
    return json.loads(text, parse_float=decimal.Decimal)


def _require(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise CaseFileError(f"{where}: {message}")


def _parse_window(raw: Any, where: str) -> Window | None:
    if raw is None:
        return None
    _require(isinstance(raw, dict), where, "'window' must be an object with start, end and type")
    try:
        return Window(int(raw["start"]), int(raw["end"]), str(raw.get("type", "time")).lower())
    except (KeyError, TypeError, ValueError) as error:
        raise CaseFileError(f"{where}: bad 'window' {raw!r}: {error}") from None


def _parse_headers(raw: Any, where: str) -> Headers:
    if raw is None:
        return ()
    _require(isinstance(raw, list), where, "'headers' must be a list of {key, value} objects")
    headers: list[tuple[str, bytes | None]] = []
    for header in raw:
        _require(isinstance(header, dict) and "key" in header, where, f"bad header {header!r}")
        value = header.get("value")
        try:
            decoded = None if value is None else base64.b64decode(str(value), validate=True)
        except binascii.Error:
            raise CaseFileError(f"{where}: header value {value!r} is not base64") from None
        headers.append((str(header["key"]), decoded))
    return tuple(headers)


def parse_record(raw: Any, where: str, *, default_timestamp: int | None) -> RecordSpec:
    """One {topic, key, value, timestamp?, window?, headers?} object; a missing timestamp takes the default."""
    _require(isinstance(raw, dict), where, "a record must be a JSON object")
    _require(isinstance(raw.get("topic"), str), where, "a record needs a 'topic' string")
    timestamp = raw.get("timestamp", default_timestamp)
    if timestamp is None:
        timestamp = default_timestamp
    _require(timestamp is None or (isinstance(timestamp, int) and not isinstance(timestamp, bool)),
             where, f"'timestamp' must be an integer, not {timestamp!r}")
    return RecordSpec(
        topic=raw["topic"],
        key=raw.get("key"),
        value=raw.get("value"),
        timestamp=timestamp,
        window=_parse_window(raw.get("window"), where),
        headers=_parse_headers(raw.get("headers"), where),
    )


def parse_records(raw: Any, where: str, *, inputs: bool) -> tuple[RecordSpec, ...]:
    """Inputs default a missing timestamp to 0 (as ksqlDB does); outputs leave it unchecked."""
    _require(isinstance(raw, list), where, "records must be a JSON list")
    return tuple(parse_record(record, f"{where}[{i}]", default_timestamp=0 if inputs else None)
                 for i, record in enumerate(raw))


def _parse_expected_error(raw: Any, where: str) -> ExpectedError | None:
    if raw is None:
        return None
    _require(isinstance(raw, dict), where, "'expected_error' must be an object or null")
    return ExpectedError(
        message=str(raw.get("message") or ""),
        category=str(raw.get("category") or "unspecified"),
        type=str(raw.get("type") or ""),
        status=raw["status"] if isinstance(raw.get("status"), int) else None,
    )


def case_from_json(raw: Any, where: str) -> Case:
    """One conformance case object (see ../shared/conformance/README.md for the fields)."""
    _require(isinstance(raw, dict), where, "a case must be a JSON object")
    _require(isinstance(raw.get("id"), str), where, "a case needs an 'id' string")
    where = f"{where} ({raw['id']})"
    statements = raw.get("statements") or []
    _require(isinstance(statements, list) and all(isinstance(s, str) for s in statements),
             where, "'statements' must be a list of strings")
    properties = raw.get("properties") or {}
    _require(isinstance(properties, dict), where, "'properties' must be an object")
    tier = raw.get("tier")
    return Case(
        id=raw["id"],
        statements=tuple(statements),
        inputs=parse_records(raw.get("inputs") or [], f"{where} inputs", inputs=True),
        outputs=parse_records(raw.get("outputs") or [], f"{where} outputs", inputs=False),
        expected_error=_parse_expected_error(raw.get("expected_error"), where),
        properties=properties,
        suite=str(raw.get("suite") or "qtt"),
        group=str(raw.get("group") or raw["id"]),
        features=tuple(str(f) for f in raw.get("features") or ()),
        functions=tuple(str(f) for f in raw.get("functions") or ()),
        tier=tier if isinstance(tier, int) else None,
        responses=tuple(responses) if isinstance(responses := raw.get("responses"), list) else None,
        topics={str(t["name"]): int(t.get("partitions") or 1) for t in raw.get("topics") or ()
                if isinstance(t, dict) and "name" in t},
        wait_for_push_query=bool((raw.get("input_conditions") or {}).get("waitForActivePushQuery")),
        ordered_rows=bool((raw.get("output_conditions") or {}).get("verifyOrder")),
    )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise CaseFileError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise CaseFileError(f"{path} is not UTF-8 text") from None


def _parse_json_file(path: Path) -> Any:
    try:
        return parse_json_text(_read_text(path))
    except json.JSONDecodeError as error:
        raise CaseFileError(f"{path}: invalid JSON at line {error.lineno} column {error.colno}: {error.msg}") \
            from None


def load_cases(path: Path) -> list[Case]:
    """Every case of a conformance JSONL file (one case object per line, blank lines ignored)."""
    cases: list[Case] = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            raw = parse_json_text(line)
        except json.JSONDecodeError as error:
            raise CaseFileError(f"{where}: invalid JSON at column {error.colno}: {error.msg}") from None
        cases.append(case_from_json(raw, where))
    return cases


def load_properties(path: Path) -> dict[str, object]:
    """A properties file: a JSON object, or Java-style `name=value` lines (# and ! start comments)."""
    text = _read_text(path)
    if text.lstrip().startswith("{"):
        raw = _parse_json_file(path)
        _require(isinstance(raw, dict), str(path), "a JSON properties file must hold one object")
        return dict(raw)
    properties: dict[str, object] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "!")):
            continue
        separator = min((i for i in (stripped.find("="), stripped.find(":")) if i >= 0), default=-1)
        _require(separator > 0, f"{path}:{number}", f"expected name=value, got {stripped!r}")
        properties[stripped[:separator].strip()] = stripped[separator + 1:].strip()
    return properties


def _records_file(path: Path, field_name: str, *, inputs: bool) -> tuple[RecordSpec, ...]:
    raw = _parse_json_file(path)
    _require(isinstance(raw, dict) and field_name in raw, str(path),
             f"expected a JSON object with a '{field_name}' list")
    return parse_records(raw[field_name], f"{path} {field_name}", inputs=inputs)


def load_test_runner_case(statements_path: Path, input_path: Path | None, output_path: Path,
                          properties: Mapping[str, object] | None = None) -> Case:
    """A case from ksql-test-runner's three files: a SQL script, {"inputs": [...]} and {"outputs": [...]}."""
    script = _read_text(statements_path)
    inputs = _records_file(input_path, "inputs", inputs=True) if input_path is not None else ()
    return Case(
        id=statements_path.stem if statements_path.stem != "statements" else statements_path.parent.name,
        statements=(script,),
        inputs=inputs,
        outputs=_records_file(output_path, "outputs", inputs=False),
        properties=dict(properties or {}),
    )


def headers_to_json(headers: Sequence[tuple[str, bytes | None]]) -> list[dict[str, str | None]]:
    """Headers in the test files' form: value as base64 text or null."""
    return [{"key": key, "value": None if value is None else base64.b64encode(value).decode("ascii")}
            for key, value in headers]
