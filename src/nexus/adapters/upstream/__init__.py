"""The HTTP client that talks to Anthropic."""
