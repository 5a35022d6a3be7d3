"""The start of each listed request's prompt and answer, for the dashboard's request list.

One statement for the page's rows, by id within their time range (so only the partitions
holding them are read): the prompt is the ``prompt_text`` column written at record time, the
answer the stored response's first text block (or its error message), both cut in SQL so
only a preview travels, and the names of the tool calls it made.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeAlias

from sqlalchemy import ARRAY, ColumnClause, Row, Select, any_, bindparam, func, literal_column, select

from nexus.adapters.persistence.tables import exchanges
from nexus.application.ports.exchange_queries import RequestPreview, RequestSummary

AnyRow: TypeAlias = "Row[*tuple[Any, ...]]"

PREVIEW_CHARS = 300  # cut in SQL; the page cuts again to what fits a row

_e = exchanges.c
# Constant paths, written into the statement (never from input).
_FIRST_TEXT: ColumnClause[Any] = literal_column("""'$.content[*] ? (@.type == "text").text'::jsonpath""")
_TOOL_NAMES: ColumnClause[Any] = literal_column("""'$.content[*] ? (@.type == "tool_use").name'::jsonpath""")
_AS_TEXT: ColumnClause[Any] = literal_column("'{}'::text[]")
_ERROR_MESSAGE: ColumnClause[Any] = literal_column("'{error,message}'::text[]")


def previews_statement(requests: Sequence[RequestSummary]) -> Select[Any]:
    """The previews of ``requests`` (not empty)."""
    ids = [request.request_id for request in requests]
    first_text = func.jsonb_path_query_first(_e.response_body, _FIRST_TEXT).op("#>>")(_AS_TEXT)
    error = _e.response_body.op("#>>")(_ERROR_MESSAGE)
    return select(
        _e.id,
        func.left(_e.prompt_text, PREVIEW_CHARS).label("prompt"),
        func.left(func.coalesce(first_text, error), PREVIEW_CHARS).label("answer"),
        func.jsonb_path_query_array(_e.response_body, _TOOL_NAMES).label("tools"),
    ).where(
        _e.id == any_(bindparam("ids", ids, type_=ARRAY(_e.id.type))),
        _e.ts >= min(request.timestamp for request in requests),
        _e.ts <= max(request.timestamp for request in requests),
    )


def preview(row: AnyRow) -> tuple[uuid.UUID, RequestPreview]:
    tools = row.tools if isinstance(row.tools, list) else []
    return row.id, RequestPreview(
        prompt=_line(row.prompt), answer=_line(row.answer), tools=[name for name in tools if isinstance(name, str)]
    )


def _line(text: str | None) -> str | None:
    """One line: a preview of a multi-line answer reads as its words."""
    return (" ".join(text.split()) or None) if text else None
