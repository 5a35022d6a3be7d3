"""Gemini through the official ``google-genai`` SDK, in its JSON structured-output mode: the
analysis schema goes as ``response_json_schema``, so the answer is the analysis itself.

The SDK's own retries are off: the worker retries with its backoff and counts the attempts.
``GEMINI_API_URL`` may be the SDK's base URL or the original's ``.../v1beta/models`` form.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
import httpx
from google import genai
from google.genai import errors, types

from nexus.application.ports.analysis import AnalyzerAnswer, AnalyzerFailed
from nexus.domain.analysis.transcript import Turn

_API_PATH = re.compile(r"/v1(?:beta|alpha)?(?:/models)?/?$")
_RETRY_DELAY = re.compile(r"^(\d+(?:\.\d+)?)s$")


def sdk_base_url(api_url: str) -> str:
    """``https://host/v1beta/models`` (the original's setting) or ``https://host/`` -> ``https://host/``."""
    return _API_PATH.sub("", api_url.rstrip("/")) + "/"


class GeminiAnalyzer:
    name = "gemini"

    def __init__(self, *, api_key: str, model: str, api_url: str, timeout_s: float) -> None:
        self.model = model
        self._timeout_s = timeout_s
        options = types.HttpOptions(
            base_url=sdk_base_url(api_url),
            timeout=round(timeout_s * 1000),
            retry_options=types.HttpRetryOptions(attempts=1),
        )
        self._client = genai.Client(api_key=api_key, http_options=options)

    async def analyze(self, turns: list[Turn], brief: str, *, schema: dict[str, Any]) -> AnalyzerAnswer:
        contents: list[types.ContentUnion] = [
            types.Content(role="model" if turn.role == "assistant" else "user", parts=[types.Part(text=turn.text)])
            for turn in turns
        ]
        contents.append(types.Content(role="user", parts=[types.Part(text="Analyse the conversation above.")]))
        config = types.GenerateContentConfig(
            system_instruction=brief,
            response_mime_type="application/json",
            response_json_schema=schema,
            temperature=0.1,
            max_output_tokens=8192,
        )
        try:
            async with asyncio.timeout(self._timeout_s + 5):  # the SDK's own timeout, with a margin
                response = await self._client.aio.models.generate_content(
                    model=self.model, contents=contents, config=config
                )
        except errors.APIError as exc:
            raise _refused(exc) from None
        except (TimeoutError, aiohttp.ClientError, httpx.HTTPError) as exc:
            raise AnalyzerFailed(f"Gemini did not answer: {type(exc).__name__}", retryable=True) from None
        text = response.text or ""
        usage = response.usage_metadata
        return AnalyzerAnswer(
            data=text,
            raw=text,
            model=response.model_version or self.model,
            input_tokens=usage.prompt_token_count if usage else None,
            output_tokens=usage.candidates_token_count if usage else None,
        )

    async def close(self) -> None:
        await self._client.aio.aclose()


def _refused(exc: errors.APIError) -> AnalyzerFailed:
    code = exc.code or 0
    retryable = code in (408, 429) or code >= 500
    message = f"Gemini answered {code} {exc.status or ''}".strip()
    if code in (401, 403):
        message += ": check GEMINI_API_KEY"
    elif code == 404:
        message += ": check GEMINI_MODEL_NAME"
    return AnalyzerFailed(message, retryable=retryable, retry_after_s=_retry_delay(exc.details))


def _retry_delay(details: Any) -> float | None:
    """Gemini's ``RetryInfo.retryDelay`` ("31s") from a 429's error details, when present."""
    error = details.get("error") if isinstance(details, dict) else None
    for detail in (error or {}).get("details") or []:
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and (match := _RETRY_DELAY.match(delay)):
            return float(match.group(1))
    return None
