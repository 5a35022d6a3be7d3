"""Credential files on disk and the OAuth token endpoint."""
