"""Kafka runtime: the engine's backend over a real broker (or the embedded one), the command log and the CLI jobs."""
