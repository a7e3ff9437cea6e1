"""Loopback receivers for the alert tests: a real SMTP server (aiosmtpd) and a real HTTP server,
both on 127.0.0.1, recording what arrived."""

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from aiosmtpd.controller import Controller


class Inbox:
    """What the SMTP server received: (envelope sender, recipients, raw message)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def free_port() -> int:
    """A loopback port nothing listens on (a server that is down)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


@dataclass
class Receiver:
    """An HTTP server's address and the POSTs it received: path, headers and JSON body."""

    base: str
    requests: list[tuple[str, dict[str, str], dict]] = field(default_factory=list)
    posted: list[dict] = field(default_factory=list)

    def bodies(self, path: str) -> list[dict]:
        return [body for p, _, body in self.requests if p == path]


@pytest.fixture
def http_receiver() -> Iterator[Receiver]:
    receiver = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            receiver.requests.append((self.path, dict(self.headers), body))
            receiver.posted.append(body)
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    receiver.base = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def webhook_server(http_receiver: Receiver) -> tuple[str, list[dict]]:
    """The receiver's URL ``/hook`` and the JSON bodies it received (any path)."""
    return f"{http_receiver.base}/hook", http_receiver.posted


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch, http_receiver) -> None:
    monkeypatch.setenv("TEST_SLACK_URL", f"{http_receiver.base}/slack")
    monkeypatch.setenv("TEST_PD_KEY", "pd-routing-key")
    monkeypatch.setenv("TEST_SMS_TOKEN", "sms-token")
