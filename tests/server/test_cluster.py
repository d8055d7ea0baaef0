"""Servers sharing a service id: each lists them all in /clusterStatus, with the partitions their queries hold,
and a server that stops leaves the list."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
from running_server import RunningServer

from ksqlpy.execution.partitioning import partition_for


def cluster_of(server: RunningServer) -> dict[str, Any]:
    answer = httpx.get(f"{server.url}/clusterStatus", timeout=10)
    assert answer.status_code == 200
    return dict(answer.json()["clusterStatus"])


def test_servers_of_one_service_id_list_each_other_and_their_partitions(
    server_factory: Callable[..., RunningServer], unique_topic: Callable[..., str],
    wait_until: Callable[..., Any],
) -> None:
    service_id = f"cluster_{uuid.uuid4().hex[:8]}_"
    first, second = server_factory(service_id), server_factory(service_id)
    hosts = {urlsplit(server.url).netloc for server in (first, second)}
    source = unique_topic("clicks")
    created = httpx.post(f"{first.url}/ksql", timeout=30, json={"ksql": (
        f"CREATE STREAM clicks (user_id STRING KEY, page STRING) WITH (kafka_topic='{source}', "
        "value_format='JSON', partitions=2);"
        "CREATE TABLE per_user AS SELECT user_id, COUNT(*) AS n FROM clicks GROUP BY user_id;"),
        "streamsProperties": {"auto.offset.reset": "earliest"}})
    assert created.status_code == 200, created.text

    def both_listed_with_split_partitions() -> bool:
        for server in (first, second):
            listed = cluster_of(server)
            if set(listed) != hosts or not all(host["hostAlive"] for host in listed.values()):
                return False
        held = [host["activeStandbyPerQuery"].get("CTAS_PER_USER_0", {}).get("activePartitions", [])
                for host in cluster_of(first).values()]
        return sorted(p["partition"] for partitions in held for p in partitions) == [0, 1]

    wait_until(both_listed_with_split_partitions, timeout=60, message="both servers listed, holding a partition each")
    second.stop()
    wait_until(lambda: set(cluster_of(first)) == {urlsplit(first.url).netloc}, timeout=20,
               message="the stopped server to leave the cluster")


def test_a_statement_sent_to_one_server_takes_effect_in_every_server_of_the_service(
    server_factory: Callable[..., RunningServer], unique_topic: Callable[..., str],
    wait_until: Callable[..., Any],
) -> None:
    service_id = f"cluster_{uuid.uuid4().hex[:8]}_"
    first, second = server_factory(service_id), server_factory(service_id)
    topic = unique_topic("orders")
    created = httpx.post(f"{first.url}/ksql", timeout=30, json={"ksql": (
        f"CREATE STREAM orders (id STRING KEY, amount INT) WITH (kafka_topic='{topic}', value_format='JSON', "
        "partitions=1);")})
    assert created.status_code == 200, created.text

    def listed_by_second() -> bool:
        (listing,) = httpx.post(f"{second.url}/ksql", json={"ksql": "SHOW STREAMS;"}, timeout=10).json()
        return "ORDERS" in {stream["name"] for stream in listing["streams"]}

    wait_until(listed_by_second, timeout=20, message="the second server to learn of the stream")
    # and the other way round, with a query: both know it by the same id
    derived = httpx.post(f"{second.url}/ksql", timeout=30, json={
        "ksql": "CREATE STREAM big_orders AS SELECT * FROM orders WHERE amount > 100;"})
    assert derived.status_code == 200, derived.text
    query_id = derived.json()[0]["commandStatus"]["queryId"]

    def first_runs_it() -> bool:
        (listing,) = httpx.post(f"{first.url}/ksql", json={"ksql": "SHOW QUERIES;"}, timeout=10).json()
        return query_id in {query["id"] for query in listing["queries"]}

    wait_until(first_runs_it, timeout=20, message=f"the first server to run {query_id}")


def test_a_pull_query_for_one_key_is_answered_by_the_server_holding_its_partition(
    server_factory: Callable[..., RunningServer], broker: str, unique_topic: Callable[..., str],
    produce_json: Callable[..., None], wait_until: Callable[..., Any],
) -> None:
    service_id = f"cluster_{uuid.uuid4().hex[:8]}_"
    first, second = server_factory(service_id), server_factory(service_id)
    source = unique_topic("clicks")
    users = [f"user{i}" for i in range(8)]
    produce_json(broker, source, [(user, {"PAGE": "home"}) for user in users for _ in range(users.index(user) + 1)],
                 partitions=2)
    created = httpx.post(f"{first.url}/ksql", timeout=30, json={"ksql": (
        f"CREATE STREAM clicks (user_id STRING KEY, page STRING) WITH (kafka_topic='{source}', "
        "value_format='JSON', partitions=2);"
        "CREATE TABLE per_user AS SELECT user_id, COUNT(*) AS n FROM clicks GROUP BY user_id;"),
        "streamsProperties": {"auto.offset.reset": "earliest"}})
    assert created.status_code == 200, created.text

    def holders() -> dict[int, str] | None:
        held = {}
        for url, host in httpx.get(f"{first.url}/clusterStatus", timeout=10).json()["clusterStatus"].items():
            for partition in host["activeStandbyPerQuery"].get("CTAS_PER_USER_0", {}).get("activePartitions", []):
                held[partition["partition"]] = f"http://{url}"
        return held if sorted(held) == [0, 1] and len(set(held.values())) == 2 else None

    owner_of_partition = wait_until(holders, timeout=60, message="each server holding one partition")

    def counts_by_key() -> dict[str, tuple[int, str | None]]:
        answers = {}
        for user in users:
            answer = httpx.post(f"{first.url}/query", timeout=30, json={
                "ksql": f"SELECT * FROM per_user WHERE user_id = '{user}';", "streamsProperties": {}})
            assert answer.status_code == 200, answer.text
            rows = [item["row"]["columns"] for item in answer.json() if "row" in item]
            answers[user] = (rows[0][1] if rows else 0, answer.headers.get("x-ksqlpy-served-by"))
        return answers

    wait_until(lambda: all(count == users.index(user) + 1 for user, (count, _) in counts_by_key().items()),
               timeout=30, message="every user's count")
    for user, (_count, served_by) in counts_by_key().items():
        owner = owner_of_partition[partition_for(user.encode(), 2)]
        assert served_by == (None if owner == first.url else second.url), user
