"""Claude through this proxy's own ``/v1/messages``: the analysis is ordinary traffic of a
domain (``AI_ANALYSIS_CLAUDE_HOST``), paid by its credential, recorded and counted like any
other request, behind the same circuit breaker and retries.

The answer is forced into the schema with a tool: ``tool_choice`` names ``record_analysis``,
whose ``input_schema`` is the analysis schema, and the tool call's input is the analysis. The
conversation goes as one user message of tagged turns, so the model reads it rather than
continuing it.
"""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

from nexus import __version__
from nexus.application.ports.analysis import AnalyzerAnswer, AnalyzerFailed
from nexus.domain.analysis.transcript import Turn

TOOL = "record_analysis"
MAX_TOKENS = 8192


class ClaudeAnalyzer:
    name = "claude"

    def __init__(
        self, *, client: httpx.AsyncClient, proxy_url: str, host: str | None, api_key: str | None, model: str
    ) -> None:
        self.model = model
        self._client = client
        self._url = f"{proxy_url.rstrip('/')}/v1/messages"
        self._headers = {
            "anthropic-version": "2023-06-01",
            "content-type": "application/json",
            "user-agent": f"claude-nexus-analysis/{__version__}",
            **({"host": host} if host else {}),
            **({"x-api-key": api_key} if api_key else {}),
        }

    async def analyze(self, turns: list[Turn], brief: str, *, schema: dict[str, Any]) -> AnalyzerAnswer:
        body = {
            "model": self.model,
            "max_tokens": MAX_TOKENS,
            "system": brief,
            "messages": [{"role": "user", "content": transcript(turns)}],
            "tools": [
                {"name": TOOL, "description": "Record the analysis of the conversation.", "input_schema": schema}
            ],
            "tool_choice": {"type": "tool", "name": TOOL},
        }
        try:
            response = await self._client.post(self._url, content=msgspec.json.encode(body), headers=self._headers)
        except httpx.HTTPError as exc:
            raise AnalyzerFailed(f"Claude did not answer: {type(exc).__name__}", retryable=True) from None
        if response.status_code != 200:
            raise _refused(response)
        try:
            message = response.json()
        except ValueError:
            raise AnalyzerFailed("Claude's answer is not JSON", retryable=True) from None
        call = next(
            (
                block
                for block in message.get("content") or []
                if block.get("type") == "tool_use" and block.get("name") == TOOL
            ),
            None,
        )
        data = call.get("input") if call else None
        usage = message.get("usage") or {}
        return AnalyzerAnswer(
            data=data if data is not None else "",
            raw=msgspec.json.encode(data if call else message.get("content")).decode(),
            model=str(message.get("model") or self.model),
            input_tokens=usage.get("input_tokens"),
            output_tokens=usage.get("output_tokens"),
        )


def transcript(turns: list[Turn]) -> str:
    lines = ["The conversation to analyse:", "<conversation>"]
    for turn in turns:
        lines.append(f'<turn role="{turn.role}">\n{_escaped(turn.text)}\n</turn>')
    lines.append("</conversation>")
    return "\n".join(lines)


def _escaped(text: str) -> str:
    """A turn cannot close its own tag and pose as the brief."""
    return text.replace("</turn>", "<\\/turn>").replace("</conversation>", "<\\/conversation>")


def _refused(response: httpx.Response) -> AnalyzerFailed:
    status = response.status_code
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    kind = error.get("type") if isinstance(error, dict) else None
    message = f"Claude answered {status}" + (f" {kind}" if kind else "")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        message += f": {error['message'][:200]}"
    retry_after = response.headers.get("retry-after", "")
    return AnalyzerFailed(
        message,
        retryable=status in (408, 429) or status >= 500,
        retry_after_s=float(retry_after) if retry_after.replace(".", "", 1).isdigit() else None,
    )
