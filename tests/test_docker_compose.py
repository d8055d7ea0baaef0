"""docker-compose.yml (no Docker engine needed): it parses, every ksqlpy service runs a real CLI invocation,
the car registry the simulator publishes reaches the topic of the queries' cars table, and Mosquitto gets
the settings the README recommends for the bridge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
import yaml

from ksqlpy.cli import COMMANDS, main
from ksqlpy.connect import mqtt
from ksqlpy.demo import simulate

ROOT = Path(__file__).resolve().parent.parent


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return loaded


def ksqlpy_services() -> dict[str, list[str]]:
    """Services built from the Dockerfile, whose entry point is `ksqlpy`, with their command."""
    return {name: service["command"] for name, service in compose()["services"].items() if "build" in service}


def test_the_stack_feeds_mqtt_bridges_it_runs_the_queries_and_shows_the_alerts() -> None:
    commands = [" ".join(command) for command in ksqlpy_services().values()]
    assert any(c.startswith("simulate ") and "--mqtt-host mosquitto" in c for c in commands)
    assert any(c.startswith("mqtt-bridge ") and "--mqtt-host mosquitto" in c for c in commands)
    assert "server --host 0.0.0.0 --port 8088" in commands
    assert "run queries/anomaly_detection.sql --server http://ksqlpy:8088" in commands
    assert "consume car-anomalies --from-beginning" in commands


def test_the_simulator_publishes_the_registry_and_the_bridge_copies_it_to_the_cars_tables_topic() -> None:
    commands = {command[0]: command[1:] for command in ksqlpy_services().values()}
    assert not simulate.build_parser().parse_args(commands["simulate"]).registry_only
    bridge = mqtt.build_parser().parse_args(commands["mqtt-bridge"])
    assert paho.topic_matches_sub(bridge.registry_mqtt_topic, f"{simulate.REGISTRY_TOPIC_PREFIX}car-00000")
    sql = (ROOT / "queries" / "anomaly_detection.sql").read_text(encoding="utf-8")
    assert f"WITH (kafka_topic='{bridge.registry_topic}'" in sql and "JOIN cars" in sql


@pytest.mark.parametrize("service", sorted(ksqlpy_services()))
def test_each_service_runs_a_ksqlpy_command_with_options_it_has(
    service: str, capsys: pytest.CaptureFixture[str]
) -> None:
    command, *arguments = ksqlpy_services()[service]
    assert command in COMMANDS
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    usage = capsys.readouterr().out
    for argument in arguments:
        if argument.startswith("-"):
            assert f"{argument} " in usage, f"{service}: ksqlpy {command} has no option {argument}"
        elif argument.endswith(".sql"):
            assert (ROOT / argument).is_file()


def test_the_server_publishes_port_8088_and_the_queries_wait_until_it_is_healthy() -> None:
    services = compose()["services"]
    assert "8088:8088" in services["ksqlpy"]["ports"]
    assert "/healthcheck" in " ".join(services["ksqlpy"]["healthcheck"]["test"])
    assert services["queries"]["depends_on"] == {"ksqlpy": {"condition": "service_healthy"}}


def test_mosquitto_gets_the_bridge_settings_the_readme_recommends() -> None:
    mounted = compose()["services"]["mosquitto"]["volumes"]
    assert "./docker/mosquitto.conf:/mosquitto/config/mosquitto.conf:ro" in mounted
    lines = (ROOT / "docker" / "mosquitto.conf").read_text(encoding="utf-8").splitlines()
    settings = dict(line.split(maxsplit=1) for line in lines if line and not line.startswith("#"))
    assert settings["listener"] == "1883"
    assert settings["allow_anonymous"] == "true"
    assert int(settings["max_inflight_messages"]) > 20  # Mosquitto's default
    assert settings["max_queued_messages"] == "0"
