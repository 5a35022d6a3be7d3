"""The dashboard: server-rendered pages under ``/dashboard`` (ADR 9)."""
