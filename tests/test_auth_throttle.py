"""Sign-in throttling (issue 13 item 6): the throttle with a fake clock, the middleware on a small
Starlette app, and a real Gradio server with AROLWG_AUTH taking real HTTP sign-ins."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from ui.auth import LoginThrottle, LoginThrottleMiddleware, locked_message

PASSWORD = "correct horse"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def throttle(clock):
    return LoginThrottle(client_limit=5, user_limit=20, base=5, cap=300, clock=clock)


# ---------------------------------------------------------------- the throttle, fake clock


def test_five_failures_lock_the_client_out_exponentially_up_to_the_cap(throttle, clock):
    for _ in range(4):
        assert throttle.failure("10.0.0.1", "ann") == 0.0
        assert throttle.retry_after("10.0.0.1", "ann") == 0.0
    assert throttle.failure("10.0.0.1", "ann") == 5.0
    assert throttle.retry_after("10.0.0.1", "ann") == 5.0
    clock.advance(4.5)
    assert throttle.retry_after("10.0.0.1", "ann") == pytest.approx(0.5)
    clock.advance(0.5)
    assert throttle.retry_after("10.0.0.1", "ann") == 0.0
    lockouts = []
    for _ in range(8):
        lockouts.append(throttle.failure("10.0.0.1", "ann"))
        clock.advance(lockouts[-1])
    assert lockouts == [10, 20, 40, 80, 160, 300, 300, 300]


def test_changing_user_names_does_not_reset_the_client_limit(throttle):
    for name in ["ann", "bob", "carol", "dave"]:
        assert throttle.failure("10.0.0.1", name) == 0.0
    assert throttle.failure("10.0.0.1", "erin") == 5.0
    for name in ["ann", "zed", "", "x" * 500]:  # every name, even one never tried, is locked out here
        assert throttle.retry_after("10.0.0.1", name) == 5.0
    assert throttle.failures(client="10.0.0.1") == 5


def test_a_lockout_from_one_client_leaves_the_user_free_elsewhere(throttle):
    for _ in range(5):
        throttle.failure("10.0.0.1", "ann")
    assert throttle.retry_after("10.0.0.1", "ann") > 0
    assert throttle.retry_after("10.0.0.2", "ann") == 0.0
    throttle.success("10.0.0.2", "ann")
    assert throttle.failures(user="ann") == 0
    assert throttle.retry_after("10.0.0.1", "ann") > 0  # the guessing client stays locked out


def test_the_user_limit_counts_every_client_together(throttle, clock):
    for i in range(19):  # 19 failures spread over 10 clients: no client reaches 5
        assert throttle.failure(f"10.0.1.{i % 10}", "ann") == 0.0
    assert throttle.retry_after("10.9.9.9", "ann") == 0.0
    assert throttle.failure("10.0.1.5", "ann") == 5.0
    assert throttle.retry_after("10.9.9.9", "ann") == 5.0  # a fresh client is refused for ann ...
    assert throttle.retry_after("10.9.9.9", "bob") == 0.0  # ... but not for another name
    clock.advance(5)
    assert throttle.retry_after("10.9.9.9", "ann") == 0.0
    assert throttle.failure("10.9.9.9", "ann") == 10.0  # and it keeps doubling


def test_user_names_are_counted_as_gradio_checks_them(throttle):
    for _ in range(19):
        throttle.failure("10.0.0.1" if _ % 2 else "10.0.0.2", " ann ")
    throttle.failure("10.0.0.3", "ann")
    assert throttle.retry_after("10.0.0.4", "ann") == 5.0


def test_success_forgives_the_typos_for_that_name_only(throttle):
    for _ in range(2):
        throttle.failure("10.0.0.1", "ann")
    for _ in range(2):
        throttle.failure("10.0.0.1", "bob")
    throttle.success("10.0.0.1", "ann")  # two typos, then the right password
    assert throttle.failures(client="10.0.0.1") == 2 and throttle.failures(user="ann") == 0
    throttle.failure("10.0.0.1", "bob")
    throttle.failure("10.0.0.1", "bob")
    assert throttle.retry_after("10.0.0.1", "carol") == 0.0
    # A valid account cannot wipe the failures made guessing someone else's password.
    for _ in range(5):
        throttle.success("10.0.0.1", "ann")
    assert throttle.failure("10.0.0.1", "bob") == 5.0


def test_success_after_a_lockout_ends_clears_it(throttle, clock):
    for _ in range(5):
        throttle.failure("10.0.0.1", "ann")
    clock.advance(5)
    throttle.success("10.0.0.1", "ann")
    assert throttle.failures(client="10.0.0.1") == 0
    assert throttle.failure("10.0.0.1", "ann") == 0.0


def test_counts_are_forgotten_after_a_quiet_while(throttle, clock):
    for _ in range(5):
        throttle.failure("10.0.0.1", "ann")
    clock.advance(899)
    assert throttle.failures(client="10.0.0.1") == 5
    clock.advance(1)
    assert throttle.failures(client="10.0.0.1") == 0
    assert throttle.failure("10.0.0.1", "ann") == 0.0


def test_a_long_lockout_is_not_forgotten_before_it_ends(clock):
    t = LoginThrottle(client_limit=1, user_limit=50, base=100, cap=2000, forget_after=10, clock=clock)
    for _ in range(5):
        t.failure("10.0.0.1", "ann")
    assert t.retry_after("10.0.0.1", "ann") == 1600
    clock.advance(1599)
    assert t.retry_after("10.0.0.1", "ann") == 1


def test_memory_is_bounded(clock):
    t = LoginThrottle(max_entries=50, clock=clock)
    for i in range(1000):
        clock.advance(0.01)
        t.failure(f"10.{i // 250}.{i % 250}.1", f"user{i}")
    assert len(t._counts) <= 50
    t.failure("10.0.0.1", "ann")
    assert t.failures(client="10.0.0.1") == 1  # the newest is kept


def test_parallel_failures_are_all_counted(clock):
    t = LoginThrottle(client_limit=1000, user_limit=1000, clock=clock)
    threads = [threading.Thread(target=lambda: [t.failure("10.0.0.1", "ann") for _ in range(100)]) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert t.failures(client="10.0.0.1") == 800 and t.failures(user="ann") == 800


def test_settings_and_message():
    from rag.settings import get_settings

    t = LoginThrottle.from_settings(get_settings())
    assert (t.client_limit, t.user_limit, t.base, t.cap) == (5, 20, 5.0, 300.0)
    assert locked_message(4.2) == "Too many failed sign-ins. Try again in 5 seconds."
    assert locked_message(0.3) == "Too many failed sign-ins. Try again in 1 second."
    with pytest.raises(ValueError):
        LoginThrottle(client_limit=0)


def test_settings_from_the_environment(monkeypatch):
    from rag.settings import get_settings

    monkeypatch.setenv("AROLWG_LOGIN_CLIENT_FAILURES", "3")
    monkeypatch.setenv("AROLWG_LOGIN_LOCKOUT_MAX_S", "60")
    t = LoginThrottle.from_settings(get_settings())
    assert (t.client_limit, t.cap) == (3, 60.0)


def test_launch_installs_the_throttle_only_with_a_password():
    from rag.settings import get_settings
    from ui.app import launch_kwargs

    from ui.auth import UploadedFilesOnlyMiddleware

    # Always: events may only name uploaded files. With a password: the sign-in throttle too.
    assert [m.cls for m in launch_kwargs(get_settings())["app_kwargs"]["middleware"]] == [UploadedFilesOnlyMiddleware]
    options = launch_kwargs(get_settings(auth="ann:pw", login_client_failures=3))
    files, mw = options["app_kwargs"]["middleware"]
    assert files.cls is UploadedFilesOnlyMiddleware
    assert mw.cls is LoginThrottleMiddleware and mw.kwargs["throttle"].client_limit == 3
    assert "After 3 failed attempts" in options["auth_message"]


# ---------------------------------------------------------------- the middleware, a small app


def small_app(throttle):
    """A stand-in for Gradio's /login: 200 for ann's password, 400 otherwise, like Gradio's."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    async def login(request: Request):
        form = await request.form()
        if form.get("username", "").strip() == "ann" and form.get("password") == PASSWORD:
            return JSONResponse({"success": True})
        return JSONResponse({"detail": "Incorrect credentials."}, status_code=400)

    async def other(request: Request):
        return PlainTextResponse("data")

    return Starlette(
        routes=[Route("/login", login, methods=["POST"]), Route("/login/", login, methods=["POST"]), Route("/data", other, methods=["GET", "POST"])],
        middleware=[Middleware(LoginThrottleMiddleware, throttle=throttle)],
    )


def test_middleware_refuses_with_429_after_five_failures(throttle, clock, caplog):
    from starlette.testclient import TestClient

    app = small_app(throttle)
    a = TestClient(app, client=("10.0.0.1", 5000))
    b = TestClient(app, client=("10.0.0.2", 5000))
    caplog.set_level(logging.INFO, logger="ui.auth")
    for name in ["ann", "bob", "ann", "carol", "ann"]:
        assert a.post("/login", data={"username": name, "password": "guess-123"}).status_code == 400
    r = a.post("/login", data={"username": "ann", "password": PASSWORD})
    assert r.status_code == 429
    assert r.headers["retry-after"] == "5" and r.headers["content-type"].startswith("text/plain")
    assert r.text == "Too many failed sign-ins. Try again in 5 seconds."
    # Multipart forms (what the browser's sign-in page sends) and the trailing-slash route count too.
    r = a.post("/login/", files={"username": (None, "dave"), "password": (None, "guess-123")})
    assert r.status_code == 429
    assert a.get("/data").text == "data" and a.post("/data", data={"username": "x"}).text == "data"

    assert b.post("/login", data={"username": "ann", "password": PASSWORD}).status_code == 200
    clock.advance(5)
    assert a.post("/login", data={"username": "ann", "password": PASSWORD}).status_code == 200

    failed = [r for r in caplog.records if r.getMessage().startswith("Failed sign-in")]
    assert len(failed) == 5 and all(r.levelno == logging.WARNING for r in failed)
    assert "user 'bob' from 10.0.0.1" in failed[1].getMessage()
    assert "locked out for 5 s" in failed[-1].getMessage()
    assert any("Sign-in refused for user 'ann' from 10.0.0.1" in r.getMessage() for r in caplog.records)
    assert any("Sign-in refused for user 'dave' from 10.0.0.1" in r.getMessage() for r in caplog.records)
    assert "guess-123" not in caplog.text and PASSWORD not in caplog.text


def test_middleware_ignores_what_is_not_a_password_check(throttle):
    from starlette.testclient import TestClient

    c = TestClient(small_app(throttle), client=("10.0.0.1", 5000))
    for _ in range(10):
        assert c.post("/data", data={"username": "ann", "password": "x"}).status_code == 200
        assert c.get("/login").status_code == 405
    assert throttle.failures(client="10.0.0.1") == 0
    r = c.post("/login", content=b"username=ann&password=" + b"x" * 20_000, headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413 and throttle.failures(client="10.0.0.1") == 0


def test_middleware_checks_attempts_one_at_a_time(clock):
    """Parallel guesses cannot get past the count: the 6th and later are refused."""
    import asyncio

    import httpx

    throttle = LoginThrottle(client_limit=5, user_limit=100, base=60, cap=60, clock=clock)
    app = small_app(throttle)

    async def burst():
        transport = httpx.ASGITransport(app=app, client=("10.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await asyncio.gather(*(c.post("/login", data={"username": f"u{i}", "password": "p"}) for i in range(30)))

    codes = sorted(r.status_code for r in asyncio.run(burst()))
    assert codes == [400] * 5 + [429] * 25


# ---------------------------------------------------------------- a real Gradio server


def post_login(url: str, user: str, password: str, source: str = "127.0.0.1"):
    """A real sign-in over HTTP, from the loopback address ``source`` (a different client)."""
    import httpx

    with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=30) as c:
        return c.post(url + "login", data={"username": user, "password": password})


ANONYMOUS_ROUTES = [
    ("GET", "config"),
    ("GET", "gradio_api/info"),
    ("GET", "gradio_api/openapi.json"),
    ("POST", "gradio_api/queue/join"),
    ("GET", "gradio_api/queue/data?session_hash=x"),
    ("POST", "gradio_api/call/ask"),
    ("POST", "gradio_api/run/ask"),
    ("POST", "gradio_api/api/ask"),
    ("POST", "gradio_api/upload"),
    ("GET", "gradio_api/file=/etc/hostname"),
    ("GET", "gradio_api/upload_progress?upload_id=x"),
]


def assert_anonymous_refused(url: str, cookies=None) -> None:
    import httpx

    with httpx.Client(cookies=cookies, timeout=30) as c:
        for method, route in ANONYMOUS_ROUTES:
            r = c.request(method, url + route, json={"data": ["q"], "fn_index": 0, "session_hash": "x"} if method == "POST" else None)
            assert r.status_code == 401, (method, route, r.status_code)


@pytest.mark.slow
def test_live_gradio_login_is_throttled(built_index, embeddings, caplog):
    from test_ui_live import start_server

    caplog.set_level(logging.INFO, logger="ui.auth")
    demo, url = start_server(
        built_index, embeddings, auth=f"ann:{PASSWORD}", login_lockout_s=1.0, login_lockout_max_s=4.0, login_user_failures=8
    )
    try:
        assert_anonymous_refused(url)
        # Client A (127.0.0.1) guesses under five names: 400 each, then 429 for anything, the right password too.
        for name in ["ann", "root", "admin", "ann", "bob"]:
            r = post_login(url, name, "hunter2")
            assert r.status_code == 400, r.text
        r = post_login(url, "ann", PASSWORD)
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        assert r.text == "Too many failed sign-ins. Try again in 1 second."
        assert_anonymous_refused(url)

        # Client B (127.0.0.2) signs in as ann at once, and the cookie opens the app.
        r = post_login(url, "ann", PASSWORD, source="127.0.0.2")
        assert r.status_code == 200 and r.json() == {"success": True}
        import httpx

        assert httpx.get(url + "config", cookies=r.cookies).status_code == 200

        # Client A, after its lockout: the right password works.
        time.sleep(1.1)
        r = post_login(url, "ann", PASSWORD)
        assert r.status_code == 200
        assert httpx.get(url + "gradio_api/info", cookies=r.cookies).status_code == 200

        # The user limit (8 here): four failures each from two more clients lock ann out everywhere ...
        for source in ["127.0.0.3", "127.0.0.4"]:
            for _ in range(4):
                assert post_login(url, "ann", "hunter2", source=source).status_code == 400
        r = post_login(url, "ann", PASSWORD, source="127.0.0.5")
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert post_login(url, "bob", "hunter2", source="127.0.0.5").status_code == 400  # other names are not
        time.sleep(1.1)
        assert post_login(url, "ann", PASSWORD, source="127.0.0.5").status_code == 200  # ... until it ends
        assert_anonymous_refused(url)
    finally:
        demo.close()
    failed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Failed sign-in")]
    assert len(failed) == 14
    assert "user 'root' from 127.0.0.1" in failed[1] and "from 127.0.0.3" in failed[5]
    assert "hunter2" not in caplog.text and PASSWORD not in caplog.text
