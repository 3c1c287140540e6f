"""The one way out: outbound effects as outbox rows, delivered with retries, backoff and a dead-letter state."""
