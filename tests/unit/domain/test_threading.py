import pytest

from nexus.domain.conversation.threading import is_threaded, why_not_threaded

SESSION = "11111111-2222-4333-8444-555555555555"


@pytest.mark.parametrize(
    ("request_type", "session_id", "user_agent", "any_client", "original"),
    [
        ("inference", SESSION, "claude-cli/2.1.330 (external, cli)", True, True),
        ("query_evaluation", None, "Anthropic/Python 2.12.0", True, False),
        ("query_evaluation", None, None, True, False),
        ("query_evaluation", SESSION, "Anthropic/Python 2.12.0", False, False),
        ("query_evaluation", None, "claude-cli/2.1.330 (external, cli)", False, False),
        ("query_evaluation", None, "Claude-Code/1.0", False, False),
        ("quota", None, None, False, False),
        (None, None, None, False, False),
    ],
)
def test_which_requests_are_threaded(
    request_type: str | None, session_id: str | None, user_agent: str | None, any_client: bool, original: bool
) -> None:
    assert is_threaded(request_type, session_id=session_id, user_agent=user_agent, rule="any_client") is any_client
    assert is_threaded(request_type, session_id=session_id, user_agent=user_agent, rule="original") is original


@pytest.mark.parametrize(
    ("request_type", "path", "session_id", "rule", "said"),
    [
        (None, "/v1/models", None, "any_client", "only /v1/messages requests are threaded"),
        (None, "/v1/messages/count_tokens", None, "any_client", "only /v1/messages requests are threaded"),
        ("quota", "/v1/messages", SESSION, "any_client", "quota probe"),
        ("query_evaluation", "/v1/messages", SESSION, "any_client", "a side call of Claude Code"),
        ("query_evaluation", "/v1/messages", None, "original", "THREAD_RULE=original"),
        (None, "/v1/messages", None, "any_client", "no Messages request body"),
        ("query_evaluation", "/v1/messages", None, "any_client", "under another THREAD_RULE"),
        ("inference", "/v1/messages", SESSION, "original", "under another THREAD_RULE"),
    ],
)
def test_the_request_page_says_why_a_request_has_no_conversation(
    request_type: str | None, path: str, session_id: str | None, rule: str, said: str
) -> None:
    reason = why_not_threaded(
        request_type, path=path, session_id=session_id, user_agent=None, rule=rule, link_pending=False
    )  # type: ignore[arg-type]
    assert said in reason
    assert "waiting" not in reason, "none of these is queued"


def test_only_a_queued_request_is_said_to_wait_for_the_linker() -> None:
    reason = why_not_threaded(
        "inference", path="/v1/messages", session_id=SESSION, user_agent=None, rule="any_client", link_pending=True
    )
    assert reason.startswith("not linked yet: waiting for the linker")
