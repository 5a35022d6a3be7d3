import pytest

from nexus.entrypoints.settings import Settings, SettingsError, load_settings


def test_defaults_match_the_original() -> None:
    settings = load_settings({})
    assert (settings.port, settings.host, settings.claude_api_timeout) == (3000, "0.0.0.0", 600_000)
    assert settings.claude_api_base_url == "https://api.anthropic.com"
    assert settings.credentials_dir == "credentials"
    assert settings.max_request_size == 32 * 1024 * 1024
    assert settings.claude_oauth_token_url == "https://platform.claude.com/v1/oauth/token"
    assert not settings.trust_proxy_headers


def test_environment_values_are_converted_and_flags_win() -> None:
    environ = {"PORT": "4000", "TRUST_PROXY_HEADERS": "yes", "CLAUDE_API_TIMEOUT": "1500", "LOG_LEVEL": "debug"}
    settings = load_settings(environ, port=5000, host=None)
    assert settings.port == 5000
    assert settings.trust_proxy_headers
    assert settings.upstream_timeout_s == 1.5
    assert settings.log_level == "DEBUG"


def test_an_empty_variable_counts_as_unset() -> None:
    assert load_settings({"CLAUDE_API_KEY": "", "PORT": " "}).claude_api_key is None


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"PORT": "abc"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"MAX_REQUEST_SIZE": "0"}, "MAX_REQUEST_SIZE"),
        ({"CLAUDE_API_BASE_URL": "api.anthropic.com"}, "CLAUDE_API_BASE_URL"),
        ({"TELEMETRY_ENDPOINT": "telemetry.example.com/in"}, "TELEMETRY_ENDPOINT"),
        ({"TELEMETRY_ENDPOINT": "https:///in"}, "TELEMETRY_ENDPOINT"),
        ({"TELEMETRY_ENDPOINT": "http://collector:port/in"}, "TELEMETRY_ENDPOINT"),
        ({"TRUST_PROXY_HEADERS": "maybe"}, "TRUST_PROXY_HEADERS"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
    ],
)
def test_bad_values_name_their_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError, match=f"^{variable}: "):
        load_settings(environ)


def test_the_api_key_never_shows_in_a_repr() -> None:
    assert "sk-ant-api03-secret" not in repr(Settings(claude_api_key="sk-ant-api03-secret"))


def test_webhooks_and_endpoint_passwords_never_show_in_a_repr() -> None:
    shown = repr(
        Settings(
            slack_webhook_url="https://hooks.slack.com/services/T0/B0/webhook-secret",
            telemetry_endpoint="https://user:endpoint-secret@telemetry.example.com/in",
        )
    )
    assert "webhook-secret" not in shown
    assert "endpoint-secret" not in shown
    assert "telemetry.example.com" in shown


def test_the_originals_names_for_keys_and_switches() -> None:
    assert load_settings({"INTERNAL_API_KEY": "k1"}).management_api_key == "k1"
    assert load_settings({"INTERNAL_API_KEY": "k1", "DASHBOARD_API_KEY": "k2"}).management_api_key == "k2"
    assert "k1" not in repr(load_settings({"INTERNAL_API_KEY": "k1"}))
    assert not load_settings({"ENABLE_DASHBOARD": "false"}).serves_dashboard
    assert load_settings({}).client_auth_on
    assert not load_settings({"ENABLE_CLIENT_AUTH": "false"}).client_auth_on
    assert load_settings({"CORS_ALLOWED_ORIGINS": " https://a.example/, http://localhost:5173 "}).cors_origins == (
        "https://a.example",
        "http://localhost:5173",
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"NEXUS_ROLE": "dashboard", "ENABLE_DASHBOARD": "false"}, "ENABLE_DASHBOARD: is false"),
        ({"CORS_ALLOWED_ORIGINS": "https://a.example/path"}, "CORS_ALLOWED_ORIGINS: 'https://a.example/path' is not"),
        ({"CORS_ALLOWED_ORIGINS": "a.example"}, "CORS_ALLOWED_ORIGINS: 'a.example' is not an origin"),
        ({"SLOW_QUERY_THRESHOLD_MS": "-1"}, "SLOW_QUERY_THRESHOLD_MS: must not be negative"),
    ],
)
def test_contradictory_or_malformed_drop_in_settings_are_named(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(environ)
