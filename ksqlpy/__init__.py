"""ksqlpy: a streaming SQL engine over Apache Kafka with vectorized Python UDFs."""

__version__ = "0.1.0"
