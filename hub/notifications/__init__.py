"""What the hub tells one agent, in the page and through the API: a mention, a conversation
assigned to them, a snoozed conversation back, an SLA warning on a conversation they hold."""
