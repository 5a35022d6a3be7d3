"""Gemini's REST API (``models/{model}:generateContent``) on loopback, as the real
``google-genai`` client calls it: keeps each request and answers as scripted (an analysis, an
answer that does not fit the schema, an error status, or slowly)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.support.loopback_app import LoopbackApp

API_KEY = "AIzaFakeGeminiKeyForTests_0123456789abcdef"

ANALYSIS: dict[str, Any] = {
    "summary": "The developer asked for a retry helper and got one with tests.",
    "keyTopics": ["retries", "testing"],
    "sentiment": "positive",
    "userIntent": "Add retries with backoff to the HTTP client.",
    "outcomes": ["A retry helper was written"],
    "actionItems": [{"type": "task", "description": "Add a jitter test", "priority": "low"}],
    "promptingTips": [{"category": "context", "issue": "No error sample", "suggestion": "Paste the failing log"}],
    "interactionPatterns": {
        "promptClarity": 8,
        "contextCompleteness": 6,
        "followUpEffectiveness": "good",
        "commonIssues": ["missing context"],
        "strengths": ["clear goal"],
    },
    "technicalDetails": {"frameworks": ["httpx"], "issues": ["flaky network"], "solutions": ["exponential backoff"]},
    "conversationQuality": {"clarity": "high", "completeness": "complete", "effectiveness": "effective"},
}


@dataclass(frozen=True)
class Answer:
    kind: str = "analysis"  # analysis | misfit | status | slow
    status: int = 200
    delay_s: float = 0.0
    retry_delay: str | None = None


class FakeGemini(LoopbackApp):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict[str, Any]] = []
        self.script: list[Answer] = []  # answers to give, in order, before plain analyses
        self.model_version = "gemini-2.5-pro-fake-001"
        self.analysis: dict[str, Any] = json.loads(json.dumps(ANALYSIS))  # what it answers; a test may change it

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.requests)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1beta/models/{target}", self._generate)

    async def _generate(self, request: web.Request) -> web.Response:
        model, _, method = request.match_info["target"].partition(":")
        body = await request.json()
        with self._lock:
            self.requests.append({"model": model, "key": request.headers.get("x-goog-api-key"), "body": body})
            answer = self.script.pop(0) if self.script else Answer()
        if method != "generateContent":
            return _error(404, "NOT_FOUND", f"no method {method}")
        if request.headers.get("x-goog-api-key") != API_KEY:
            return _error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
        if answer.kind == "slow":
            await asyncio.sleep(answer.delay_s)
        if answer.kind == "status":
            details = (
                [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": answer.retry_delay}]
                if answer.retry_delay
                else []
            )
            return _error(
                answer.status, "RESOURCE_EXHAUSTED" if answer.status == 429 else "UNAVAILABLE", "scripted", details
            )
        text = json.dumps({"summary": "only a summary"}) if answer.kind == "misfit" else json.dumps(self.analysis)
        return web.json_response(
            {
                "candidates": [
                    {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP", "index": 0}
                ],
                "usageMetadata": {"promptTokenCount": 1234, "candidatesTokenCount": 321, "totalTokenCount": 1555},
                "modelVersion": self.model_version,
            }
        )


def _error(code: int, status: str, message: str, details: list[dict[str, Any]] | None = None) -> web.Response:
    error = {"code": code, "message": message, "status": status, **({"details": details} if details else {})}
    return web.json_response({"error": error}, status=code)
