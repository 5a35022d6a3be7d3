"""The technology behind each port."""
