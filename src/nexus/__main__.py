"""``python -m nexus`` is ``claude-nexus-proxy``."""

from nexus.entrypoints.cli.main import main

main()
