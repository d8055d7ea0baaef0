"""HTTP basic authentication for the server, from a credentials file, as ksqlDB's JAAS property file has it:
one `user: password[, role...]` (or `user:password`) per line, `#` comments. A request without valid
credentials gets ksqlDB's 401 (error_code 40100) with a Basic challenge; passwords are compared in constant
time and never logged or echoed."""

from __future__ import annotations

import base64
import binascii
import hmac
from pathlib import Path

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from ksqlpy.errors import KsqlError
from ksqlpy.server.errors import UNAUTHORIZED, ServerError

REALM = "KsqlServer-Props"


def load_credentials(path: str | Path) -> dict[str, str]:
    """Users and their passwords from a credentials file (see the module docstring)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise KsqlError(f"cannot read the credentials file {path}: {error.strerror or error}") from None
    users: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        user, separator, rest = entry.partition(":")
        password = rest.split(",", 1)[0].strip()
        if not separator or not user.strip() or not password:
            raise KsqlError(f"{path}:{number}: expected 'user: password[, roles]'")
        users[user.strip()] = password
    if not users:
        raise KsqlError(f"the credentials file {path} names no user")
    return users


class BasicAuthentication:
    """ASGI middleware letting through only requests with a known user's credentials."""

    def __init__(self, app: ASGIApp, users: dict[str, str]) -> None:
        self.app = app
        self.users = users

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._authenticated(scope):
            await self.app(scope, receive, send)
            return
        body = orjson.dumps(ServerError(UNAUTHORIZED, "Unauthorized").payload())
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/vnd.ksql.v1+json"),
            (b"www-authenticate", f'Basic realm="{REALM}"'.encode()),
            (b"content-length", str(len(body)).encode()),
        ]})
        await send({"type": "http.response.body", "body": body})

    def _authenticated(self, scope: Scope) -> bool:
        header = dict(scope.get("headers", ())).get(b"authorization", b"")
        scheme, _, encoded = header.partition(b" ")
        if scheme.lower() != b"basic":
            return False
        try:
            user, separator, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        known = self.users.get(user)
        return bool(separator) and known is not None and hmac.compare_digest(known.encode(), password.encode())
