"""Prompt templates from a directory of YAML files, rendered by a sandboxed Jinja."""
