"""The MCP prompt server at ``/mcp`` (the official ``mcp`` SDK, streamable HTTP)."""
