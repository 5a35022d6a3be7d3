"""Conversation linking: the pure rules (hashing, sub-agents, compactions, branch names).

The linking algorithm that applies them to stored history is in
``nexus.application.linking``; see ADR 8.
"""
