"""Delivery: the HTTP app, the CLI, and the composition root that wires them."""
