"""One rule for a CSV cell, shared by every export (the API's and the dashboard's)."""

from __future__ import annotations

# A cell starting with one of these is run as a formula by spreadsheets (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """Cells read as the JSON does: empty for null, ``true``/``false``, timestamps and ids as text.

    Text a spreadsheet would run as a formula (client-chosen values such as a model name) gets a
    leading ``'``.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
