"""Customer value and segments (general, potential, key) from the back end's orders and contact history."""
