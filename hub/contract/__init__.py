"""What channels and back-end adapters may import of the hub: the message shapes, the errors a caller can act on, what a delivery ends in, the clock, signing keys."""
