"""The ``claude-nexus-proxy`` command."""
