"""The servicehub command."""
