"""ksqlDB's Python clients from PyPI, unmodified, administer ksqlpy's server: ksql-python-ng (`ksql.KSQLAPI`)
and ksqldb-client (`ksqldb_client.KSqlDBClient`, whose pydantic models validate every answer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from ksql import KSQLAPI
from ksql.errors import KSQLError
from ksqldb_client import KSqlDBClient
from ksqldb_client.exceptions import APIError
from running_server import RunningServer


@pytest.fixture
def source_topic(broker: str, produce_json: Callable[..., None], unique_topic: Callable[..., str]) -> str:
    """A topic that exists before its stream is declared, as a client's plain CREATE STREAM expects."""
    topic = unique_topic("clicks")
    produce_json(broker, topic, [{"user": "u1", "page": "home"}])
    return topic


def test_ksql_python_ng_creates_lists_and_describes(server: RunningServer, source_topic: str) -> None:
    api = KSQLAPI(server.url)
    assert api.get_url() == server.url
    assert isinstance(api.get_ksql_version(), str)

    assert api.create_stream("clicks", ["user STRING", "page STRING"], source_topic, "JSON") is True
    assert api.sa.create_stream_as("home_clicks", ["user", "page"], "clicks", conditions="page = 'home'") is True

    (streams,) = api.ksql("SHOW STREAMS;")
    names = {stream["name"]: stream for stream in streams["streams"]}
    assert names["CLICKS"]["topic"] == source_topic and "HOME_CLICKS" in names
    (tables,) = api.ksql("LIST TABLES;")
    assert tables["@type"] == "tables" and tables["tables"] == []

    (described,) = api.ksql("DESCRIBE home_clicks;")
    description = described["sourceDescription"]
    assert [field["name"] for field in description["fields"]] == ["USER", "PAGE"]
    assert len(description["writeQueries"]) == 1
    assert any(p["name"] for p in api.get_properties())

    with pytest.raises(KSQLError):
        api.ksql("DESCRIBE missing;")


def test_ksqldb_client_validates_every_admin_answer(server: RunningServer, source_topic: str) -> None:
    client = KSqlDBClient(server.url)
    info = client.info().ksql_server_info
    assert info.server_status == "RUNNING" and info.ksql_service_id == server.app.config.service_id

    (created,) = client.ksql(f"CREATE STREAM clicks (user STRING, page STRING) WITH (kafka_topic='{source_topic}', "
                             "value_format='JSON');")
    assert created.command_status is not None and created.command_status.status == "SUCCESS"
    (derived,) = client.ksql("CREATE TABLE page_counts AS SELECT page, COUNT(*) AS views FROM clicks GROUP BY page;")
    assert derived.command_status is not None and derived.command_status.query_id is not None

    (streams,) = client.ksql("SHOW STREAMS;")
    assert streams.streams is not None
    assert [(s.name, s.key_format, s.is_windowed) for s in streams.streams] == [("CLICKS", "KAFKA", False)]
    responses: dict[str, Any] = {statement: client.ksql(statement)[0]
                                 for statement in ("SHOW TABLES;", "SHOW QUERIES;", "SHOW TOPICS;",
                                                   "DESCRIBE page_counts;", "SHOW PROPERTIES;")}
    queries = responses["SHOW QUERIES;"].queries
    assert queries is not None and [q.sinks for q in queries] == [("PAGE_COUNTS",)]
    assert responses["SHOW TABLES;"].type == "tables" and responses["SHOW TOPICS;"].type == "kafka_topics"

    status = client.status(derived.command_id)
    assert status.status == "SUCCESS" and status.query_id == derived.command_status.query_id

    (terminated,) = client.ksql(f"TERMINATE {derived.command_status.query_id};")
    assert terminated.command_id == f"terminate/{derived.command_status.query_id}/execute"
    (dropped,) = client.ksql("DROP TABLE page_counts;")
    assert dropped.command_status is not None and "dropped" in dropped.command_status.message
    assert client.ksql("SHOW QUERIES;")[0].queries == ()
    with pytest.raises(APIError) as refused:
        client.ksql("DROP STREAM missing;")
    assert refused.value.error_code == 400
