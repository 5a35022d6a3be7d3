"""The recorder in a process of its own (ADR 20)."""
