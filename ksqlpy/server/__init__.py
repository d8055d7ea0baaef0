"""The server layer: ksqlDB's REST API over HTTP/1.1 and HTTP/2 (starlette on hypercorn), so ksqlDB's
clients and tools talk to ksqlpy unmodified. It turns requests into statements for a KsqlService (the engine
with its runtime) and the results into ksqlDB's entities, frames and errors."""
