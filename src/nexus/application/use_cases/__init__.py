"""One class per use case, each with a single ``execute``."""
