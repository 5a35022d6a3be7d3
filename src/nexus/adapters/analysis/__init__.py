"""The models an analysis can be asked of."""
