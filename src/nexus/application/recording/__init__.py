"""Recording finished exchanges: rows, the recorder loop and its journal."""
