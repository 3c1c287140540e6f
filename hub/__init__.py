"""servicehub core: the interaction store, the one ingest path, the outbox and the web app."""
