"""Limits on the traffic the proxy admits."""
