"""ksqlpy: a streaming SQL engine over Apache Kafka with vectorized Python UDFs."""

from ksqlpy.functions.udf import Model, model, udaf, udf, udtf

__all__ = ["Model", "__version__", "model", "udaf", "udf", "udtf"]
__version__ = "0.1.0"
