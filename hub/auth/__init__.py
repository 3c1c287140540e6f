"""Agents, sessions, API tokens, sign-in lock-out and staff administration."""
