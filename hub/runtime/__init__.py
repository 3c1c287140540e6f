"""What background work shares: pacing during bursts, time budgets, the parser processes and fair admission to them."""
