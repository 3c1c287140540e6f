"""The one write path in: identity, threading, dedupe and storage of every inbound message, the group-committing writer and the inbound spool."""
