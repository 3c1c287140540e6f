"""The channels as the hub sees them: which adapter serves which channel, and their status."""
