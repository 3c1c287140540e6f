"""Demo data: customers on every channel, a knowledge base and weeks of history."""
