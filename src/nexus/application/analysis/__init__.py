"""The AI analysis worker."""
