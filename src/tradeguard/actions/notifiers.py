"""Notifiers: send one stored alert to one destination, or raise `DeliveryFailed` saying why not.

Generic webhook
---------------
Each alert is POSTed as JSON::

    {"id": 41, "account_id": 12, "kind": "drawdown", "level": "critical", "symbol": null,
     "message": "...", "details": {...}, "created_at": "2026-11-25T12:00:00+00:00"}

with these headers:

- ``X-Tradeguard-Event: alert``
- ``X-Tradeguard-Delivery: <alert id>``: the same on every retry of an alert, so a receiver
  de-duplicates by it (delivery is at least once).
- ``X-Tradeguard-Timestamp: <unix seconds>``
- ``X-Tradeguard-Signature: sha256=<hex>``, where hex is the lowercase HMAC-SHA256 with key =
  the webhook secret's UTF-8 bytes over ``<timestamp>.<raw body bytes>``. Sent only when a
  secret is configured.

A receiver verifies by recomputing the HMAC over the timestamp header, a dot and the exact body
it received, comparing in constant time, and refusing timestamps too far from its own clock
(replays)::

    expected = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    hmac.compare_digest(f"sha256={expected}", signature_header)

Any 2xx answer is a delivery. 4xx answers other than 408 and 429 are permanent failures (the
request itself is wrong, retrying cannot help); everything else is retried, after the
``Retry-After`` seconds when the receiver sends them.

Telegram
--------
``sendMessage`` of the Bot API at a configurable base URL. The bot token is part of that URL, so
it is kept out of every error message and out of httpx's request log lines.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx
import orjson

from tradeguard.settings import Settings
from tradeguard.store.models import Alert

log = logging.getLogger(__name__)

RETRYABLE_CLIENT_ERRORS = frozenset({408, 429})
TELEGRAM_TEXT_LIMIT = 4096
LEVEL_MARKS = {"critical": "🔴", "warning": "🟠", "info": "🔵"}


class DeliveryFailed(Exception):
    """A send that did not reach its destination; `permanent` ones are not retried."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after


@dataclass(frozen=True)
class AlertMessage:
    id: int
    account_id: int
    kind: str
    level: str
    symbol: str | None
    message: str
    details: dict[str, Any]
    created_at: datetime

    @classmethod
    def from_row(cls, alert: Alert) -> AlertMessage:
        return cls(
            id=alert.id,
            account_id=alert.account_id,
            kind=alert.kind,
            level=alert.level,
            symbol=alert.symbol,
            message=alert.message,
            details=orjson.loads(alert.details),
            created_at=alert.created_at,
        )


class Notifier(Protocol):
    name: str

    async def send(self, alert: AlertMessage) -> None:
        """Deliver the alert or raise `DeliveryFailed`."""


class WebhookNotifier:
    name = "webhook"

    def __init__(self, http: httpx.AsyncClient, url: str, secret: str):
        self._http = http
        self._url = url
        self._secret = secret.encode()

    async def send(self, alert: AlertMessage) -> None:
        body = orjson.dumps(
            {
                "id": alert.id,
                "account_id": alert.account_id,
                "kind": alert.kind,
                "level": alert.level,
                "symbol": alert.symbol,
                "message": alert.message,
                "details": alert.details,
                "created_at": alert.created_at,
            }
        )
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Tradeguard-Event": "alert",
            "X-Tradeguard-Delivery": str(alert.id),
            "X-Tradeguard-Timestamp": timestamp,
        }
        if self._secret:
            headers["X-Tradeguard-Signature"] = "sha256=" + sign(self._secret, timestamp, body)
        response = await _post(self._http, self._url, content=body, headers=headers, name=self.name)
        if not response.is_success:
            raise _status_failure(
                f"webhook answered {response.status_code}: {_excerpt(response.text)}",
                response.status_code,
                _retry_after_header(response),
            )


class TelegramNotifier:
    name = "telegram"

    def __init__(self, http: httpx.AsyncClient, base_url: str, bot_token: str, chat_id: str):
        self._http = http
        self._url = f"{base_url.rstrip('/')}/bot{bot_token}/sendMessage"
        self._token = bot_token
        self._chat_id = chat_id
        _hide_from_http_logs(bot_token)

    async def send(self, alert: AlertMessage) -> None:
        payload = {"chat_id": self._chat_id, "text": telegram_text(alert), "disable_web_page_preview": True}
        try:
            response = await _post(
                self._http,
                self._url,
                content=orjson.dumps(payload),
                headers={"Content-Type": "application/json"},
                name=self.name,
            )
        except DeliveryFailed as failure:
            raise DeliveryFailed(self._redact(failure.message)) from None
        answer = _json_or_empty(response)
        if response.is_success and answer.get("ok", True):
            return
        description = answer.get("description") or _excerpt(response.text)
        retry_after = (answer.get("parameters") or {}).get("retry_after")
        raise _status_failure(
            self._redact(f"telegram answered {response.status_code}: {description}"),
            response.status_code,
            float(retry_after) if isinstance(retry_after, int | float) else None,
        )

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "<bot token>")


def telegram_text(alert: AlertMessage) -> str:
    mark = LEVEL_MARKS.get(alert.level)
    headline = f"{alert.level.upper()} {alert.kind} · account {alert.account_id}"
    if mark:
        headline = f"{mark} {headline}"
    if alert.symbol:
        headline += f" · {alert.symbol}"
    return f"{headline}\n{alert.message}"[:TELEGRAM_TEXT_LIMIT]


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def notifiers_from_settings(settings: Settings, http: httpx.AsyncClient) -> dict[str, Notifier]:
    """The notifiers settings.notifier_names() enables, sharing one HTTP client the caller closes."""
    notifiers: dict[str, Notifier] = {}
    for name in settings.notifier_names():
        if name == "webhook":
            if not settings.webhook_secret:
                log.warning("webhook_secret is empty: alert webhooks are sent unsigned")
            notifiers[name] = WebhookNotifier(http, settings.webhook_url, settings.webhook_secret)
        elif name == "telegram":
            notifiers[name] = TelegramNotifier(
                http, settings.telegram_base_url, settings.telegram_bot_token, settings.telegram_chat_id
            )
    return notifiers


async def _post(
    http: httpx.AsyncClient, url: str, *, content: bytes, headers: dict[str, str], name: str
) -> httpx.Response:
    # The exception texts name the error, never the URL, which may carry a credential.
    try:
        return await http.post(url, content=content, headers=headers)
    except httpx.TimeoutException as error:
        raise DeliveryFailed(f"{name} timed out ({type(error).__name__})") from None
    except httpx.HTTPError as error:
        raise DeliveryFailed(f"{name} unreachable ({type(error).__name__}: {error})") from None


def _status_failure(message: str, status: int, retry_after: float | None) -> DeliveryFailed:
    permanent = 400 <= status < 500 and status not in RETRYABLE_CLIENT_ERRORS
    return DeliveryFailed(message, permanent=permanent, retry_after=retry_after)


def _retry_after_header(response: httpx.Response) -> float | None:
    # Only the delta-seconds form; an HTTP date falls back to the usual back-off.
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


def _json_or_empty(response: httpx.Response) -> dict:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _excerpt(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


class _RedactingFilter(logging.Filter):
    """httpx logs every request's URL at INFO, and a Telegram URL holds the bot token."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = message
        for secret in self.secrets:
            redacted = redacted.replace(secret, "<redacted>")
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


_http_log_redactor = _RedactingFilter()


def _hide_from_http_logs(secret: str) -> None:
    httpx_log = logging.getLogger("httpx")
    if _http_log_redactor not in httpx_log.filters:
        httpx_log.addFilter(_http_log_redactor)
    _http_log_redactor.secrets.add(secret)
