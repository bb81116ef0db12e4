"""TestClient(via="tcp"): each connection a real TCP connection over
127.0.0.1, served by the engine as an accepted socket is.

(The rest of the client's behaviour is tested over both transports by
tests/test_testclient.py; these tests choose the transport themselves.)
"""

from __future__ import annotations

import socket
import sys

import pytest
import trio
import trio.testing

from trioweb import Application, RequestHandler
from trioweb.testing import MemoryTransport, TestClient


class Peer(RequestHandler):
    def get(self) -> None:
        self.write({"remote_ip": self.request.remote_ip, "host": self.request.host})

    def post(self) -> None:
        self.write({"size": len(self.request.body)})


def peer_app() -> Application:
    return Application([("/", Peer)])


async def test_the_server_end_is_an_accepted_socket(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with TestClient(peer_app(), via="tcp") as client:
        assert client.via == "tcp"
        r = await client.get("/")
        # The app sees the configured address, as over memory streams.
        assert r.json() == {"remote_ip": "127.0.0.1", "host": "testserver"}
        # A body larger than the kernel takes in one send.
        r = await client.post("/", content=b"x" * (4 << 20))
        assert r.json() == {"size": 4 << 20}
        [conn] = client.server_connections  # kept alive, reused
        assert type(conn.stream) is trio.SocketStream
        local = conn.stream.socket.getsockname()
        peer = conn.stream.socket.getpeername()
        assert local[0] == peer[0] == "127.0.0.1"


async def test_raw_connections_half_close_and_abort_over_tcp(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with TestClient(peer_app(), via="tcp") as client:
        raw = await client.raw()
        assert isinstance(raw.stream, trio.SocketStream)
        await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await raw.read_response()).status == 200
        await raw.send_eof()  # a FIN: the server ends the connection
        assert await raw.receive_until_closed() == b""
        with trio.fail_after(1):
            await raw.server_done.wait()
        assert await client.abort("GET", "/") == b""
        # Two connections, each with its own server end.
        assert len(client.server_connections) == 2


async def test_connections_opened_from_several_tasks_are_paired_right() -> None:
    async with TestClient(peer_app(), via="tcp") as client:
        raws = []

        async def open_one() -> None:
            raws.append(await client.raw())

        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(open_one)
        servers = {
            conn.stream.socket.getpeername()  # type: ignore[attr-defined]
            for conn in client.server_connections
        }
        clients = {raw.stream.socket.getsockname() for raw in raws}  # type: ignore[attr-defined]
        assert servers == clients and len(clients) == 20


async def test_the_listener_closes_with_the_client() -> None:
    transport = MemoryTransport(peer_app(), via="tcp")
    async with transport:
        await transport.connect()
        [conn] = transport.server_connections
        port = conn.stream.socket.getsockname()[1]  # type: ignore[attr-defined]
    with pytest.raises(OSError):
        await trio.open_tcp_stream("127.0.0.1", port)


def test_memory_only_options_are_refused_over_tcp() -> None:
    with pytest.raises(ValueError, match="stream_pair"):
        TestClient(peer_app(), via="tcp", stream_pair=trio.testing.memory_stream_pair)
    with pytest.raises(ValueError, match="socket_buffer"):
        TestClient(peer_app(), socket_buffer=4096)
    with pytest.raises(ValueError, match="via must be"):
        TestClient(peer_app(), via="udp")  # type: ignore[arg-type]


async def test_a_stray_connection_in_the_backlog_is_not_taken_for_ours() -> None:
    # As a connect() cancelled before its accept() would leave one.
    async with TestClient(peer_app(), via="tcp") as client:
        first = await client.raw()
        port = first.stream.socket.getpeername()[1]  # type: ignore[attr-defined]
        stray = await trio.open_tcp_stream("127.0.0.1", port)
        raw = await client.raw()
        [_, conn] = client.server_connections
        ours = raw.stream.socket.getsockname()  # type: ignore[attr-defined]
        assert conn.stream.socket.getpeername() == ours  # type: ignore[attr-defined]
        await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await raw.read_response()).status == 200
        # The stray was closed, not served.
        assert await stray.receive_some(1) == b""


@pytest.mark.skipif(sys.platform != "linux", reason="TCP_CORK and the guard: Linux")
async def test_the_clock_does_not_jump_past_bytes_the_kernel_still_holds(
    autojump_clock: trio.abc.Clock,
) -> None:
    # Bytes that take real time to cross loopback (a delayed ACK, a busy
    # machine): here a corked socket, which holds a short send ~200 ms.
    # Every task is blocked meanwhile; the clock must not jump to the
    # server's idle timeout, which would close the connection.
    async with TestClient(peer_app(), via="tcp") as client:
        raw = await client.raw()
        stream = raw.stream
        assert isinstance(stream, trio.SocketStream)
        stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await raw.read_response()).status == 200
        assert trio.current_time() == 0
