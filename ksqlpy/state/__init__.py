"""State: the key-value stores stateful operators keep their tables, aggregates and windows in.

Operators see only the StateStore interface; one store exists per (query, operator, partition), as a
Kafka Streams task has one per processor. The in-memory store serves tests and the in-memory driver;
the RocksDB store (ksqlpy.state.rocksdb) keeps state on local disk, beyond memory and across restarts.
"""
