"""Use cases and the ports they need; no technology is named here."""
