"""Runs a REST-flavour conformance case (suite `rqtt`) through a real ksqlpy server over HTTP, as ksqlDB's
REST test runner does: the statements before the first query go to `POST /ksql` one by one, then the inputs
are written (once a push query is running, if the case waits for one), then each query goes to
`POST /query`, whose streamed answer is read back from the wire. The server serves an in-memory engine
(ksqlpy.testing.rest_service), a fresh one per case.

A case passes when each answer holds what the case expects of it (only the fields it names; `name|starts_with`
matches a prefix; query rows as a multiset unless order is asked for), the expected error is the last
statement's with its HTTP status, and the written outputs match as in the topic-in/topic-out cases.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import orjson

from ksqlpy.driver import InMemoryDriver
from ksqlpy.testing.cases import Case
from ksqlpy.testing.compare import compare_outputs, error_mismatch, topics_checked
from ksqlpy.testing.rest_service import InMemoryService
from ksqlpy.testing.runner import FAIL, PASS, CaseResult, collect_outputs, produce_input

INPUT_TOPIC_PARTITIONS = 4
QUERY_READ_LIMIT_S = 5.0  # a push query that has not finished by then is read no further
PUSH_QUERY_START_LIMIT_S = 5.0

Answer = dict[str, Any]  # {"status": HTTP status, "body": what the server answered, parsed}


def is_query(statement: str) -> bool:
    return statement.lstrip().upper().startswith(("SELECT", "PRINT"))


def _query_objects(text: str) -> list[Any]:
    """The objects of a /query answer: ksqlDB frames them as one JSON array with one object per line,
    keep-alive newlines between; a push query cut short leaves the array open."""
    objects = []
    for line in text.splitlines():
        item = line.strip().removeprefix("[").removesuffix("]").strip().removesuffix(",")
        if item:
            objects.append(orjson.loads(item))
    return objects


def post_query(client: httpx.Client, statement: str, properties: dict[str, Any]) -> Answer:
    body = {"ksql": statement, "streamsProperties": properties}
    deadline = time.monotonic() + QUERY_READ_LIMIT_S
    text = ""
    with client.stream("POST", "/query", json=body, timeout=QUERY_READ_LIMIT_S) as response:
        try:
            for chunk in response.iter_text():
                text += chunk
                if time.monotonic() > deadline:
                    break
        except httpx.ReadTimeout:
            pass
        status = response.status_code
    if status != 200:
        return {"status": status, "body": orjson.loads(text) if text.strip() else None}
    return {"status": status, "body": _query_objects(text)}


def post_statement(client: httpx.Client, statement: str, properties: dict[str, Any]) -> Answer:
    response = client.post("/ksql", json={"ksql": statement, "streamsProperties": properties}, timeout=30)
    return {"status": response.status_code, "body": response.json()}


def matches(expected: Any, actual: Any) -> bool:
    """Whether `actual` holds what `expected` names: objects by their named fields only (`name|starts_with`
    compares a prefix), lists item by item, anything else equal."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return False
        for key, wanted in expected.items():
            name, _, how = key.partition("|")
            if name not in actual:
                return False
            if how == "starts_with":
                if not str(actual[name]).startswith(str(wanted)):
                    return False
            elif not matches(wanted, actual[name]):
                return False
        return True
    if isinstance(expected, list):
        return isinstance(actual, list) and len(expected) == len(actual) and all(
            matches(e, a) for e, a in zip(expected, actual, strict=True))
    if isinstance(expected, float) or isinstance(actual, float):
        return isinstance(actual, int | float) and not isinstance(actual, bool) and float(expected) == float(actual)
    return bool(expected == actual)


def _rows(items: Sequence[Any]) -> list[Any]:
    return [item["row"] for item in items if isinstance(item, dict) and "row" in item]


def response_mismatch(expected: Any, answer: Answer, ordered: bool) -> str | None:
    """Why an answer does not hold what the case expects of it; None when it does."""
    if not isinstance(expected, dict):
        return None
    body = answer["body"]
    if answer["status"] != 200:
        return f"expected an answer, got HTTP {answer['status']}: {body}"
    if "admin" in expected:
        # the first entity; a statement answered with none (INSERT VALUES) holds nothing a case can name
        entity = (body[0] if body else {}) if isinstance(body, list) else body
        return None if matches(expected["admin"], entity) else f"expected {expected['admin']}, got {entity}"
    wanted = expected.get("query")
    if not isinstance(wanted, list):
        return None
    headers = [item for item in wanted if "header" in item]
    got_headers = [item for item in body if isinstance(item, dict) and "header" in item]
    if headers and not (got_headers and matches(headers[0], got_headers[0])):
        return f"expected header {headers[0]}, got {got_headers[0] if got_headers else 'none'}"
    expected_rows, actual_rows = _rows(wanted), _rows(body)
    rows_differ = [orjson.dumps(r) for r in expected_rows] != [orjson.dumps(r) for r in actual_rows] if ordered \
        else not _same_multiset(expected_rows, actual_rows)
    if rows_differ:
        return f"expected rows {expected_rows}, got {actual_rows}"
    final = [item["finalMessage"] for item in wanted if "finalMessage" in item]
    got_final = [item["finalMessage"] for item in body if isinstance(item, dict) and "finalMessage" in item]
    if final and final != got_final:
        return f"expected final message {final[0]!r}, got {got_final[0] if got_final else 'none'!r}"
    return None


def _same_multiset(expected: list[Any], actual: list[Any]) -> bool:
    if len(expected) != len(actual):
        return False
    unmatched = list(actual)
    for row in expected:
        found = next((i for i, candidate in enumerate(unmatched) if matches(row, candidate)), None)
        if found is None:
            return False
        unmatched.pop(found)
    return True


def _error_of(answer: Answer) -> str:
    body = answer["body"]
    return str(body.get("message")) if isinstance(body, dict) else str(body)


def run_rest_case(case: Case, make_driver: Callable[[dict[str, object]], InMemoryDriver]) -> CaseResult:
    """Run a REST-flavour case against a server of its own (see the module docstring)."""
    from ksqlpy.server.app import ServerConfig
    from ksqlpy.server.serve import free_port, start_in_background

    started = time.perf_counter()
    driver = make_driver(dict(case.properties))
    # As ksqlDB's REST test runner: the topics a case declares, and four partitions for an input topic that
    # neither it nor a statement gives a partition count.
    for topic, partitions in case.topics.items():
        driver.create_topic(topic, partitions)
    for topic in {record.topic for record in case.inputs} - set(case.topics):
        if not _partitions_given(case, topic):
            driver.create_topic(topic, INPUT_TOPIC_PARTITIONS)
    service = InMemoryService(driver)
    server = start_in_background(service, ServerConfig(port=free_port()))
    # As ksqlDB's REST test runner: queries read their inputs from the start unless the case says otherwise.
    properties = {"auto.offset.reset": "earliest", **{str(k): v for k, v in case.properties.items()}}
    answers: list[Answer] = []
    failure: Answer | None = None
    try:
        with httpx.Client(base_url=server.url) as client:
            first_query = next((i for i, s in enumerate(case.statements) if is_query(s)), len(case.statements))
            for statement in case.statements[:first_query]:
                answers.append(post_statement(client, statement, properties))
                if answers[-1]["status"] != 200:
                    failure = answers[-1]
                    break
            queries = case.statements[first_query:] if failure is None else ()
            if failure is None and not case.wait_for_push_query:
                _write_inputs(case, service)
            for statement in queries:
                answer = _query_with_inputs(case, service, client, statement, properties) \
                    if case.wait_for_push_query else post_query(client, statement, properties)
                answers.append(answer)
                if answer["status"] != 200:
                    failure = answer
                    break
    finally:
        server.stop()
    with service.lock:
        outputs = collect_outputs(driver, topics_checked(case.outputs), case.exact_numeric_comparison)
        log = [str(entry.get("reason", "")) for entry in driver.processing_log]
    details = compare_outputs(case.outputs, outputs, case.exact_numeric_comparison)
    for index, (expected, answer) in enumerate(zip(case.responses or (), answers, strict=False)):
        if answer is failure:
            continue
        problem = response_mismatch(expected, answer, case.ordered_rows)
        if problem:
            details.append(f"statement {index + 1}: {problem}")
    error = None if failure is None else _error_of(failure)
    if case.expected_error is not None:
        problem = error_mismatch(case.expected_error, error, log)
        if problem is None and case.expected_error.status is not None and failure is not None \
                and failure["status"] != case.expected_error.status:
            problem = f"expected HTTP {case.expected_error.status}, got {failure['status']}: {error}"
        if problem:
            details.insert(0, problem)
    elif failure is not None:
        details.insert(0, f"unexpected error (HTTP {failure['status']}): {error}")
    result = CaseResult(case, PASS, error=error, outputs=outputs, error_raised=failure is not None,
                        seconds=time.perf_counter() - started, responses=[a["body"] for a in answers])
    if details:
        result.status, result.reason, result.details = FAIL, details[0], details
    return result


def _partitions_given(case: Case, topic: str) -> bool:
    return any(re.search(rf"kafka_topic\s*=\s*'{re.escape(topic)}'", statement, re.IGNORECASE)
               and re.search(r"\bpartitions\s*=", statement, re.IGNORECASE) for statement in case.statements)


def _write_inputs(case: Case, service: InMemoryService) -> None:
    with service.lock:
        driver = service.driver
        for record in case.inputs:
            produce_input(driver, record, driver.topic_partitions(record.topic) or 1)
        driver.process()


def _query_with_inputs(case: Case, service: InMemoryService, client: httpx.Client, statement: str,
                       properties: dict[str, Any]) -> Answer:
    """A push query the inputs wait for: sent first, the inputs written once it follows its topics."""
    answer: list[Answer] = []
    sender = threading.Thread(target=lambda: answer.append(post_query(client, statement, properties)))
    running_before = service.active_push_queries
    sender.start()
    deadline = time.monotonic() + PUSH_QUERY_START_LIMIT_S
    while service.active_push_queries <= running_before and sender.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    _write_inputs(case, service)
    sender.join(QUERY_READ_LIMIT_S + PUSH_QUERY_START_LIMIT_S)
    return answer[0] if answer else {"status": 0, "body": "no answer"}
