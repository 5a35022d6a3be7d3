"""OpenTelemetry and logs for finished exchanges."""
