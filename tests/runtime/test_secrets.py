"""Secrets: values of sensitive settings are masked in SHOW PROPERTIES, SHOW QUERIES / EXPLAIN, logs and
errors, and never written to the command topic; a recorded statement still matches its re-run."""

from __future__ import annotations

import logging
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from ksqlpy.driver import InMemoryDriver
from ksqlpy.errors import KsqlError
from ksqlpy.runtime.app import KsqlpyApp
from ksqlpy.runtime.clients import KafkaClients
from ksqlpy.runtime.command_log import command_key, command_topic
from ksqlpy.runtime.config import RuntimeConfig, load_config
from ksqlpy.runtime.tools import read_records
from ksqlpy.secrets import MASK, is_sensitive, mask, mask_statement

REPO = Path(__file__).resolve().parents[2]
SECRET = "hunter2-s3cr3t"


@pytest.mark.parametrize("name", [
    "sasl.password", "ssl.key.password", "SSL.KEYSTORE.PASSWORD", "ssl.key.pem", "sasl.jaas.config",
    "basic.auth.user.info", "ksql.schema.registry.basic.auth.user.info", "sasl.oauthbearer.client.secret",
    "ksql.connect.secret",
])
def test_sensitive_names(name: str) -> None:
    assert is_sensitive(name)
    assert mask(name, SECRET) == MASK


@pytest.mark.parametrize("name", ["security.protocol", "sasl.mechanism", "sasl.username", "ssl.ca.location",
                                  "auto.offset.reset", "ksql.service.id"])
def test_ordinary_names(name: str) -> None:
    assert not is_sensitive(name)
    assert mask(name, "value") == "value"


def test_mask_statement_hides_sensitive_values_in_set_and_with() -> None:
    text = (f"SET 'sasl.password' = '{SECRET}';\n"
            f"CREATE STREAM s (a INT) WITH (kafka_topic='t', \"basic.auth.user.info\"='it''s:{SECRET}', "
            "value_format='JSON');")
    masked = mask_statement(text)
    assert SECRET not in masked
    assert masked == ("SET 'sasl.password' = '[hidden]';\n"
                      "CREATE STREAM s (a INT) WITH (kafka_topic='t', \"basic.auth.user.info\"='[hidden]', "
                      "value_format='JSON');")
    assert mask_statement(masked) == masked


def test_show_properties_and_queries_mask_secrets() -> None:
    driver = InMemoryDriver(properties={"ksql.schema.registry.basic.auth.user.info": f"user:{SECRET}"})
    driver.execute(
        f"SET 'sasl.password'='{SECRET}';\n"
        "CREATE STREAM s (a INT) WITH (kafka_topic='t', value_format='JSON');\n"
        f"CREATE STREAM o WITH ('basic.auth.user.info'='{SECRET}') AS SELECT a FROM s;"
    )
    properties = dict(map(tuple, driver.execute("SHOW PROPERTIES;")[0].rows))
    assert properties["sasl.password"] == MASK
    assert properties["ksql.schema.registry.basic.auth.user.info"] == MASK
    queries = driver.execute("SHOW QUERIES;")[0].rows
    explained = driver.execute(f"EXPLAIN {queries[0][0]};")[0].message
    assert SECRET not in str(queries) and SECRET not in explained
    assert "'basic.auth.user.info'='[hidden]'" in explained


def test_the_command_topic_never_holds_a_secret(broker: str, unique_topic: Callable[..., str]) -> None:
    source, sink = unique_topic("src"), unique_topic("out")
    service_id = f"secrets_{uuid.uuid4().hex[:8]}_"
    script = (
        f"SET 'sasl.password'='{SECRET}';\n"
        f"CREATE STREAM src (a INT) WITH (kafka_topic='{source}', value_format='JSON', partitions=1);\n"
        f"CREATE STREAM out WITH (kafka_topic='{sink}', 'basic.auth.user.info'='{SECRET}') AS SELECT a FROM src;\n"
    )
    config = RuntimeConfig(bootstrap_servers=broker, service_id=service_id)
    with KsqlpyApp(config) as app:
        app.execute(script)
    clients = KafkaClients(RuntimeConfig(bootstrap_servers=broker))
    recorded = list(read_records(clients, command_topic(service_id), True, idle_timeout_s=2.0))
    assert len(recorded) == 2
    assert all(SECRET.encode() not in (r.value or b"") for r in recorded), [r.value for r in recorded]
    assert all("sasl.password" not in r.json_value["properties"] for r in recorded)
    assert "'basic.auth.user.info'='[hidden]'" in recorded[1].json_value["statement"]
    # Running the same script again finds its statements recorded, secrets and all.
    with KsqlpyApp(RuntimeConfig(bootstrap_servers=broker, service_id=service_id)) as again:
        results = again.execute(script)
    assert "Already running as query" in results[-1].message


def test_a_recorded_command_matches_its_statement_whatever_the_secret() -> None:
    statement = "CREATE STREAM s (a INT) WITH (kafka_topic='t', value_format='JSON');"
    assert command_key(statement, {"sasl.password": SECRET, "auto.offset.reset": "earliest"}) == command_key(
        statement, {"auto.offset.reset": "earliest"}
    )


def test_a_recorded_command_matches_its_statement_from_whatever_state_directory() -> None:
    statement = "CREATE TABLE t (id STRING PRIMARY KEY, a INT) WITH (kafka_topic='t', value_format='JSON');"
    here = {"ksql.streams.state.dir": "/srv/a", "ksqlpy.state.block.cache.bytes": "1000", "auto.offset.reset": "earliest"}
    there = {"state.dir": "/srv/b", "auto.offset.reset": "earliest"}
    assert command_key(statement, here) == command_key(statement, there)
    assert command_key(statement, here) != command_key(statement, {"auto.offset.reset": "latest"})


def test_client_errors_and_logs_hide_secret_values(caplog: pytest.LogCaptureFixture) -> None:
    # librdkafka quotes the rejected value: here that value is also the password.
    clients = KafkaClients(load_config("127.0.0.1:9", overrides=[f"sasl.password={SECRET}",
                                                                 f"security.protocol={SECRET}"]))
    with pytest.raises(KsqlError) as raised:
        clients.producer()
    assert SECRET not in str(raised.value) and '"security.protocol"' in str(raised.value)
    logging.getLogger("ksqlpy.kafka").error("%s", f"SASL handshake with password {SECRET} failed")
    assert SECRET not in caplog.text and MASK in caplog.text


def test_cli_error_never_echoes_a_secret(tmp_path: Path) -> None:
    config_file = tmp_path / "client.properties"
    config_file.write_text(f"sasl.password={SECRET}\nsecurity.protocol={SECRET}\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "ksqlpy.cli", "consume", "t", "--bootstrap-servers", "127.0.0.1:9",
         "--config", str(config_file)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1
    assert SECRET not in done.stdout + done.stderr and "Traceback" not in done.stderr
    assert "Invalid Kafka client setting" in done.stderr
