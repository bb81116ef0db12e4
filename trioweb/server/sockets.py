"""Listening sockets the server is given rather than opens: ``--fd N``.

A process supervisor can open the listening socket itself and hand it to
the server as an inherited file descriptor. The server then needs no
privilege to bind a low port, and the socket outlives the server: with
**systemd socket activation** connections that arrive while the server
restarts wait in the socket's backlog instead of being refused.

systemd passes its sockets from file descriptor 3 on, and says so in the
environment: ``LISTEN_FDS`` (how many) and ``LISTEN_PID`` (for which
process; a child that inherits the environment must not take them for its
own). A unit's ``ExecStart=trioweb serve app:app --fd 3`` serves on the
first. :func:`inherited_socket` checks the number against those variables
when they are meant for this process, then removes them from the
environment (as ``sd_listen_fds(1)`` does), so that the application's own
subprocesses do not see them.
"""

from __future__ import annotations

import errno
import os
import socket
import stat

__all__ = ["SD_LISTEN_FDS_START", "inherited_socket", "systemd_fds"]

#: The first file descriptor systemd passes.
SD_LISTEN_FDS_START = 3


def systemd_fds() -> range | None:
    """The file descriptors systemd passed to this process, or None if
    ``LISTEN_FDS`` is absent or meant for another process."""
    try:
        pid = int(os.environ.get("LISTEN_PID", ""))
        count = int(os.environ.get("LISTEN_FDS", ""))
    except ValueError:
        return None
    if pid != os.getpid() or count < 0:
        return None
    return range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count)


def inherited_socket(fd: int, backlog: int = 1024) -> socket.socket:
    """The listening stream socket on inherited file descriptor ``fd``.

    A socket that is bound but not yet listening is made to listen with
    ``backlog``; one already listening (systemd's) keeps its own backlog.
    The returned object owns ``fd``: closing it closes the descriptor.

    Raises :exc:`OSError` with a message that says what is wrong: no such
    descriptor, not a socket, not a stream socket, not bound, or (under
    systemd) not one of the descriptors systemd passed.
    """
    passed = systemd_fds()
    if passed is not None:
        for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            os.environ.pop(name, None)
        if fd not in passed:
            shown = (
                (
                    f"fd {passed.start}"
                    if len(passed) == 1
                    else f"fds {passed.start}-{passed.stop - 1}"
                )
                if passed
                else "none"
            )
            raise OSError(
                errno.EBADF,
                f"systemd passed {len(passed)} socket(s) ({shown}), not fd {fd}",
            )
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        raise OSError(
            errno.EBADF,
            "no such file descriptor: the process that starts the server "
            "must pass it open (systemd: a .socket unit)",
        ) from None
    if not stat.S_ISSOCK(mode):
        raise OSError(errno.ENOTSOCK, "the file descriptor is not a socket")
    sock = socket.socket(fileno=fd)
    try:
        if sock.type != socket.SOCK_STREAM:
            raise OSError(
                errno.EPROTOTYPE,
                "the socket is not a stream (TCP or Unix stream) socket",
            )
        if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            try:
                peer = sock.getpeername()
            except OSError:
                pass  # not connected: bound, or not even that
            else:
                raise OSError(
                    errno.EISCONN,
                    f"the socket is connected (to {peer!r}), not listening: "
                    "pass a listening socket (or a bound one)",
                )
            name = sock.getsockname()
            if not name or (isinstance(name, tuple) and name[1] == 0):
                raise OSError(errno.EINVAL, "the socket is not bound to an address")
            sock.listen(backlog)
    except BaseException:
        sock.detach()  # not ours to close: the error leaves it as it was
        raise
    return sock
