"""GET /metrics over real HTTP while a persistent query runs on the embedded broker: the query's records in and
out, batch latency and state, a user function's rows and errors, a model's score distribution and the
processing log, in Prometheus' text format."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from running_server import RunningServer

UDF_MODULE = '''
    from pathlib import Path

    import numpy as np

    from ksqlpy import model, udf

    # A tiny "model": a factor loaded once, standing in for a real artifact (models/tiny/v3).
    SCALE = model("tiny-scorer", path=Path(__file__).parent / "models" / "tiny" / "v3", load=lambda path: 2.0)

    @udf(params=["INT"], returns="INT")
    def doubled(x):
        return x * 2

    @udf(params=["INT"], returns="INT")
    def checked(x):
        if x == 13:
            raise ValueError("thirteen is not allowed")
        return x

    @udf(vectorized=True, params=["DOUBLE"], returns="DOUBLE", model=SCALE)
    def tiny_score(readings):
        return readings * SCALE.get()
'''

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(server: RunningServer) -> Samples:
    """Every sample of GET /metrics by name and sorted labels."""
    answer = httpx.get(f"{server.url}/metrics", timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(answer.text) for sample in family.samples}


def ksql(server: RunningServer, statements: str) -> None:
    answer = httpx.post(f"{server.url}/ksql", json={"ksql": statements, "streamsProperties": {
        "auto.offset.reset": "earliest"}}, timeout=30)
    assert answer.status_code == 200, answer.text


def test_metrics_count_a_querys_records_its_functions_and_its_models_scores(
    server: RunningServer, tmp_path: Path, unique_topic: Callable[..., str], produce_json: Callable[..., None],
    wait_until: Callable[..., Any], broker: str,
) -> None:
    (tmp_path / "udfs").mkdir()
    (tmp_path / "udfs" / "metered.py").write_text(textwrap.dedent(UDF_MODULE))
    loader = server.app.udf_loader
    assert loader is not None
    loader.directories.append(tmp_path / "udfs")
    assert [result.error for result in loader.scan()] == [None]

    source, sink = unique_topic("readings"), unique_topic("scored")
    ksql(server, f"CREATE STREAM readings (k STRING KEY, x INT, reading DOUBLE) WITH (kafka_topic='{source}', "
                 "value_format='JSON', partitions=1);"
                 f"CREATE STREAM scored WITH (kafka_topic='{sink}') AS SELECT k, DOUBLED(x) AS d, CHECKED(x) AS c, "
                 "TINY_SCORE(reading) AS s FROM readings;")
    [query_id] = server.app.engine.queries
    produce_json(broker, source, [("a", {"X": 1, "READING": 0.0004}), ("b", {"X": 13, "READING": 0.3}),
                                  ("c", {"X": 2, "READING": 40.0})])

    query = (("query_id", query_id),)
    lag = ("ksqlpy_query_lag_records", (("partition", "0"), *query, ("topic", source)))

    def done() -> Samples | None:
        samples = scrape(server)
        finished = samples.get(("ksqlpy_query_records_out_total", query)) == 3 and samples.get(lag) == 0
        return samples if finished else None

    samples = wait_until(done, 30, "the query to write its three records and commit them")
    assert samples[("ksqlpy_query_records_in_total", query)] == 3
    assert samples[("ksqlpy_query_state", (*query, ("state", "RUNNING")))] == 1
    assert samples[("ksqlpy_query_state", (*query, ("state", "ERROR")))] == 0
    assert samples[("ksqlpy_query_batch_duration_seconds_count", query)] >= 1
    assert samples[("ksqlpy_processing_log_entries_total", (("level", "ERROR"), *query))] == 1

    assert samples[("ksqlpy_function_rows_total", (("function", "DOUBLED"),))] == 3
    assert samples[("ksqlpy_function_errors_total", (("function", "DOUBLED"),))] == 0
    assert samples[("ksqlpy_function_errors_total", (("function", "CHECKED"),))] == 1
    assert samples[("ksqlpy_function_batch_duration_seconds_count", (("function", "TINY_SCORE"),))] >= 1

    scores = (("function", "TINY_SCORE"), ("model", "tiny-scorer"), ("version", "v3"))
    assert samples[("ksqlpy_model_score_count", scores)] == 3
    assert abs(samples[("ksqlpy_model_score_sum", scores)] - 80.6008) < 1e-9
    assert samples[("ksqlpy_model_score_bucket", (scores[0], ("le", "0.001"), *scores[1:]))] == 1  # 0.0008
    assert samples[("ksqlpy_model_score_bucket", (scores[0], ("le", "1.0"), *scores[1:]))] == 2  # 0.6
    assert samples[("ksqlpy_model_score_bucket", (scores[0], ("le", "100.0"), *scores[1:]))] == 3  # 80
    assert samples[("ksqlpy_state_memory_limit_bytes", (("kind", "block_cache"),))] > 0
