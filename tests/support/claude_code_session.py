"""A Claude-Code-like client: the official SDK sending a growing conversation, as Claude Code does.

Each turn resends the whole history (the previous request's messages, the assistant's answer,
the next user message), with Claude Code's system prompt and wire identity headers; sub-agents
start from the prompt of an ``Agent`` tool call and carry an agent id.
"""

from __future__ import annotations

import uuid
from typing import Any

import anthropic

from tests.support.fake_anthropic import SCENARIO_HEADER

MODEL = "claude-sonnet-5"
MAIN_SYSTEM = [
    {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.330.abc; cc_entrypoint=cli;"},
    {
        "type": "text",
        "text": "You are Claude Code, Anthropic's official CLI for Claude.",
        "cache_control": {"type": "ephemeral"},
    },
    {"type": "text", "text": "You are an interactive CLI tool that helps users with software engineering tasks."},
]
AGENT_SYSTEM = [
    {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.330.abc; cc_entrypoint=cli;"},
    {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
    {"type": "text", "text": "You are an agent for Claude Code, Anthropic's official CLI for Claude."},
]
REMINDER = "<system-reminder>\nToday's date is 2026-11-23.\n</system-reminder>\n"


class Agent:
    """One line of a conversation (the main one or a sub-agent's), turn by turn."""

    def __init__(
        self,
        client: anthropic.Anthropic,
        *,
        session_id: str,
        agent_id: str | None = None,
        system: list[dict[str, Any]] | None = None,
    ) -> None:
        self.client = client
        self.session_id = session_id
        self.agent_id = agent_id
        self.system = system or (AGENT_SYSTEM if agent_id else MAIN_SYSTEM)
        self.messages: list[dict[str, Any]] = []
        self.request_ids: list[str] = []
        self.last: anthropic.types.Message | None = None

    def say(self, text: str, *, scenario: str = "text") -> anthropic.types.Message:
        """Send a user message (with a reminder block, as Claude Code does) and keep the answer."""
        self.messages.append(
            {"role": "user", "content": [{"type": "text", "text": REMINDER}, {"type": "text", "text": text}]}
        )
        return self._send(scenario)

    def answer_tools(self, results: dict[str, str], *, scenario: str = "text") -> anthropic.types.Message:
        """Send tool results for the last answer's tool calls."""
        blocks = [{"type": "tool_result", "tool_use_id": tool_id, "content": text} for tool_id, text in results.items()]
        self.messages.append({"role": "user", "content": blocks})
        return self._send(scenario)

    def tool_calls(self) -> list[Any]:
        assert self.last is not None
        return [block for block in self.last.content if block.type == "tool_use"]

    def _send(self, scenario: str) -> anthropic.types.Message:
        headers = {"x-claude-code-session-id": self.session_id, SCENARIO_HEADER: scenario}
        if self.agent_id:
            headers["x-claude-code-agent-id"] = self.agent_id
        with self.client.messages.stream(
            model=MODEL,
            max_tokens=1024,
            system=self.system,  # type: ignore[arg-type]
            messages=self.messages,  # type: ignore[arg-type]
            extra_headers=headers,
        ) as stream:
            message = stream.get_final_message()
            self.request_ids.append(stream.response.headers["x-request-id"])
        self.last = message
        self.messages.append(
            {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in message.content]}
        )
        return message


def start_subagent(parent: Agent, call: Any, *, agent_id: str | None = None) -> Agent:
    """A sub-agent launched by ``call`` (an ``Agent`` tool_use): its own messages, the same session."""
    agent = Agent(parent.client, session_id=parent.session_id, agent_id=agent_id or f"a{uuid.uuid4().hex[:16]}")
    agent.messages.append({"role": "user", "content": call.input["prompt"]})
    agent._send("text")
    return agent
