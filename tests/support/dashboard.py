"""Using the dashboard over HTTP as a browser would: forms, CSRF tokens, cookies."""

from __future__ import annotations

import re

import httpx

_TOKEN = re.compile(r'name="_csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    match = _TOKEN.search(html)
    assert match, "the page carries a CSRF token in its forms"
    return match.group(1)


def sign_in(base_url: str, key: str, **options: object) -> httpx.Client:
    """A client holding a dashboard session (fails the test when the key is refused)."""
    client = httpx.Client(base_url=base_url, **options)  # type: ignore[arg-type]
    form = client.get("/dashboard/login")
    response = client.post(
        "/dashboard/login", data={"key": key, "next": "/dashboard/", "_csrf_token": csrf_token(form.text)}
    )
    assert response.status_code == 303, response.text
    return client
