"""Real notification receivers on loopback: a Slack-compatible `chat.postMessage` (aiohttp), a
plain webhook endpoint (aiohttp), and an SMTP server (aiosmtpd).

Each records what it accepted. The HTTP ones can be told to answer with other statuses
first (`fail_next`: e.g. `[500]` answers 500 once, then accepts) or to hang (`hang = True`:
requests are held until the receiver stops or `hang` is cleared), as a broken or slow
service would.
"""

from __future__ import annotations

import asyncio
import email
import email.message
import email.policy
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller

from tests.support.ports import free_port

TOKEN = "xoxb-0000-test-token-do-not-log"


@dataclass
class Answer:
    status: int
    body: dict[str, Any] = field(default_factory=lambda: {"ok": False, "error": "internal_error"})
    headers: dict[str, str] = field(default_factory=dict)


class _HttpReceiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[tuple[float, dict[str, str], bytes]] = []  # (monotonic time, headers, body)
        self.fail_next: deque[Answer] = deque()
        self._released = asyncio.Event()
        self._released.set()
        self._runner: web.AppRunner | None = None

    @property
    def hang(self) -> bool:
        return not self._released.is_set()

    @hang.setter
    def hang(self, value: bool) -> None:
        if value:
            self._released.clear()
        else:
            self._released.set()

    async def start(self) -> None:
        app = web.Application()
        self._routes(app)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def _routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def _received(self, request: web.Request) -> tuple[bytes, web.Response | None]:
        """Record the request; the scripted failure to answer with, if any (after hanging, if told to)."""
        body = await request.read()
        self.requests.append((time.monotonic(), dict(request.headers), body))
        await self._released.wait()
        if self.fail_next:
            answer = self.fail_next.popleft()
            return body, web.json_response(answer.body, status=answer.status, headers=answer.headers)
        return body, None


class SlackReceiver(_HttpReceiver):
    """`POST /api/chat.postMessage` as Slack answers it; `messages` are the payloads accepted."""

    def __init__(self, token: str = TOKEN) -> None:
        super().__init__()
        self.token = token
        self.messages: list[dict[str, Any]] = []

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def _routes(self, app: web.Application) -> None:
        app.router.add_post("/api/chat.postMessage", self._post)

    async def _post(self, request: web.Request) -> web.Response:
        body, scripted = await self._received(request)
        if scripted is not None:
            return scripted
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        payload = json.loads(body)
        if not payload.get("channel"):
            return web.json_response({"ok": False, "error": "channel_not_found"})
        self.messages.append(payload)
        return web.json_response({"ok": True, "channel": payload["channel"], "ts": f"{time.time():.6f}"})

    def texts(self, channel: str | None = None) -> list[str]:
        return [m["text"] for m in self.messages if channel is None or m["channel"] == channel]


class WebhookReceiver(_HttpReceiver):
    """Any method on `/hook`; `bodies` are the JSON bodies accepted, `headers` their headers."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[Any] = []
        self.headers: list[dict[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/hook", self._hook)

    async def _hook(self, request: web.Request) -> web.Response:
        body, scripted = await self._received(request)
        if scripted is not None:
            return scripted
        self.bodies.append(json.loads(body) if body else None)
        self.headers.append(dict(request.headers))
        return web.json_response({"ok": True})

    def triggers(self, app: str | None = None) -> list[str]:
        return [b["trigger"] for b in self.bodies if app is None or b["app"] == app]


class _Collector:
    def __init__(self, mails: list[email.message.EmailMessage]) -> None:
        self.mails = mails

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        self.mails.append(parsed)
        return "250 Message accepted for delivery"


class SmtpReceiver:
    """A real SMTP server (aiosmtpd, in its own thread) on loopback; `mails` are the messages accepted."""

    def __init__(self) -> None:
        self.port = free_port()
        self.mails: list[email.message.EmailMessage] = []
        self._controller = Controller(_Collector(self.mails), hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [mail for mail in self.mails if address in str(mail["To"])]
