"""The HTTP gateway: management API, webhook ingest, invocation, results queries."""
