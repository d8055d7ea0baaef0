"""Serialization: record formats (JSON, DELIMITED, KAFKA, NONE) bound to column lists."""
