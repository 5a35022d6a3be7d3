"""Conversation linking: the algorithm (``linker``) and the loop that applies it (``run``)."""
