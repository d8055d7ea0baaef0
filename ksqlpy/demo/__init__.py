"""The connected-car demo: `ksqlpy simulate` (generated readings) and `ksqlpy demo` (the whole pipeline)."""
