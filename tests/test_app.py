"""Application: routing through the real connection code, settings, lifespan."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

import trioweb
from trioweb import Application, RequestHandler, url
from trioweb.testing import TestClient

# -- handlers used by several tests ----------------------------------------------------


class Echo(RequestHandler):
    """Writes what it was given: the rule's kwargs and the path arguments."""

    def initialize(self, **kwargs: Any) -> None:
        self.init_kwargs = kwargs

    async def get(self, *args: str, **kwargs: str) -> None:
        self.write(
            {
                "handler": type(self).__name__,
                "init": self.init_kwargs,
                "args": list(args),
                "kwargs": kwargs,
            }
        )


class Other(Echo):
    pass


class Third(Echo):
    pass


# -- construction and settings ---------------------------------------------------------


async def test_settings_are_kept_and_reach_the_handler() -> None:
    seen: dict[str, Any] = {}

    class Settings(RequestHandler):
        async def get(self) -> None:
            seen.update(self.settings)
            self.write("ok")

    app = Application([(r"/", Settings)], cookie_secret="s3cret", answer=42)
    assert app.settings == {"cookie_secret": "s3cret", "answer": 42}
    async with TestClient(app) as client:
        r = await client.get("/")
    assert r.status == 200
    assert seen == {"cookie_secret": "s3cret", "answer": 42}


async def test_rules_as_tuples_of_two_three_and_four_and_url_specs() -> None:
    app = Application(
        [
            (r"/two", Echo),
            (r"/three", Echo, {"db": "three"}),
            (r"/four", Other, {"db": "four"}, "four"),
            url(r"/spec", Third, {"db": "spec"}, name="spec"),
        ]
    )
    async with TestClient(app) as client:
        r = await client.get("/two")
        assert r.json() == {"handler": "Echo", "init": {}, "args": [], "kwargs": {}}
        r = await client.get("/three")
        assert r.json()["init"] == {"db": "three"}
        r = await client.get("/four")
        assert (r.json()["handler"], r.json()["init"]) == ("Other", {"db": "four"})
        r = await client.get("/spec")
        assert (r.json()["handler"], r.json()["init"]) == ("Third", {"db": "spec"})
    assert app.reverse_url("four") == "/four"
    assert app.reverse_url("spec") == "/spec"


async def test_positional_groups_become_positional_arguments() -> None:
    app = Application([(r"/p/([^/]+)/(\d+)", Echo)])
    async with TestClient(app) as client:
        r = await client.get("/p/ann/42")
    assert r.json()["args"] == ["ann", "42"]
    assert r.json()["kwargs"] == {}


async def test_named_groups_become_keyword_arguments() -> None:
    app = Application([(r"/k/(?P<name>[^/]+)/(?P<num>\d+)", Echo)])
    async with TestClient(app) as client:
        r = await client.get("/k/bob/7")
    assert r.json()["args"] == []
    assert r.json()["kwargs"] == {"name": "bob", "num": "7"}


async def test_path_arguments_are_percent_decoded_and_plus_is_kept() -> None:
    app = Application(
        [(r"/p/([^/]+)", Echo), (r"/k/(?P<word>[^/]+)", Echo)],
    )
    async with TestClient(app) as client:
        r = await client.get("/p/a%20b+c%2Fd%C3%A9")
        assert r.json()["args"] == ["a b+c/dé"]
        r = await client.get("/k/x%2By+z")
        assert r.json()["kwargs"] == {"word": "x+y+z"}


async def test_an_optional_group_that_did_not_match_is_none() -> None:
    app = Application([(r"/opt(?:/(\d+))?", Echo)])
    async with TestClient(app) as client:
        r = await client.get("/opt")
        assert r.json()["args"] == [None]
        r = await client.get("/opt/5")
        assert r.json()["args"] == ["5"]


async def test_invalid_utf8_in_a_path_argument_is_400() -> None:
    app = Application([(r"/p/([^/]+)", Echo), (r"/k/(?P<w>[^/]+)", Echo)])
    async with TestClient(app) as client:
        r = await client.get("/p/%FF%FE")
        assert r.status == 400
        r = await client.get("/k/%C3")
        assert r.status == 400
        # The connection survives a handler-level 400.
        r = await client.get("/p/fine")
        assert r.status == 200
    assert len(client.server_connections) == 1


async def test_first_matching_rule_wins() -> None:
    app = Application(
        [
            (r"/a/special", Other),
            (r"/a/(.*)", Echo),
            (r"/a/special", Third),  # never reached
        ]
    )
    async with TestClient(app) as client:
        assert (await client.get("/a/special")).json()["handler"] == "Other"
        assert (await client.get("/a/else")).json()["handler"] == "Echo"


async def test_patterns_match_the_whole_path() -> None:
    app = Application([(r"/a", Echo)])
    async with TestClient(app) as client:
        assert (await client.get("/a")).status == 200
        assert (await client.get("/ab")).status == 404
        assert (await client.get("/x/a")).status == 404


async def test_the_query_string_plays_no_part_in_routing() -> None:
    app = Application([(r"/a", Echo)])
    async with TestClient(app) as client:
        r = await client.get("/a", params={"x": "/b"})
    assert r.status == 200


async def test_no_match_is_the_default_404_page() -> None:
    app = Application([(r"/", Echo)])
    async with TestClient(app) as client:
        r = await client.get("/missing")
        assert r.status == 404
        assert r.reason == "Not Found"
        assert r.headers["Content-Type"] == "text/html; charset=UTF-8"
        assert "404: Not Found" in r.text
        # A POST to nowhere is 404 too, not 405.
        r = await client.post("/missing", body=b"x")
        assert r.status == 404


async def test_an_app_without_handlers_answers_404() -> None:
    async with TestClient(Application()) as client:
        assert (await client.get("/")).status == 404


async def test_default_handler_class_and_args() -> None:
    class Fallback(RequestHandler):
        def initialize(self, message: str) -> None:
            self.message = message

        async def get(self) -> None:
            self.set_status(418)
            self.write(self.message + " " + self.request.path)

    app = Application(
        [(r"/", Echo)],
        default_handler_class=Fallback,
        default_handler_args={"message": "nothing at"},
    )
    async with TestClient(app) as client:
        r = await client.get("/nowhere/at/all")
        assert (r.status, r.text) == (418, "nothing at /nowhere/at/all")
        assert (await client.get("/")).json()["handler"] == "Echo"


async def test_default_handler_class_without_args() -> None:
    class Fallback(RequestHandler):
        async def get(self) -> None:
            self.write("fallback")

    app = Application([], default_handler_class=Fallback)
    async with TestClient(app) as client:
        assert (await client.get("/x")).text == "fallback"


async def test_reverse_url_with_arguments() -> None:
    app = Application(
        [
            url(r"/user/(\d+)/post/([^/]+)", Echo, name="post"),
            url(r"/tag/(?P<tag>[^/]+)", Echo, name="tag"),
        ]
    )
    assert app.reverse_url("post", 7, "hello world") == "/user/7/post/hello%20world"
    assert app.reverse_url("tag", "a/b") == "/tag/a/b"
    with pytest.raises(KeyError):
        app.reverse_url("nope")
    # The reversed URL routes back to the same handler with the same args.
    async with TestClient(app) as client:
        r = await client.get(app.reverse_url("post", 7, "hello world"))
    assert r.json()["args"] == ["7", "hello world"]


async def test_reverse_url_from_a_handler() -> None:
    class Linker(RequestHandler):
        async def get(self) -> None:
            self.write(self.application.reverse_url("item", 3))

    app = Application([(r"/", Linker), url(r"/item/(\d+)", Echo, name="item")])
    async with TestClient(app) as client:
        assert (await client.get("/")).text == "/item/3"


# -- virtual hosts ---------------------------------------------------------------------


async def test_add_handlers_routes_by_host_with_or_without_port() -> None:
    app = Application([(r"/", Echo)])
    app.add_handlers(r"www\.example\.com", [(r"/", Other)])
    async with TestClient(app) as client:
        r = await client.get("/", headers={"Host": "www.example.com"})
        assert r.json()["handler"] == "Other"
        r = await client.get("/", headers={"Host": "www.example.com:8080"})
        assert r.json()["handler"] == "Other"
        r = await client.get("/", headers={"Host": "WWW.Example.COM"})
        assert r.json()["handler"] == "Other"


async def test_add_handlers_routes_an_ipv6_host_with_a_port() -> None:
    app = Application([(r"/", Echo)])
    app.add_handlers(r"\[::1\]", [(r"/", Other)])
    async with TestClient(app) as client:
        r = await client.get("/", headers={"Host": "[::1]:8080"})
        assert r.json()["handler"] == "Other"
        r = await client.get("/", headers={"Host": "[::2]:8080"})
        assert r.json()["handler"] != "Other"
        r = await client.get("/", headers={"Host": "other.example.com"})
        assert r.json()["handler"] == "Echo"
        r = await client.get("/")  # the client's default "testserver"
        assert r.json()["handler"] == "Echo"


async def test_a_specific_host_comes_before_the_catch_all() -> None:
    app = Application([(r"/(.*)", Echo)])
    app.add_handlers(r"api\.example\.com", [(r"/v1", Other)])
    app.add_handlers(r".*\.example\.com", [(r"/v1", Third)])
    async with TestClient(app) as client:
        r = await client.get("/v1", headers={"Host": "api.example.com:443"})
        assert r.json()["handler"] == "Other"
        r = await client.get("/v1", headers={"Host": "www.example.com"})
        assert r.json()["handler"] == "Third"
        r = await client.get("/v1", headers={"Host": "example.org"})
        assert r.json()["handler"] == "Echo"
        # A path the host's rules do not have falls through to the catch-all.
        r = await client.get("/other", headers={"Host": "api.example.com"})
        assert r.json() == {
            "handler": "Echo",
            "init": {},
            "args": ["other"],
            "kwargs": {},
        }


async def test_host_rules_only_no_match_is_404() -> None:
    app = Application()
    app.add_handlers(r"only\.example\.com", [(r"/", Echo)])
    async with TestClient(app) as client:
        r = await client.get("/", headers={"Host": "only.example.com"})
        assert r.status == 200
        assert (await client.get("/")).status == 404


# -- debug / serve_traceback -----------------------------------------------------------


class Boom(RequestHandler):
    async def get(self) -> None:
        raise ZeroDivisionError("kaboom")


async def test_uncaught_exception_is_500_without_traceback_by_default(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with TestClient(Application([(r"/", Boom)])) as client:
        r = await client.get("/")
    assert r.status == 500
    assert "kaboom" not in r.text
    assert "500: Internal Server Error" in r.text
    assert "ZeroDivisionError" in caplog.text  # the traceback is logged


async def test_debug_turns_on_serve_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Application([(r"/", Boom)], debug=True)
    assert app.settings["serve_traceback"] is True
    async with TestClient(app) as client:
        r = await client.get("/")
    assert r.status == 500
    assert r.headers["Content-Type"].startswith("text/plain")
    assert "Traceback" in r.text
    assert "ZeroDivisionError: kaboom" in r.text


async def test_debug_does_not_override_an_explicit_serve_traceback() -> None:
    app = Application([(r"/", Boom)], debug=True, serve_traceback=False)
    async with TestClient(app) as client:
        r = await client.get("/")
    assert r.status == 500
    assert "kaboom" not in r.text


# -- lifespan --------------------------------------------------------------------------


class Ping(RequestHandler):
    async def get(self) -> None:
        self.write("pong")


async def test_startup_and_shutdown_hooks_run_in_order_around_the_client() -> None:
    events: list[str] = []

    def hook(name: str) -> Any:
        async def run() -> None:
            await trio.lowlevel.checkpoint()
            events.append(name)

        return run

    class Record(RequestHandler):
        async def get(self) -> None:
            events.append("request")

    app = Application(
        [(r"/", Record)],
        on_startup=[hook("start1"), hook("start2")],
        on_shutdown=[hook("stop1"), hook("stop2")],
    )
    async with TestClient(app) as client:
        assert events == ["start1", "start2"]
        await client.get("/")
    assert events == ["start1", "start2", "request", "stop1", "stop2"]


async def test_lifespan_wraps_the_hooks() -> None:
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Application) -> AsyncIterator[None]:
        events.append("lifespan enter")
        app.settings["db"] = "connected"
        yield
        events.append("lifespan exit")

    async def startup() -> None:
        events.append("startup")

    async def shutdown() -> None:
        events.append("shutdown")

    class Db(RequestHandler):
        async def get(self) -> None:
            self.write(self.settings["db"])

    app = Application(
        [(r"/", Db)],
        lifespan=lifespan,
        on_startup=[startup],
        on_shutdown=[shutdown],
    )
    async with TestClient(app) as client:
        assert events == ["lifespan enter", "startup"]
        assert (await client.get("/")).text == "connected"
    assert events == ["lifespan enter", "startup", "shutdown", "lifespan exit"]


async def test_the_app_can_run_again_after_it_stopped() -> None:
    starts: list[int] = []

    async def startup() -> None:
        starts.append(1)

    app = Application([(r"/", Ping)], on_startup=[startup])
    for _ in range(2):
        async with TestClient(app) as client:
            assert (await client.get("/")).text == "pong"
    assert starts == [1, 1]


async def test_running_twice_at_once_is_refused() -> None:
    app = Application([(r"/", Ping)])
    async with app.running():
        with pytest.raises(RuntimeError, match="already running"):
            async with app.running():
                pass  # pragma: no cover


async def test_nursery_outside_a_running_app_is_a_clear_error() -> None:
    app = Application([(r"/", Ping)])
    with pytest.raises(RuntimeError, match="only while the application runs"):
        app.nursery  # noqa: B018
    async with TestClient(app):
        assert isinstance(app.nursery, trio.Nursery)
    with pytest.raises(RuntimeError, match="only while the application runs"):
        app.nursery  # noqa: B018


async def test_background_work_outlives_the_request_and_is_cancelled_at_shutdown(
    autojump_clock: trio.abc.Clock,
) -> None:
    events: list[str] = []
    started = trio.Event()

    async def background(tag: str) -> None:
        started.set()
        try:
            while True:
                await trio.sleep(1)
                events.append(f"tick {tag}")
        except trio.Cancelled:
            events.append("background cancelled")
            raise

    class Spawn(RequestHandler):
        async def get(self) -> None:
            self.application.nursery.start_soon(background, "x")
            self.write("spawned")

    async def shutdown() -> None:
        events.append("shutdown hook")

    app = Application([(r"/", Spawn)], on_shutdown=[shutdown])
    async with TestClient(app) as client:
        r = await client.get("/")
        assert r.text == "spawned"
        await started.wait()
        # The request is over; the background task is still going.
        await trio.sleep(3.5)
        assert events == ["tick x"] * 3
    assert events == ["tick x"] * 3 + ["background cancelled", "shutdown hook"]


async def test_a_hanging_shutdown_hook_is_bounded_by_shutdown_timeout(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []

    async def quick() -> None:
        await trio.sleep(1)
        ran.append("quick")

    async def hang() -> None:
        await trio.sleep_forever()

    async def after() -> None:
        ran.append("after")  # pragma: no cover

    app = Application(
        [(r"/", Ping)], on_shutdown=[quick, hang, after], shutdown_timeout=3
    )
    async with TestClient(app) as client:
        await client.get("/")
        start = trio.current_time()
    assert trio.current_time() - start == pytest.approx(3)
    assert ran == ["quick"]
    assert "shutdown hooks did not finish within 3 s" in caplog.text
    assert "hang" in caplog.text  # which hook hung
    assert "not run: [<function" in caplog.text


async def test_shutdown_timeout_defaults_to_ten_seconds(
    autojump_clock: trio.abc.Clock,
) -> None:
    async def hang() -> None:
        await trio.sleep_forever()

    app = Application([(r"/", Ping)], on_shutdown=[hang])
    async with TestClient(app):
        start = trio.current_time()
    assert trio.current_time() - start == pytest.approx(10)


async def test_a_failing_shutdown_hook_is_logged_and_the_others_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ran: list[str] = []

    async def bad() -> None:
        raise ValueError("hook failed")

    async def good() -> None:
        ran.append("good")

    app = Application([(r"/", Ping)], on_shutdown=[bad, good])
    with caplog.at_level(logging.ERROR, logger="trioweb.error"):
        async with TestClient(app):
            pass
    assert ran == ["good"]
    assert "error in shutdown hook" in caplog.text
    assert "ValueError: hook failed" in caplog.text


async def test_shutdown_hooks_run_when_the_body_raises() -> None:
    ran: list[str] = []

    async def shutdown() -> None:
        ran.append("shutdown")

    app = Application([(r"/", Ping)], on_shutdown=[shutdown])
    with pytest.raises(KeyError):
        async with app.running():
            raise KeyError("server failed")
    assert ran == ["shutdown"]


async def test_running_gives_back_the_body_exception_not_a_group() -> None:
    # Regression: the app nursery wrapped whatever the body raised (a
    # server's OSError, a test's AssertionError) in an ExceptionGroup.
    app = Application([(r"/", Ping)])
    error = OSError("address in use")
    with pytest.raises(OSError) as info:
        async with app.running():
            raise error
    assert info.value is error
    # Ctrl-C must never surface as an exception group (contract 5).
    with pytest.raises(KeyboardInterrupt):
        async with app.running():
            raise KeyboardInterrupt


async def test_a_crashing_background_task_ends_the_app() -> None:
    async def crash() -> None:
        raise ValueError("background bug")

    app = Application([(r"/", Ping)])
    with pytest.RaisesGroup(ValueError, flatten_subgroups=True):
        async with app.running():
            app.nursery.start_soon(crash)
            await trio.sleep_forever()


async def test_an_exception_in_the_client_block_is_not_wrapped() -> None:
    with pytest.raises(AssertionError):
        async with TestClient(Application([(r"/", Ping)])) as client:
            r = await client.get("/")
            assert r.status == 500


async def test_shutdown_hooks_run_when_the_body_is_cancelled() -> None:
    ran: list[str] = []

    async def shutdown() -> None:
        await trio.lowlevel.checkpoint()  # shielded: not cancelled
        ran.append("shutdown")

    app = Application([(r"/", Ping)], on_shutdown=[shutdown])
    with trio.CancelScope() as scope:
        async with TestClient(app):
            scope.cancel()
            await trio.sleep_forever()
    assert ran == ["shutdown"]


def test_public_api_exports() -> None:
    assert trioweb.Application is Application
    assert trioweb.url is url


async def test_a_startup_hook_can_start_background_work() -> None:
    ticks: list[int] = []
    app = Application([(r"/", Ping)])

    async def background() -> None:
        ticks.append(1)
        await trio.sleep_forever()

    async def startup() -> None:
        app.nursery.start_soon(background)

    app.on_startup.append(startup)
    async with TestClient(app) as client:
        await client.get("/")
        assert ticks == [1]


async def test_initialize_raising_is_a_500_and_the_server_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class BadInit(RequestHandler):
        def initialize(self) -> None:
            raise RuntimeError("bad config")

    app = Application([(r"/bad", BadInit), (r"/", Ping)])
    async with TestClient(app) as client:
        assert (await client.get("/bad")).status == 500
        assert (await client.get("/")).text == "pong"
    assert "bad config" in caplog.text


# -- the tear-down's deadline (shutdown_timeout) -----------------------------------


def hanging_exit(events: list[str]) -> Any:
    """A lifespan whose exit never ends by itself (a pool that will not
    close), recording how it ended."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Application) -> AsyncIterator[None]:
        yield
        events.append("exit begins")
        try:
            await trio.sleep_forever()
        finally:
            events.append(f"exit ended at {trio.current_time():g}")

    return lifespan


async def test_a_hanging_lifespan_exit_is_bounded_by_shutdown_timeout(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    # Regression: the lifespan's exit had no deadline, so a hang there held
    # the process after every signal. It shares the hooks' deadline: one
    # shutdown_timeout bounds the whole tear-down.
    events: list[str] = []

    async def hook() -> None:
        await trio.sleep(1)
        events.append("hook done")

    app = Application(
        [(r"/", Ping)],
        lifespan=hanging_exit(events),
        on_shutdown=[hook],
        shutdown_timeout=3,
    )
    with trio.fail_after(100):
        async with TestClient(app) as client:
            await client.get("/")
            start = trio.current_time()
    assert events == ["hook done", "exit begins", f"exit ended at {start + 3:g}"]
    [record] = [r for r in caplog.records if r.name == "trioweb.error"]
    assert record.levelno == logging.ERROR
    assert record.getMessage() == (
        "the lifespan's exit did not finish within 3 s "
        "(the shutdown_timeout setting): cancelled"
    )


async def test_the_lifespan_exit_runs_when_the_body_is_cancelled(
    autojump_clock: trio.abc.Clock,
) -> None:
    closed: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Application) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await trio.sleep(1)  # shielded: not cancelled with the body
            closed.append("pool closed")

    app = Application([(r"/", Ping)], lifespan=lifespan)
    with trio.CancelScope() as scope:
        async with app.running():
            scope.cancel()
            await trio.sleep_forever()
    assert closed == ["pool closed"]


async def test_the_body_error_survives_a_lifespan_exit_cut_short(
    autojump_clock: trio.abc.Clock,
) -> None:
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Application) -> AsyncIterator[None]:
        try:
            yield
        finally:
            try:
                await trio.sleep_forever()
            finally:
                events.append(f"exit ended at {trio.current_time():g}")

    app = Application([(r"/", Ping)], lifespan=lifespan, shutdown_timeout=2)
    with pytest.raises(KeyError, match="server failed"):
        async with app.running():
            raise KeyError("server failed")
    assert events == ["exit ended at 2"]


async def test_cancel_teardown_ends_the_hooks_and_the_lifespan_exit_at_once(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[str] = []

    async def hang() -> None:
        try:
            await trio.sleep_forever()
        finally:
            events.append(f"hook cancelled at {trio.current_time():g}")

    app = Application(
        [(r"/", Ping)],
        lifespan=hanging_exit(events),
        on_shutdown=[hang],
        shutdown_timeout=60,
    )

    async def second_signal() -> None:
        await trio.sleep(5)
        app.cancel_teardown()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(second_signal)
        async with app.running():
            pass  # the tear-down begins at once, and hangs
    assert events == ["hook cancelled at 5", "exit begins", "exit ended at 5"]
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            logging.WARNING,
            f"shutdown hooks cut short (stopping now): {hang!r} was cancelled",
        ),
        (logging.WARNING, "the lifespan's exit cut short (stopping now): cancelled"),
    ]


async def test_a_handler_reverses_urls_itself() -> None:
    class Links(RequestHandler):
        async def get(self) -> None:
            self.write({"item": self.reverse_url("item", 42)})

    app = Application(
        [url("/", Links), url(r"/items/(\d+)", Echo, name="item")],
    )
    async with TestClient(app) as client:
        r = await client.get("/")
    assert r.json() == {"item": "/items/42"}


async def test_a_failing_startup_hook_is_a_startup_error_naming_it() -> None:
    # Not an ExceptionGroup (an old regression), and the hook is named.
    async def open_db() -> None:
        raise ConnectionRefusedError("no database")

    app = Application([(r"/", Ping)], on_startup=[open_db])
    with pytest.raises(trioweb.StartupError) as info:
        async with app.running():
            pass  # pragma: no cover
    error = info.value
    assert str(error) == (
        f"startup hook {__name__}.test_a_failing_startup_hook_is_a_startup_error"
        "_naming_it.<locals>.open_db failed: ConnectionRefusedError: no database"
    )
    assert isinstance(error.__cause__, ConnectionRefusedError)
    assert error.error is error.__cause__
    assert not app._running


async def test_a_failing_lifespan_set_up_is_a_startup_error() -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: Application) -> AsyncIterator[None]:
        raise OSError("disk gone")
        yield  # pragma: no cover

    app = Application([(r"/", Ping)], lifespan=lifespan)
    with pytest.raises(trioweb.StartupError, match=r"^lifespan .*lifespan failed: "):
        async with TestClient(app):
            pass  # pragma: no cover
    with pytest.raises(trioweb.StartupError, match=r"OSError: disk gone$"):
        async with app.running():
            pass  # pragma: no cover


async def test_a_lifespan_can_start_background_tasks_in_the_app_nursery(
    autojump_clock: trio.abc.Clock,
) -> None:
    events: list[str] = []

    async def ticker() -> None:
        try:
            while True:
                events.append("tick")
                await trio.sleep(1)
        finally:
            events.append("ticker cancelled")

    @contextlib.asynccontextmanager
    async def lifespan(app: Application) -> AsyncIterator[None]:
        app.nursery.start_soon(ticker)
        yield
        # The tasks are done before the tear-down, which may close what
        # they use.
        events.append("lifespan exit")

    async def shutdown() -> None:
        events.append("shutdown")

    app = Application([(r"/", Ping)], lifespan=lifespan, on_shutdown=[shutdown])
    async with TestClient(app) as client:
        await trio.sleep(1.5)
        assert (await client.get("/")).text == "pong"
    assert events == ["tick", "tick", "ticker cancelled", "shutdown", "lifespan exit"]


async def test_hooks_may_take_the_application() -> None:
    seen: list[tuple[str, Any]] = []

    async def open_db(app: Application) -> None:
        app.settings["db"] = "open"
        seen.append(("startup", app))

    async def close_db(app: Application) -> None:
        seen.append(("shutdown", app.settings.pop("db")))

    async def old_style() -> None:
        seen.append(("no argument", None))

    app = Application(
        [(r"/", Ping)], on_startup=[open_db, old_style], on_shutdown=[close_db]
    )
    async with TestClient(app):
        pass
    assert seen == [("startup", app), ("no argument", None), ("shutdown", "open")]


async def test_a_hook_taking_two_arguments_is_a_clear_error() -> None:
    async def bad(app: Application, other: int) -> None:
        pass  # pragma: no cover

    app = Application([(r"/", Ping)], on_startup=[bad])
    with pytest.raises(trioweb.StartupError, match="no argument or one") as info:
        async with app.running():
            pass  # pragma: no cover
    assert isinstance(info.value.__cause__, TypeError)
