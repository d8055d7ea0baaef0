"""`ksqlpy run --metrics-port`: a real `ksqlpy run` process serves its queries' and functions' Prometheus
metrics on loopback while the queries run."""

from __future__ import annotations

import socket
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from app_process import KsqlpyRun, write_sql
from prometheus_client.parser import text_string_to_metric_families

UDF_MODULE = '''
    from ksqlpy import udf

    @udf(params=["INT"], returns="INT")
    def tripled(x):
        return x * 3
'''


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
    """The samples served at `url`, or None while nothing listens there yet."""
    try:
        answer = httpx.get(url, timeout=5)
    except httpx.TransportError:
        return None
    assert answer.status_code == 200
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(answer.text) for sample in family.samples}


def test_ksqlpy_run_serves_its_metrics_on_the_metrics_port(
    broker: str, tmp_path: Path, unique_topic: Callable[..., str], produce_json: Callable[..., None],
    wait_until: Callable[..., Any],
) -> None:
    source, sink = unique_topic("counts"), unique_topic("tripled")
    (tmp_path / "udfs").mkdir()
    (tmp_path / "udfs" / "tripling.py").write_text(textwrap.dedent(UDF_MODULE))
    sql = write_sql(tmp_path, "metered", (
        "SET 'auto.offset.reset'='earliest';\n"
        f"CREATE STREAM counts (k STRING KEY, n INT) WITH (kafka_topic='{source}', value_format='JSON', "
        "partitions=1);\n"
        f"CREATE STREAM tripled WITH (kafka_topic='{sink}') AS SELECT k, TRIPLED(n) AS n FROM counts;\n"
    ))
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    run = KsqlpyRun(sql, broker, f"metrics_{uuid.uuid4().hex[:10]}_", "--udfs-dir", str(tmp_path / "udfs"),
                    "--metrics-port", str(port))
    try:
        produce_json(broker, source, [(f"key{i}", {"N": i}) for i in range(5)])
        query = (("query_id", "CSAS_TRIPLED_0"),)

        def written() -> Any:
            samples = scrape(url)
            return samples if samples and samples.get(("ksqlpy_query_records_out_total", query)) == 5 else None

        samples = wait_until(written, 30, f"the query's five records in the metrics\n{run.describe()}")
        assert samples[("ksqlpy_query_records_in_total", query)] == 5
        assert samples[("ksqlpy_function_rows_total", (("function", "TRIPLED"),))] == 5
        assert samples[("ksqlpy_query_state", (*query, ("state", "RUNNING")))] == 1
        assert run.stop() == 0, run.describe()
    finally:
        run.ensure_stopped()
    assert scrape(url) is None  # the metrics server stopped with the process
