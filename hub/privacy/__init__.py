"""Privacy requests: export everything held about a customer, and erase a customer."""
