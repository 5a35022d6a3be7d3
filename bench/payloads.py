"""Request bodies and canned upstream answers for the load benchmark.

Everything here is deterministic, so two runs send and receive exactly the same bytes.
"""

from __future__ import annotations

import json
from typing import Any

MODEL = "claude-sonnet-5"
ONE_KB = 1024
CLAUDE_CODE_SIZE = 200 * 1024
CLAUDE_CODE_MESSAGES = 80


def _dumps(value: Any) -> bytes:
    """Compact JSON, as Claude Code's ``JSON.stringify`` sends it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


# --- requests -------------------------------------------------------------------------------


def small_body(*, stream: bool, size: int = ONE_KB) -> bytes:
    """A one-message Messages request of exactly ``size`` bytes."""
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": ""}],
        "stream": stream,
    }
    filler = size - len(_dumps(body))
    body["messages"][0]["content"] = _prose(filler)
    encoded = _dumps(body)
    assert len(encoded) == size, len(encoded)
    return encoded


_PROSE = (
    "Please look at the failing test in the parser module and explain why the tokenizer drops the last "
    "character of a quoted string when it is followed by a comment. "
)


def _prose(length: int) -> str:
    return (_PROSE * (length // len(_PROSE) + 1))[:length]


_CODE_LINES = (
    "from __future__ import annotations",
    "",
    "import asyncio",
    "from collections.abc import AsyncIterator",
    "",
    "",
    "class Tokenizer:",
    '    """Split a source text into tokens, keeping every offset."""',
    "",
    "    def __init__(self, text: str) -> None:",
    "        self._text = text",
    "        self._pos = 0",
    "",
    "    def next_token(self) -> Token | None:",
    "        while self._pos < len(self._text) and self._text[self._pos].isspace():",
    "            self._pos += 1",
    "        if self._pos >= len(self._text):",
    "            return None",
    "        start = self._pos",
    "        if self._text[start] in QUOTES:",
    "            return self._quoted(start)",
    "        return self._word(start)",
    "",
    "    async def stream(self) -> AsyncIterator[Token]:",
    "        while (token := self.next_token()) is not None:",
    "            yield token",
    "            await asyncio.sleep(0)",
)


def _file_listing(encoded_length: int, first_line: int = 1) -> str:
    """Text shaped like Claude Code's Read tool output (``cat -n`` style).

    Its JSON encoding (tabs, newlines and quotes escaped) is exactly ``encoded_length`` bytes.
    """
    parts: list[str] = []
    size = 0
    number = first_line
    while True:
        line = f"{number:>6}\t{_CODE_LINES[number % len(_CODE_LINES)]}\n"
        cost = len(_dumps(line)) - 2
        if size + cost > encoded_length:
            break
        parts.append(line)
        size += cost
        number += 1
    return "".join(parts) + " " * (encoded_length - size)


_TOOLS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    (
        "Bash",
        "Executes a given bash command in a persistent shell session with optional timeout.",
        {"command": "string", "timeout": "number", "description": "string"},
    ),
    (
        "Glob",
        "Fast file pattern matching tool that works with any codebase size.",
        {"pattern": "string", "path": "string"},
    ),
    (
        "Grep",
        "A powerful search tool built on ripgrep. Supports full regex syntax.",
        {"pattern": "string", "path": "string", "glob": "string", "output_mode": "string"},
    ),
    (
        "Read",
        "Reads a file from the local filesystem. You can access any file directly by using this tool.",
        {"file_path": "string", "offset": "number", "limit": "number"},
    ),
    (
        "Edit",
        "Performs exact string replacements in files.",
        {"file_path": "string", "old_string": "string", "new_string": "string", "replace_all": "boolean"},
    ),
    ("Write", "Writes a file to the local filesystem.", {"file_path": "string", "content": "string"}),
    (
        "TodoWrite",
        "Use this tool to create and manage a structured task list for your current coding session.",
        {"todos": "array"},
    ),
    (
        "WebFetch",
        "Fetches content from a specified URL and processes it using an AI model.",
        {"url": "string", "prompt": "string"},
    ),
)


def _tools() -> list[dict[str, Any]]:
    tools = []
    for name, summary, params in _TOOLS:
        description = (
            summary
            + "\n\nUsage notes:\n"
            + "".join(
                f"- {summary} Keep the {param} parameter precise and avoid guessing values.\n" for param in params
            )
        )
        tools.append(
            {
                "name": name,
                "description": description,
                "input_schema": {
                    "type": "object",
                    "properties": {p: {"type": t, "description": f"The {p} to use"} for p, t in params.items()},
                    "required": [next(iter(params))],
                    "additionalProperties": False,
                    "$schema": "http://json-schema.org/draft-07/schema#",
                },
            }
        )
    return tools


def _system() -> list[dict[str, Any]]:
    instructions = "".join(
        f"# Section {n}\nYou are an interactive CLI tool that helps users with software engineering tasks. "
        "Use the instructions below and the tools available to you to assist the user. "
        "IMPORTANT: keep your responses short, since they will be displayed on a command line interface.\n\n"
        for n in range(1, 41)
    )
    return [
        {
            "type": "text",
            "text": "You are Claude Code, Anthropic's official CLI for Claude.",
            "cache_control": {"type": "ephemeral"},
        },
        {"type": "text", "text": instructions, "cache_control": {"type": "ephemeral"}},
    ]


def _conversation(count: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``count`` alternating messages; returns them and the tool_result blocks to pad."""
    messages: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    pending_tool: str | None = None
    for index in range(count):
        turn = index // 2
        if index % 2 == 0:  # user
            if pending_tool is not None:
                block = {"type": "tool_result", "tool_use_id": pending_tool, "content": ""}
                results.append(block)
                messages.append({"role": "user", "content": [block]})
                pending_tool = None
            else:
                text = "<system-reminder>\nThe user opened src/parser/tokenizer.py in the IDE.\n</system-reminder>"
                messages.append(
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": text},
                            {"type": "text", "text": f"Step {turn}: " + _prose(300)},
                        ],
                    }
                )
        elif index == count - 1 or turn % 4 == 3:  # assistant, plain text
            messages.append({"role": "assistant", "content": [{"type": "text", "text": _prose(400)}]})
        else:  # assistant calling a tool
            pending_tool = f"toolu_01Bench{turn:015d}"
            messages.append(
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "Let me read the tokenizer to see how quoted strings end."},
                        {
                            "type": "tool_use",
                            "id": pending_tool,
                            "name": "Read",
                            "input": {"file_path": f"/home/dev/project/src/parser/module_{turn}.py"},
                        },
                    ],
                }
            )
    return messages, results


def claude_code_body(*, stream: bool, size: int = CLAUDE_CODE_SIZE, message_count: int = CLAUDE_CODE_MESSAGES) -> bytes:
    """A Claude Code-sized request: 2-block system, tools, ``message_count`` messages, ``size`` bytes."""
    messages, results = _conversation(message_count)
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 1024,
        "messages": messages,
        "system": _system(),
        "tools": _tools(),
        "metadata": {"user_id": "user_bench_account__session_00000000-0000-4000-8000-000000000000"},
        "stream": stream,
    }
    room = size - len(_dumps(body))
    assert room > len(results), "the fixed part is already larger than the target size"
    share, extra = divmod(room, len(results))
    line = 1
    for index, block in enumerate(results):
        block["content"] = _file_listing(share + (1 if index < extra else 0), first_line=line)
        line += 40
    encoded = _dumps(body)
    assert len(encoded) == size, len(encoded)
    return encoded


# --- upstream answers -----------------------------------------------------------------------

MESSAGE_ID = "msg_01BenchXyZ0123456789abcdEF"
REQUEST_ID = "req_011CBenchXyZ0123456789abcd"

_USAGE = {
    "input_tokens": 1523,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 48211,
    "output_tokens": 87,
    "service_tier": "standard",
}


def message_json() -> bytes:
    """A non-streaming Messages answer of about 600 bytes."""
    return _dumps(
        {
            "id": MESSAGE_ID,
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [
                {
                    "type": "text",
                    "text": "The tokenizer stops one character early because the closing quote check runs "
                    "before the comment marker is consumed, so the slice end is off by one. Moving the "
                    "check after the comment branch fixes it, and the existing tests still pass.",
                }
            ],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": _USAGE,
        }
    )


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + _dumps(data) + b"\n\n"


def sse_events() -> list[bytes]:
    """A short streamed answer in Anthropic's exact SSE framing, one ``bytes`` per event."""
    start = {
        "id": MESSAGE_ID,
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**_USAGE, "output_tokens": 1},
    }
    deltas = ("The tokenizer stops", " one character early because", " the closing quote check", " runs first.")
    return [
        _event("message_start", {"type": "message_start", "message": start}),
        _event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        _event("ping", {"type": "ping"}),
        *(
            _event(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
            )
            for text in deltas
        ),
        _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 21},
            },
        ),
        _event("message_stop", {"type": "message_stop"}),
    ]


def sse_body() -> bytes:
    return b"".join(sse_events())
