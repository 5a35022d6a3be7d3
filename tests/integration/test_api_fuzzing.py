"""The management API fuzzed from its own OpenAPI document with schemathesis.

One proxy over a real database, with traffic of every kind recorded first (a conversation with
a tool call, a stream, a quota probe, a 429, odd values PostgreSQL cannot store as they are, a
body holding a lone surrogate, prompt files valid and not, an analysis), so the operations have
rows to find. Then every operation of ``/docs/openapi.json``:

- authenticated, with inputs valid and invalid for the schema: no 5xx, every status code,
  content type, header and body as the schema documents it, invalid inputs refused with a 4xx;
- without the key, or with a wrong one, whatever the inputs: 401 in Anthropic's error format.

The budget is ``tests.support.fuzzing``'s: fixed inputs, about a minute on two cores, more
with ``NEXUS_FUZZ_EXAMPLES``.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import engine
from schemathesis.engine import events

from tests.integration.conftest import fresh_database, sdk
from tests.support.database import wait_for_rows
from tests.support.fake_anthropic import DEFAULT_API_KEY, SCENARIO_HEADER, FakeAnthropic
from tests.support.fake_gemini import API_KEY as GEMINI_KEY
from tests.support.fake_gemini import FakeGemini
from tests.support.fake_github import FakeGitHub
from tests.support.fuzzing import budget, fuzz_settings, randomised
from tests.support.proxy_server import RunningProxy

pytestmark = pytest.mark.integration

KEY = "dashboard-key-for-api-fuzzing"
TEAM = "team.fuzz.example"
SEED = 20_261_123
# Examples per operation in the fuzzing phase; the examples and coverage phases add their own.
EXAMPLES = 25
UNAUTHENTICATED_EXAMPLES = 5
PROMPT = """\
description: Review a change
arguments:
  - name: language
    required: true
template: |
  Review this {{ language }} change.
"""


@dataclass
class Seeded:
    """The running proxy and the ids its recorded traffic gave, for path parameters."""

    proxy: RunningProxy
    request_ids: list[str]
    conversation_ids: list[str]
    branch_ids: list[str]
    prompt_names: list[str]


def _config(examples: int, **extra: Any) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {
                "max-examples": budget(examples),
                "deterministic": not randomised(),
                "database": "none",
                "mode": "all",  # valid inputs, and invalid ones that must be refused with a 4xx
            },
            "phases": {"stateful": {"enabled": False}},
            "request-timeout": 30,
            "operations": [
                {
                    # Rules across parameters no JSON Schema can say: at most 1,000 buckets
                    # (window_hours * 60 / interval_minutes), since before until. A 400 is the
                    # answer to a schema-valid request that breaks one, and it names the rule.
                    "include-operation-id": ["GetUsageSeries", "GetStats"],
                    "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "404"]}},
                },
                {
                    # The exact bytes the client sent, which may not be JSON a strict reader takes
                    # (a lone surrogate escape, as Claude Code sends): nothing to validate them against.
                    "include-operation-id": "GetRequestBody",
                    "checks": {"response_schema_conformance": {"enabled": False}},
                },
            ],
            **extra,
        }
    )


@pytest.fixture(scope="module")
def seeded(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """One proxy for the module's tests (starting it and recording traffic is the slow part)."""
    root = tmp_path_factory.mktemp("api-fuzzing")
    credentials = root / "credentials"
    credentials.mkdir()
    limits = {"five_hour_output_tokens": 100_000, "daily_usd": 5, "seven_day_cost_usd": 50}
    (credentials / f"{TEAM}.credentials.json").write_text(
        json.dumps({"type": "api_key", "accountId": "acc_fuzz", "api_key": DEFAULT_API_KEY, "limits": limits})
    )
    prompts = root / "prompts"
    prompts.mkdir()
    (prompts / "review.yaml").write_text(PROMPT)
    (prompts / "broken.yaml").write_text("template: [unclosed\n")
    with (
        fresh_database(postgres_url) as database_url,
        FakeAnthropic() as fake,
        FakeGemini() as gemini,
        FakeGitHub() as github,
    ):
        github.commit({"prompts/review.yaml": PROMPT})
        settings = {
            "CLAUDE_API_BASE_URL": fake.url,
            "CREDENTIALS_DIR": str(credentials),
            "DATABASE_URL": database_url,
            "NEXUS_DATA_DIR": str(root / "data"),
            "DASHBOARD_API_KEY": KEY,
            "MCP_ENABLED": "true",
            "MCP_PROMPTS_DIR": str(prompts),
            "MCP_GITHUB_OWNER": "team",
            "MCP_GITHUB_REPO": "prompts",
            "MCP_GITHUB_API_URL": github.url,
            "AI_WORKER_ENABLED": "true",
            "GEMINI_API_KEY": GEMINI_KEY,
            "GEMINI_API_URL": f"{gemini.url}/v1beta/models",
            "AI_WORKER_POLL_INTERVAL_MS": "100",
        }
        with RunningProxy(**settings) as proxy:
            yield _seed(proxy, database_url)


def _seed(proxy: RunningProxy, database_url: str) -> Seeded:
    team = sdk(proxy.url, default_headers={"host": TEAM})
    system = [
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
        {"type": "text", "text": "You are an interactive CLI tool that helps users with software engineering tasks."},
    ]
    turns: list[Any] = [{"role": "user", "content": "Read the config, please"}]
    first = team.messages.create(
        model="claude-sonnet-5", max_tokens=64, system=system, messages=turns,  # type: ignore[arg-type]
        extra_headers={SCENARIO_HEADER: "tool_use"},
    )  # fmt: skip
    turns += [{"role": "assistant", "content": [block.model_dump() for block in first.content]}]
    tool_id = next(block.id for block in first.content if block.type == "tool_use")
    turns += [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": "x = 1"}]}]
    team.messages.create(model="claude-sonnet-5", max_tokens=64, system=system, messages=turns)  # type: ignore[arg-type]
    with team.messages.stream(
        model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "Name this conversation"}]
    ) as stream:
        stream.until_done()
    headers = {"host": TEAM, "x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01"}
    body = {"model": "claude-haiku-4-5", "max_tokens": 1, "messages": [{"role": "user", "content": "quota"}]}
    odd = {**body, "stream": True, "messages": [{"role": "user", "content": "odd values, please"}]}
    surrogate = b'{"model":"claude-haiku-4-5","max_tokens":1,"messages":[{"role":"user","content":"cut \\ud83d"}]}'
    with httpx.Client(base_url=proxy.url, headers=headers) as client:
        client.post("/v1/messages", json=body)
        client.post("/v1/messages", json=body, headers={SCENARIO_HEADER: "error:429"})
        client.post("/v1/messages", json=odd, headers={SCENARIO_HEADER: "odd_values"})
        client.post("/v1/messages", json={**body, "stream": False}, headers={SCENARIO_HEADER: "odd_values"})
        client.post("/v1/messages", content=surrogate, headers={"content-type": "application/json"})
        client.get("/v1/models")
    request_ids = [str(row["id"]) for row in wait_for_rows(database_url, 9)]
    # Linking runs after the insert: wait for the tool conversation's two turns to be threaded,
    # or the operations taking a conversation id would only ever see 404s.
    linked = wait_for_rows(database_url, 2, where="conversation_id IS NOT NULL AND NOT link_pending")
    conversation_ids = sorted({str(row["conversation_id"]) for row in linked})
    assert conversation_ids, "the seeded conversation was never linked"
    queued = httpx.post(
        f"{proxy.url}/api/analyses", json={"conversationId": conversation_ids[0]}, headers={"x-api-key": KEY}
    )
    assert queued.status_code in (200, 201), queued.text
    return Seeded(
        proxy=proxy,
        request_ids=request_ids,
        conversation_ids=conversation_ids,
        branch_ids=["main", "subtask_1"],
        prompt_names=["review", "broken"],
    )


def _known_ids(seeded: Seeded, generated: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """The generated path parameters, or (half the time) ids that exist, so the operations'
    found paths are fuzzed too, not only their 400s and 404s."""
    known = {
        "request_id": seeded.request_ids,
        "conversation_id": seeded.conversation_ids,
        "branch_id": seeded.branch_ids,
        "name": seeded.prompt_names,
    }
    if not generated or not any(name in known for name in generated):
        return st.just(generated)
    existing = st.fixed_dictionaries(
        {name: st.sampled_from(known[name]) if name in known else st.just(value) for name, value in generated.items()}
    )
    return st.one_of(st.just(generated), existing)


def _schema(seeded: Seeded, examples: int, **config: Any) -> Any:
    schema = schemathesis.openapi.from_url(f"{seeded.proxy.url}/docs/openapi.json", config=_config(examples, **config))

    @schema.hook("flatmap_path_parameters")
    def known_ids(_context: Any, path_parameters: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
        return _known_ids(seeded, path_parameters)

    @schema.hook("flatmap_body")
    def known_conversation(_context: Any, body: Any) -> st.SearchStrategy[Any]:
        # An analysis is requested by conversation id: half the time one that exists.
        if not (isinstance(body, dict) and "conversationId" in body):
            return st.just(body)
        existing = st.sampled_from(seeded.conversation_ids).map(lambda known: {**body, "conversationId": known})
        return st.one_of(st.just(body), existing)

    return schema


def _operations(schema: Any) -> list[Any]:
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, "the OpenAPI document lists no operation"
    return operations


# The engine behind ``st run``, in process: ``schemathesis.pytest.from_fixture`` (the way to fuzz a
# server a fixture starts) reads ``Node._nodeid``, which pytest 9.2 no longer has.
def _fuzz(schema: Any) -> tuple[dict[str, Counter[int]], list[str]]:
    """Run every phase on every operation: the statuses each answered, and each distinct problem."""
    statuses: dict[str, Counter[int]] = defaultdict(Counter)
    problems: dict[tuple[str, str], str] = {}
    for event in engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished) and event.label:
            method = event.label.split(" ", 1)[0]
            statuses[event.label].update(  # the operation's own method (not the probes of others)
                interaction.response.status_code
                for interaction in event.recorder.interactions.values()
                if interaction.response is not None and interaction.request.method == method
            )
            for checks in event.recorder.checks.values():
                for check in checks:
                    if (info := check.failure_info) is not None:
                        failure = info.failure
                        problems.setdefault(
                            (event.label, failure.title),
                            f"{event.label}: {failure.title}\n{failure.message[:800]}\n{info.code_sample}",
                        )
        elif isinstance(event, events.NonFatalError):
            problems.setdefault((event.label, "error"), f"{event.label}: {event.info}")
        elif isinstance(event, events.FatalError):
            problems.setdefault(("", "fatal"), f"fatal: {event.exception!r}")
    return statuses, list(problems.values())


def test_every_operation_answers_as_its_schema_says(seeded: Seeded) -> None:
    schema = _schema(seeded, EXAMPLES, auth={"openapi": {"apiKey": {"api_key": KEY}}})
    statuses, problems = _fuzz(schema)
    assert not problems, f"{len(problems)} problems:\n\n" + "\n\n".join(problems)
    # Every operation was fuzzed, and reached past its validation to an answer with data: the
    # seeded ids are found (a test that only ever saw 400s would prove little).
    never_succeeded = {
        operation.label
        for operation in _operations(schema)
        if not any(200 <= status < 300 for status in statuses.get(operation.label, {}))
    }
    assert not never_succeeded, (never_succeeded, dict(statuses))
    assert sum(sum(counts.values()) for counts in statuses.values()) >= 20 * len(statuses)


WRONG_CREDENTIALS: list[dict[str, str]] = [
    {},
    {"x-api-key": "not-the-key"},
    {"authorization": "Bearer not-the-key"},
    {"authorization": f"Basic {KEY}"},  # the key, but not as a bearer token
    {"x-api-key": ""},
]


def test_every_operation_refuses_a_missing_or_wrong_key(seeded: Seeded) -> None:
    schema = _schema(seeded, UNAUTHENTICATED_EXAMPLES)
    checked = []
    for operation in _operations(schema):
        if operation.path.startswith("/health"):
            continue  # open by design: the orchestrator's probes carry no key

        @fuzz_settings(UNAUTHENTICATED_EXAMPLES)
        @given(case=operation.as_strategy())
        def refused(case: schemathesis.Case) -> None:
            for name in list(case.headers or {}):
                if name.lower() in ("x-api-key", "authorization"):
                    del case.headers[name]  # type: ignore[union-attr]
            for credentials in WRONG_CREDENTIALS:
                response = case.call(headers=credentials)
                assert response.status_code == 401, (
                    case.operation.label,
                    credentials,
                    response.status_code,
                    response.text,
                )
                error = response.json()
                assert error["type"] == "error"
                assert error["error"]["type"] == "authentication_error"
                assert error["error"]["message"]

        refused()
        checked.append(operation.label)
    assert len(checked) >= 20, checked
