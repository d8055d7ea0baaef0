"""Keys go to the partitions Java's default partitioner picks; a windowed key by its key alone."""

from __future__ import annotations

import json

import pytest

from ksqlpy.driver import InMemoryDriver
from ksqlpy.execution.partitioning import murmur2, partition_for


@pytest.mark.parametrize(("data", "signed_hash"), [
    # Kafka's own test vectors for Utils.murmur2 (Java ints)
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
])
def test_murmur2_is_kafkas(data: bytes, signed_hash: int) -> None:
    assert murmur2(data) == signed_hash % 2**32


def test_a_partition_is_the_positive_hash_modulo_the_count() -> None:
    assert partition_for(b"foobar", 7) == (-790332482 & 0x7FFFFFFF) % 7


def test_all_windows_of_a_key_go_to_the_partition_of_the_key() -> None:
    driver = InMemoryDriver()
    driver.execute("CREATE STREAM s (id STRING KEY, v INT) WITH (kafka_topic='s', value_format='JSON', "
                   "partitions=4);"
                   "CREATE TABLE o AS SELECT id, COUNT(*) AS n FROM s WINDOW TUMBLING (SIZE 10 MILLISECONDS) "
                   "GROUP BY id;")
    for time in range(0, 100, 10):
        driver.produce("s", b"k", json.dumps({"V": 1}).encode(), time, partition=time // 10 % 4)
    driver.process()
    records = driver.records("O")
    assert len(records) == 10 and len({record.window for record in records}) == 10
    assert {record.partition for record in records} == {partition_for(b"k", 4)}
