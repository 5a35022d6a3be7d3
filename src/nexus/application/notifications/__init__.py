"""Notifications about traffic (Slack), built and delivered off the request path."""
