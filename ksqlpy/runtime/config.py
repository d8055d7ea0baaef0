"""Runtime settings: which cluster, which librdkafka settings, which ksql properties, from CLI, env and file.

Precedence, highest first: command-line flags, environment (KSQLPY_BOOTSTRAP_SERVERS), the config file.
A config file holds `name=value` lines (ksqlDB's server.properties style; `#` comments): names starting
with `ksql.` or matching a query property are ksql properties, everything else is passed to librdkafka
unchanged (security.protocol, sasl.*, ssl.*, ...).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ksqlpy.errors import KsqlError
from ksqlpy.execution.emission import CACHE_PROPERTIES

BOOTSTRAP_ENV = "KSQLPY_BOOTSTRAP_SERVERS"
# ksqlDB's name for where UDF jars live; here a comma-separated list of directories of UDF modules.
UDF_DIRECTORIES_PROPERTY = "ksql.extension.dir"
DEFAULT_UDF_DIRECTORY = "udfs"
DEFAULT_SERVICE_ID = "default_"
# Query-level properties that are ksql settings even without the `ksql.` prefix.
KSQL_PROPERTY_NAMES = {"auto.offset.reset", "processing.guarantee", "udf.error.policy", "commit.interval.ms",
                       *CACHE_PROPERTIES}


@dataclass
class RuntimeConfig:
    bootstrap_servers: str | None = None  # None: start the embedded broker
    service_id: str = DEFAULT_SERVICE_ID
    kafka: dict[str, str] = field(default_factory=dict)  # librdkafka settings passed through
    properties: dict[str, str] = field(default_factory=dict)  # ksql / query properties
    udf_directories: list[str] = field(default_factory=lambda: [DEFAULT_UDF_DIRECTORY])

    def client_settings(self) -> dict[str, str]:
        """Settings every client gets: the bootstrap servers plus the passed-through librdkafka ones."""
        if self.bootstrap_servers is None:
            raise KsqlError("No bootstrap servers: start the embedded broker or pass --bootstrap-servers")
        return {"bootstrap.servers": self.bootstrap_servers, **self.kafka}


def parse_properties_text(text: str, origin: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", "!")):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise KsqlError(f"{origin}:{number}: expected name=value, got {line!r}")
        values[name.strip()] = value.strip()
    return values


def split_settings(settings: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(librdkafka settings, ksql properties)."""
    kafka: dict[str, str] = {}
    ksql: dict[str, str] = {}
    for name, value in settings.items():
        if name.startswith("ksql.") or name in KSQL_PROPERTY_NAMES:
            ksql[name] = value
        else:
            kafka[name] = value
    return kafka, ksql


def load_config(
    bootstrap_servers: str | None = None,
    config_file: str | None = None,
    overrides: Sequence[str] = (),
    service_id: str | None = None,
    environ: Mapping[str, str] | None = None,
    udf_directories: Sequence[str] = (),
) -> RuntimeConfig:
    """Build the runtime configuration; `overrides` are `name=value` strings from repeated -p/--property flags,
    `udf_directories` the --udfs-dir flags (else ksql.extension.dir, else ./udfs)."""
    env = os.environ if environ is None else environ
    settings: dict[str, str] = {}
    if config_file is not None:
        path = Path(config_file)
        try:
            settings.update(parse_properties_text(path.read_text(encoding="utf-8"), str(path)))
        except OSError as error:
            raise KsqlError(f"Cannot read config file {config_file}: {error.strerror}") from error
    settings.update(parse_properties_text("\n".join(overrides), "--property"))
    bootstrap = settings.pop("bootstrap.servers", None)
    bootstrap = env.get(BOOTSTRAP_ENV) or bootstrap
    bootstrap = bootstrap_servers or bootstrap
    service = service_id or settings.pop("ksql.service.id", None) or DEFAULT_SERVICE_ID
    configured_udfs = [d.strip() for d in settings.pop(UDF_DIRECTORIES_PROPERTY, "").split(",") if d.strip()]
    kafka, ksql = split_settings(settings)
    return RuntimeConfig(
        bootstrap_servers=bootstrap, service_id=service, kafka=kafka, properties=ksql,
        udf_directories=list(udf_directories) or configured_udfs or [DEFAULT_UDF_DIRECTORY],
    )
