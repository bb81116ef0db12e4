"""Applications for the start-up tests of tests/test_cli.py and
tests/test_workers.py: failing startup hooks, and app factories."""

from __future__ import annotations

import os
import sys

import trio

from trioweb import Application, RequestHandler


class Pid(RequestHandler):
    async def get(self) -> None:
        self.write(str(os.getpid()))


async def open_db(app: Application) -> None:
    raise ConnectionRefusedError("no database at db:5432")


#: Its startup hook always fails.
failing_hook = Application([("/", Pid)], on_startup=[open_db])


async def fail_when_flagged() -> None:
    # The test creates the file after the first start: a restarted worker
    # then cannot start.
    flag = os.environ.get("TRIOWEB_TEST_FAIL_FLAG")
    if flag and await trio.Path(flag).exists():
        raise RuntimeError("the database went away")


#: Starts until the file $TRIOWEB_TEST_FAIL_FLAG exists.
fails_on_restart = Application([("/", Pid)], on_startup=[fail_when_flagged])


async def first_fails_others_wait() -> None:
    # The first worker to create $TRIOWEB_TEST_FIRST fails its start-up;
    # the others are still starting when the supervisor stops them.
    try:
        os.close(os.open(os.environ["TRIOWEB_TEST_FIRST"], os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        print("app: waiting in start-up", file=sys.stderr, flush=True)
        await trio.sleep_forever()
    # Once the other worker is waiting, so that it is stopped mid-start-up.
    await trio.sleep(0.5)
    raise ConnectionRefusedError("no database at db:5432")


#: One worker's start-up fails; the others' never ends by itself.
one_fails = Application([("/", Pid)], on_startup=[first_fails_others_wait])


def make_app() -> Application:
    """A factory for ``--factory``."""
    return Application([("/", Pid)], greeting="made by make_app")


def failing_factory() -> Application:
    raise KeyError("settings file missing")


def returns_nothing() -> None:
    return None
