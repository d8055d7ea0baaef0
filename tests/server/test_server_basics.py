"""The server's front door over real HTTP: /info and /healthcheck as ksqlDB answers them, `/` redirecting to
/info, statements over /ksql answering ksqlDB's entities, and errors in ksqlDB's shape with no traceback."""

from __future__ import annotations

from typing import Any

import httpx
from running_server import RunningServer

KSQL_JSON = "application/vnd.ksql.v1+json"


def ksql(server: RunningServer, statements: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/ksql", json={"ksql": statements, "streamsProperties": {}, **body}, timeout=30)


def test_info_names_the_service_and_is_running(server: RunningServer) -> None:
    answer = httpx.get(f"{server.url}/info", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == KSQL_JSON
    info = answer.json()["KsqlServerInfo"]
    assert info["ksqlServiceId"] == server.app.config.service_id
    assert info["serverStatus"] == "RUNNING"
    assert isinstance(info["kafkaClusterId"], str) and isinstance(info["version"], str)


def test_the_root_redirects_to_info_and_plain_json_is_served_when_asked_for(server: RunningServer) -> None:
    answer = httpx.get(f"{server.url}/", headers={"accept": "application/json"}, follow_redirects=True, timeout=10)
    assert answer.url.path == "/info"
    assert answer.headers["content-type"] == "application/json"


def test_healthcheck_reports_kafka_and_the_metastore(server: RunningServer) -> None:
    health = httpx.get(f"{server.url}/healthcheck", timeout=10).json()
    assert health == {"isHealthy": True, "details": {"metastore": {"isHealthy": True}, "kafka": {"isHealthy": True}}}


def test_a_create_answers_current_status_and_show_streams_lists_it(server: RunningServer) -> None:
    created = ksql(server, "CREATE STREAM pageviews (user_id STRING KEY, page STRING) WITH "
                           "(kafka_topic='pageviews', value_format='JSON', partitions=1);")
    assert created.status_code == 200, created.text
    (status,) = created.json()
    assert status["@type"] == "currentStatus"
    assert status["commandId"] == "stream/`PAGEVIEWS`/create"
    assert status["commandStatus"]["status"] == "SUCCESS"
    assert isinstance(status["commandSequenceNumber"], int)
    (listing,) = ksql(server, "SHOW STREAMS;").json()
    assert listing["@type"] == "streams"
    assert {"type": "STREAM", "name": "PAGEVIEWS", "topic": "pageviews", "keyFormat": "KAFKA",
            "valueFormat": "JSON", "isWindowed": False} in listing["streams"]
    assert listing["statementText"] == "SHOW STREAMS;" and listing["warnings"] == []


def test_a_failing_statement_is_a_statement_error_with_the_entities_before_it(server: RunningServer) -> None:
    answer = ksql(server, "CREATE STREAM a (k STRING KEY, v INT) WITH (kafka_topic='a', value_format='JSON', "
                          "partitions=1); CREATE STREAM b AS SELECT * FROM missing;")
    assert answer.status_code == 400
    error = answer.json()
    assert error["@type"] == "statement_error"
    assert error["error_code"] == 40001
    assert "MISSING" in error["message"].upper()
    assert error["statementText"].startswith("CREATE STREAM b AS SELECT")
    assert [entity["commandId"] for entity in error["entities"]] == ["stream/`A`/create"]
    assert error["stackTrace"] == [] and error["stack_trace"] == []


def test_bad_sql_names_its_position_and_a_select_belongs_to_query(server: RunningServer) -> None:
    bad = ksql(server, "CREATE STREAM oops WITH;")
    assert bad.status_code == 400 and bad.json()["error_code"] == 40001
    assert "line 1" in bad.json()["message"].lower()
    select = ksql(server, "SELECT * FROM pageviews EMIT CHANGES;")
    assert select.status_code == 400 and select.json()["error_code"] == 40002


def test_run_script_is_refused_over_rest(server: RunningServer) -> None:
    answer = ksql(server, "RUN SCRIPT '/etc/passwd';")
    assert answer.status_code == 400
    assert "RUN SCRIPT" in answer.json()["message"]


def test_an_unknown_path_is_a_ksqldb_not_found(server: RunningServer) -> None:
    answer = httpx.get(f"{server.url}/nowhere", timeout=10)
    assert answer.status_code == 404
    assert answer.json()["error_code"] == 40400
