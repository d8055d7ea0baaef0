"""Testing tools for users: the `ksqlpy test` runner and the ksqlDB conformance runner."""
