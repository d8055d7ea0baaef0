"""`POST /ksql` answers each statement with ksqlDB's entity for it (descriptions, listings, query
descriptions, command statuses, none for INSERT VALUES and SET), and the status routes report the commands
this server ran and its place in the cluster."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
from running_server import RunningServer


def ksql(server: RunningServer, statements: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/ksql", json={"ksql": statements, "streamsProperties": {}, **body}, timeout=30)


def ok(server: RunningServer, statements: str, **body: Any) -> list[dict[str, Any]]:
    answer = ksql(server, statements, **body)
    assert answer.status_code == 200, answer.text
    entities: list[dict[str, Any]] = answer.json()
    return entities


def create_orders(server: RunningServer, topic: str) -> None:
    ok(server, f"CREATE STREAM orders (id STRING KEY, item STRUCT<name STRING, tags ARRAY<STRING>>, "
               f"prices MAP<STRING, DECIMAL(10, 2)>, amount INT) WITH (kafka_topic='{topic}', "
               "value_format='JSON', partitions=2);")


def test_describe_answers_source_descriptions_with_nested_schemas_and_queries(
        server: RunningServer, unique_topic: Callable[..., str]) -> None:
    topic = unique_topic("orders")
    create_orders(server, topic)
    (created,) = ok(server, "CREATE STREAM big AS SELECT id, amount FROM orders WHERE amount > 10;")
    query_id = created["commandStatus"]["queryId"]
    assert created["commandStatus"]["message"] == f"Created query with ID {query_id}"
    assert created["commandId"] == "stream/`BIG`/create"

    (described,) = ok(server, "DESCRIBE orders EXTENDED;")
    assert described["@type"] == "sourceDescription"
    assert described["statementText"] == "DESCRIBE orders EXTENDED;" and described["warnings"] == []
    source = described["sourceDescription"]
    assert (source["name"], source["type"], source["topic"], source["partitions"]) == ("ORDERS", "STREAM", topic, 2)
    assert (source["keyFormat"], source["valueFormat"], source["windowType"]) == ("KAFKA", "JSON", None)
    assert source["extended"] is True and source["statement"].startswith("CREATE STREAM orders")
    fields = {field["name"]: field for field in source["fields"]}
    assert fields["ID"] == {"name": "ID", "schema": {"type": "STRING", "fields": None, "memberSchema": None},
                            "type": "KEY"}
    item = fields["ITEM"]["schema"]
    assert "type" not in fields["ITEM"] and item["type"] == "STRUCT"
    assert [(f["name"], f["schema"]["type"], (f["schema"]["memberSchema"] or {}).get("type")) for f in item["fields"]] \
        == [("NAME", "STRING", None), ("TAGS", "ARRAY", "STRING")]
    assert fields["PRICES"]["schema"]["memberSchema"]["type"] == "DECIMAL"
    assert [query["id"] for query in source["readQueries"]] == [query_id] and source["writeQueries"] == []
    assert source["readQueries"][0]["sinks"] == ["BIG"] and source["sourceConstraints"] == ["BIG"]
    for key in ("timestamp", "statistics", "errorStats", "replication", "queryOffsetSummaries"):
        assert key in source

    (sink,) = ok(server, "DESCRIBE big;")
    assert [query["id"] for query in sink["sourceDescription"]["writeQueries"]] == [query_id]
    assert sink["sourceDescription"]["extended"] is False
    for statement in ("DESCRIBE STREAMS;", "SHOW STREAMS EXTENDED;"):
        (listing,) = ok(server, statement)
        assert listing["@type"] == "source_descriptions"
        assert {"ORDERS", "BIG"} <= {d["name"] for d in listing["sourceDescriptions"]}


def test_queries_topics_explain_and_terminate(server: RunningServer, unique_topic: Callable[..., str]) -> None:
    topic = unique_topic("orders")
    create_orders(server, topic)
    (created,) = ok(server, "CREATE STREAM big AS SELECT id, amount FROM orders;")
    query_id = created["commandStatus"]["queryId"]

    (queries,) = ok(server, "SHOW QUERIES;")
    assert queries["@type"] == "queries"
    (query,) = queries["queries"]
    assert query["id"] == query_id and query["sinks"] == ["BIG"] and query["queryType"] == "PERSISTENT"
    assert query["queryString"].startswith("CREATE STREAM big") and query["sinkKafkaTopics"] == ["BIG"]
    assert query["statusCount"] == {query["state"]: 1}

    (topics,) = ok(server, "SHOW TOPICS;")
    assert topics["@type"] == "kafka_topics"
    assert {"name": topic, "replicaInfo": [1, 1]} in topics["topics"]

    (explained,) = ok(server, f"EXPLAIN {query_id};")
    assert explained["@type"] == "queryDescription"
    description = explained["queryDescription"]
    assert (description["id"], description["sources"], description["sinks"]) == (query_id, ["ORDERS"], ["BIG"])
    assert [field["name"] for field in description["fields"]] == ["ID", "AMOUNT"]
    assert "ORDERS" in description["topology"] or topic in description["topology"]
    (extended,) = ok(server, "SHOW QUERIES EXTENDED;")
    assert extended["@type"] == "query_descriptions"
    assert [d["id"] for d in extended["queryDescriptions"]] == [query_id]

    (terminated,) = ok(server, f"TERMINATE {query_id};")
    assert terminated["@type"] == "currentStatus" and terminated["commandId"] == f"terminate/{query_id}/execute"
    (dropped,) = ok(server, "DROP STREAM big;")
    assert dropped["commandStatus"]["message"] == "Source `BIG` (topic: BIG) was dropped."
    assert dropped["commandId"] == "stream/`BIG`/drop"
    assert dropped["commandSequenceNumber"] > terminated["commandSequenceNumber"] > created["commandSequenceNumber"]


def test_functions_types_properties_and_statements_without_entities(
        server: RunningServer, unique_topic: Callable[..., str]) -> None:
    (functions,) = ok(server, "SHOW FUNCTIONS;")
    assert functions["@type"] == "function_names"
    by_name = {function["name"]: function for function in functions["functions"]}
    assert (by_name["SUBSTRING"]["type"], by_name["COUNT"]["type"], by_name["EXPLODE"]["type"]) == \
        ("SCALAR", "AGGREGATE", "TABLE")
    assert by_name["SUBSTRING"]["category"]

    (described,) = ok(server, "DESCRIBE FUNCTION substring;")
    assert described["@type"] == "describe_function"
    assert described["name"] == "SUBSTRING" and described["type"] == "SCALAR"
    assert all({"arguments", "returnType", "description"} <= set(f) for f in described["functions"])
    assert any(len(f["arguments"]) == 2 and f["returnType"] == "STRING" for f in described["functions"])

    ok(server, "CREATE TYPE address AS STRUCT<street STRING, zip INT>;")
    (types,) = ok(server, "SHOW TYPES;")
    assert types["@type"] == "type_list"
    assert types["types"]["ADDRESS"]["type"] == "STRUCT"
    assert [f["name"] for f in types["types"]["ADDRESS"]["fields"]] == ["STREET", "ZIP"]

    set_then_show = ok(server, "SET 'ksql.streams.auto.offset.reset' = 'earliest'; SHOW PROPERTIES;",
                       streamsProperties={"ksql.query.pull.table.scan.enabled": "true"})
    (properties,) = set_then_show
    assert properties["@type"] == "properties"
    values = {p["name"]: p for p in properties["properties"]}
    assert values["ksql.streams.auto.offset.reset"] == {"name": "ksql.streams.auto.offset.reset",
                                                         "scope": "STREAMS", "value": "earliest"}
    assert values["ksql.query.pull.table.scan.enabled"]["scope"] == "KSQL"
    assert properties["overwrittenProperties"] == ["ksql.query.pull.table.scan.enabled",
                                                   "ksql.streams.auto.offset.reset"]
    (later,) = ok(server, "SHOW PROPERTIES;")
    assert "ksql.streams.auto.offset.reset" not in {p["name"] for p in later["properties"]}

    topic = unique_topic("orders")
    create_orders(server, topic)
    assert ok(server, "INSERT INTO orders (id, amount) VALUES ('a', 5);") == []


def test_status_routes_report_commands_and_this_server(server: RunningServer,
                                                       unique_topic: Callable[..., str]) -> None:
    topic = unique_topic("orders")
    create_orders(server, topic)
    (created,) = ok(server, "CREATE STREAM big AS SELECT * FROM orders;")

    statuses = httpx.get(f"{server.url}/status", timeout=10).json()["commandStatuses"]
    assert statuses == {"stream/`ORDERS`/create": "SUCCESS", "stream/`BIG`/create": "SUCCESS"}
    one = httpx.get(f"{server.url}/status/{quote('stream/`BIG`/create')}", timeout=10)
    assert one.status_code == 200
    assert one.json() == created["commandStatus"]
    unquoted = httpx.get(f"{server.url}/status/stream/ORDERS/create", timeout=10).json()
    assert unquoted == {"status": "SUCCESS", "message": "Stream created", "queryId": None}
    missing = httpx.get(f"{server.url}/status/stream/`NOPE`/create", timeout=10)
    assert missing.status_code == 404 and missing.json()["error_code"] == 40400

    cluster = httpx.get(f"{server.url}/clusterStatus", timeout=10).json()["clusterStatus"]
    host = server.url.split("://", 1)[1]
    assert list(cluster) == [host]
    assert cluster[host]["hostAlive"] is True and isinstance(cluster[host]["lastStatusUpdateMs"], int)
    assert created["commandStatus"]["queryId"] in cluster[host]["activeStandbyPerQuery"]
    assert set(cluster[host]["hostStoreLags"]) == {"stateStoreLags", "updateTimeMs"}


def test_command_sequence_number_is_accepted_and_session_variables_are_substituted(server: RunningServer) -> None:
    (listing,) = ok(server, "SHOW STREAMS;", commandSequenceNumber=5)
    assert listing["@type"] == "streams"
    (tables,) = ok(server, "SHOW ${what};", sessionVariables={"WHAT": "TABLES"})
    assert tables["@type"] == "tables"
    refused = ksql(server, "SHOW STREAMS;", commandSequenceNumber="five")
    assert refused.status_code == 400 and refused.json()["error_code"] == 40000
