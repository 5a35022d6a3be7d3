"""Slack: incoming webhooks over httpx, and where each domain's messages go."""
