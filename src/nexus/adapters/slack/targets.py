"""Where a domain's Slack messages go: its credential file's ``slack`` block, else the global
settings; ``enabled: false`` in the block silences the domain."""

from __future__ import annotations

import logging
from typing import Any

from nexus.application.ports.credential_store import CredentialStore
from nexus.domain.host import parse_host
from nexus.domain.slack_message import SlackTarget, webhook_allowed

log = logging.getLogger(__name__)


class CredentialSlackTargets:
    def __init__(self, *, store: CredentialStore, default: SlackTarget | None) -> None:
        self._store = store
        self._default = default

    async def target_for(self, domain: str) -> SlackTarget | None:
        try:
            stored = await self._store.find(parse_host(domain).credential_names)
        except Exception:  # noqa: BLE001 -- an unusable file has no slack block to read; the default stands
            stored = None
        block = stored.credential.slack if stored is not None else None
        if not block:
            return self._default
        return _override(block, self._default, domain)


def _override(block: dict[str, Any], default: SlackTarget | None, domain: str) -> SlackTarget | None:
    if block.get("enabled") is False:
        return None
    url = block.get("webhook_url")
    if not isinstance(url, str) or not url:
        if default is None:
            return None
        url = default.webhook_url
    elif not webhook_allowed(url):
        log.warning("The slack webhook_url for %s is not https: its messages go nowhere", domain)
        return None
    base = default or SlackTarget(webhook_url=url)
    return SlackTarget(
        webhook_url=url,
        channel=_text(block.get("channel")) or base.channel,
        username=_text(block.get("username")) or base.username,
        icon_emoji=_text(block.get("icon_emoji")) or base.icon_emoji,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None
