"""Which partition a key goes to, as Kafka's Java producer (and so ksqlDB and Kafka Streams) decides.

The default partitioner of Java clients hashes the serialized key with Kafka's 32-bit murmur2; librdkafka
does the same with `partitioner=murmur2_random`, which ksqlpy's producers use. A windowed key is placed by
its key alone, without the window bounds (Kafka Streams' WindowedStreamPartitioner), so all of a key's
windows share a partition; that placement is computed here.
"""

from __future__ import annotations

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash of `data`, as an unsigned 32-bit number."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = data[whole:]
    if tail:
        h ^= int.from_bytes(tail, "little")
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Java's default partitioner picks for a (non-null) serialized key."""
    if partitions == 1:
        return 0  # nothing to choose: spares the hash, which is pure Python
    return (murmur2(key) & 0x7FFFFFFF) % partitions
