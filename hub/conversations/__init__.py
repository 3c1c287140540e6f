"""Conversations as agents work them: listing and search, one conversation's timeline, replies, notes, read marks, presence, mentions and canned responses."""
