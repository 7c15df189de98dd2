"""Sign-in throttling for a password-protected web chat (``AROLWG_AUTH``).

Gradio checks passwords at ``POST /login`` and, left alone, answers as fast as it is asked. A
:class:`LoginThrottle` counts failed sign-ins per client address and per user name and locks a
key out for a while once it has too many; :class:`LoginThrottleMiddleware` puts it in front of
``/login`` (an ASGI middleware given to Gradio's FastAPI app), answers a locked-out attempt with
HTTP 429, a plain sentence and ``Retry-After``, and logs every failure (user name and client,
never the password).

The policy (the defaults; each number is a setting):

- **Per client** (IP address): the 5th failure from one address, whatever user names it tried,
  locks that address out for 5 s; each further failure doubles it (10 s, 20 s, ...), up to 300 s.
  While locked out, no password is checked at all, so a guess costs its wait.
- **Per user name**: 20 failures for one name, from all addresses together, lock that name out
  (from every address, the same 5 s doubling to 300 s). The limit is higher than the per-client
  one, so one address fumbling (or attacking) a name locks out that address, not the name: the
  right password from another address still works until the name itself has 20 failures.
- **A successful sign-in** clears the user name's count, and forgives the address the failures
  it made *for that name* (a typo before the right password), not those for other names: a valid
  account cannot be used to reset an address that is guessing someone else's password.
- **Forgetting**: a count is forgotten 15 minutes after its last failure once any lockout has
  ended. At most 10,000 addresses and names are remembered (the stalest are dropped first).

Attempts are checked one at a time, so parallel requests cannot slip guesses past the count.
The client address is the connection's, as uvicorn reports it: behind a reverse proxy on the
same machine (127.0.0.1) uvicorn takes it from ``X-Forwarded-For``, which the proxy must set.

>>> t = LoginThrottle(client_limit=2, user_limit=3, base=10, cap=60, clock=lambda: 0.0)
>>> t.failure("10.0.0.1", "ann"), t.failure("10.0.0.1", "bob")
(0.0, 10.0)
>>> t.retry_after("10.0.0.1", "carol"), t.retry_after("10.0.0.2", "ann")
(10.0, 0.0)
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

LOGIN_PATHS = ("/login", "/login/")
MAX_BODY = 16 * 1024  # a sign-in form is a few hundred bytes
MAX_NAME = 64  # characters of a user name kept in counts and logs


@dataclass
class _Count:
    failures: int = 0
    locked_until: float = 0.0
    last: float = 0.0


class LoginThrottle:
    """Counts failed sign-ins per client and per user name; thread-safe, with an injectable clock.

    ``retry_after(client, user)`` is the seconds to wait before an attempt may be checked (0: go
    ahead); ``failure`` and ``success`` record an attempt's outcome. Lockouts last ``base`` seconds
    at the limit's failure and double with each further one, up to ``cap``.
    """

    def __init__(
        self,
        client_limit: int = 5,
        user_limit: int = 20,
        base: float = 5.0,
        cap: float = 300.0,
        *,
        forget_after: float = 900.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if client_limit < 1 or user_limit < 1 or base <= 0 or cap < base:
            raise ValueError("limits must be at least 1, and 0 < base <= cap")
        self.client_limit, self.user_limit = client_limit, user_limit
        self.base, self.cap = float(base), float(cap)
        self.forget_after, self.max_entries = float(forget_after), max_entries
        self.clock = clock
        self._lock = threading.Lock()
        self._counts: dict[tuple, _Count] = {}

    @classmethod
    def from_settings(cls, settings, **kw) -> LoginThrottle:
        """The throttle the ``login_*`` settings describe."""
        return cls(
            client_limit=settings.login_client_failures,
            user_limit=settings.login_user_failures,
            base=settings.login_lockout_s,
            cap=max(settings.login_lockout_s, settings.login_lockout_max_s),
            **kw,
        )

    # ---------------------------------------------------------------- queries

    def retry_after(self, client: str, user: str) -> float:
        """Seconds until an attempt by ``user`` from ``client`` may be checked; 0.0: now."""
        now = self.clock()
        with self._lock:
            waits = [self._get(key, now).locked_until - now for key in self._keys(client, user)[:2]]
        return max(0.0, *waits)

    def failures(self, client: str | None = None, user: str | None = None) -> int:
        """The current failure count of a client or a user name (for logs and tests)."""
        key = ("client", client) if client is not None else ("user", _name(user or ""))
        with self._lock:
            return self._get(key, self.clock()).failures

    # ---------------------------------------------------------------- outcomes

    def failure(self, client: str, user: str) -> float:
        """Record a failed sign-in; returns the lockout in seconds now facing ``client``/``user`` (0.0: none)."""
        now = self.clock()
        with self._lock:
            client_key, user_key, pair_key = self._keys(client, user)
            for key, limit in ((client_key, self.client_limit), (user_key, self.user_limit), (pair_key, None)):
                count = self._get(key, now, create=True)
                count.failures += 1
                count.last = now
                if limit is not None and count.failures >= limit:
                    lockout = min(self.cap, self.base * 2.0 ** min(count.failures - limit, 30))
                    count.locked_until = max(count.locked_until, now + lockout)
            wait = max(0.0, *(self._get(k, now).locked_until - now for k in (client_key, user_key)))
            self._prune(now)
        return wait

    def success(self, client: str, user: str) -> None:
        """Record a successful sign-in: the name's count is cleared, and the client is forgiven its
        failures for this name (not those for other names)."""
        now = self.clock()
        with self._lock:
            client_key, user_key, pair_key = self._keys(client, user)
            self._counts.pop(user_key, None)
            pair = self._counts.pop(pair_key, None)
            count = self._get(client_key, now)
            if pair and count.failures:
                count.failures = max(0, count.failures - pair.failures)
                if count.failures < self.client_limit:
                    count.locked_until = 0.0
                if not count.failures:
                    self._counts.pop(client_key, None)

    # ---------------------------------------------------------------- internals

    @staticmethod
    def _keys(client: str, user: str) -> tuple[tuple, tuple, tuple]:
        name = _name(user)
        return ("client", client), ("user", name), ("pair", client, name)

    def _get(self, key: tuple, now: float, create: bool = False) -> _Count:
        count = self._counts.get(key)
        if count is not None and self._stale(count, now):
            del self._counts[key]
            count = None
        if count is None:
            count = _Count()
            if create:
                self._counts[key] = count
        return count

    def _stale(self, count: _Count, now: float) -> bool:
        return now >= count.locked_until and now - count.last >= self.forget_after

    def _prune(self, now: float) -> None:
        if len(self._counts) <= self.max_entries:
            return
        for key in [k for k, c in self._counts.items() if self._stale(c, now)]:
            del self._counts[key]
        excess = len(self._counts) - self.max_entries * 9 // 10
        if excess > 0:  # still too many: drop the counts touched longest ago (to 90%, so this is rare)
            for key in sorted(self._counts, key=lambda k: self._counts[k].last)[:excess]:
                del self._counts[key]


def _name(user: str) -> str:
    """A user name as counted and logged: stripped (as Gradio does) and cut to MAX_NAME characters."""
    return (user or "").strip()[:MAX_NAME]


def locked_message(seconds: float) -> str:
    """The plain sentence a locked-out sign-in gets."""
    n = max(1, math.ceil(seconds))
    return f"Too many failed sign-ins. Try again in {n} second{'s' if n != 1 else ''}."


class LoginThrottleMiddleware:
    """ASGI middleware that throttles ``POST /login`` with a :class:`LoginThrottle`.

    Every other request passes through untouched. A sign-in attempt is read whole (at most
    16 KB), refused with 429 if its client or user name is locked out, otherwise handed to the
    app; the app's answer (200: signed in; 400/401: wrong name or password) is recorded.

    >>> from starlette.middleware import Middleware
    >>> mw = Middleware(LoginThrottleMiddleware, throttle=LoginThrottle())  # FastAPI(middleware=[mw])
    """

    def __init__(self, app, throttle: LoginThrottle) -> None:
        self.app = app
        self.throttle = throttle
        self._one_at_a_time: asyncio.Lock | None = None
        self._loop = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or _route(scope) not in LOGIN_PATHS:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            await _plain(send, 413, "The sign-in form is too large.")
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        user = await _user_name(scope, body)
        if self._loop is not asyncio.get_running_loop():  # one lock per event loop (tests run several)
            self._loop, self._one_at_a_time = asyncio.get_running_loop(), asyncio.Lock()
        async with self._one_at_a_time:  # no parallel guesses past the count
            wait = self.throttle.retry_after(client, user)
            if wait > 0:
                log.warning("Sign-in refused for user %r from %s: locked out for %.0f s more", _name(user), client, wait)
                await _plain(send, 429, locked_message(wait), {"retry-after": str(max(1, math.ceil(wait)))})
                return
            status: list[int] = []

            async def send_status(message) -> None:
                if message["type"] == "http.response.start":
                    status.append(message["status"])
                await send(message)

            await self.app(scope, _replay(body), send_status)
            if status and status[0] == 200:
                self.throttle.success(client, user)
                log.info("Signed in: user %r from %s", _name(user), client)
            elif status and status[0] in (400, 401, 403):
                lockout = self.throttle.failure(client, user)
                log.warning(
                    "Failed sign-in for user %r from %s (%d failures from this client, %d for this user name)%s",
                    _name(user),
                    client,
                    self.throttle.failures(client=client),
                    self.throttle.failures(user=user),
                    f": locked out for {lockout:.0f} s" if lockout else "",
                )


def _route(scope) -> str:
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def _read_body(receive, limit: int | None = None) -> bytes | None:
    """The whole request body, or None when it is over ``limit`` (default MAX_BODY)."""
    limit = MAX_BODY if limit is None else limit
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes):
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


async def _user_name(scope, body: bytes) -> str:
    """The ``username`` field of a sign-in form (URL-encoded or multipart); "" when there is none."""
    from starlette.requests import Request

    try:
        form = await Request(scope, _replay(body)).form()
        try:
            value = form.get("username")
            return value if isinstance(value, str) else ""
        finally:
            await form.close()
    except Exception as err:  # noqa: BLE001 - a malformed form is the app's to refuse
        log.debug("unreadable sign-in form: %s", err)
        return ""


async def _plain(send, status: int, text: str, headers: dict[str, str] | None = None) -> None:
    raw = [(b"content-type", b"text/plain; charset=utf-8")]
    raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    payload = text.encode("utf-8")
    raw.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


# --------------------------------------------------------------- files named by an API caller

#: Gradio routes that run an event with the caller's data (the queue, and the direct API calls).
_EVENT_ROUTES = ("/queue/join", "/run/", "/call/", "/api/")
MAX_EVENT_BODY = 1_000_000
NOT_UPLOADED = "A file named in this request was not uploaded through this page: upload the file itself."


def _named_paths(value) -> list[str]:
    """Every ``path`` of a Gradio FileData in a request's data."""
    if isinstance(value, dict):
        found = [value["path"]] if isinstance(value.get("path"), str) else []
        return found + [p for v in value.values() if isinstance(v, (dict, list)) for p in _named_paths(v)]
    if isinstance(value, list):
        return [p for v in value for p in _named_paths(v)]
    return []


class UploadedFilesOnlyMiddleware:
    """ASGI middleware: an event may only name files in Gradio's upload folder.

    Gradio lets an API caller pass ``{"path": "/any/server/file"}`` as a file input, and on this
    version copies the file into its cache without checking where it came from: the upload
    event would then index a server file and quote it back. Requests naming a local path outside
    the upload folder are refused with 403 and one sentence; URLs and uploads pass.
    """

    def __init__(self, app, upload_dir) -> None:
        self.app = app
        self.upload_dir = upload_dir

    async def __call__(self, scope, receive, send) -> None:
        route = _route(scope) if scope["type"] == "http" else ""
        if scope["type"] != "http" or scope["method"] != "POST" or not any(r in route for r in _EVENT_ROUTES):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive, MAX_EVENT_BODY)
        if body is None:
            await _plain(send, 413, "The request is too large.")
            return
        try:
            data = json.loads(body or b"null")
        except ValueError:
            data = None  # not JSON: Gradio refuses it itself
        root = Path(self.upload_dir).resolve()
        for p in _named_paths(data):
            if "://" in p:
                continue
            real = Path(p).resolve()
            if root != real and root not in real.parents:
                log.warning("Refused an event naming %s, outside the upload folder, from %s", real, (scope.get("client") or ("?",))[0])
                await _plain(send, 403, NOT_UPLOADED)
                return
        await self.app(scope, _replay(body), send)
