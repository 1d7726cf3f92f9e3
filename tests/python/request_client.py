#!/usr/bin/env python3
"""Calls a repod server's request handlers the way a Python repod program would.

A request is the usual message dict with one more key, "rid": an integer the
caller picks. The server answers each request once with
{"action": "reply", "rid": <rid>, "ok": <value>} or
{"action": "reply", "rid": <rid>, "error": "<text>"}.

Runs against the test server of the repod request/reply tests (actions
list_rooms, join_room, find_match, forget, double, chat). Prints
``interop request client: OK`` and exits with status 0 when every check
passes; on the first mismatch or timeout it prints what went wrong to stderr
and exits with status 1.

Usage::

    python3 request_client.py --port PORT [--host 127.0.0.1] [--timeout 10]
"""

import argparse
import socket
import struct
import sys
import time

import msgpack

HEADER = struct.Struct(">I")
MAX_FRAME = 1024 * 1024
DROPPED = "the server dropped the request without answering it"


class CheckFailed(Exception):
    """The server did not answer as expected."""


class Connection:
    def __init__(self, host: str, port: int, timeout: float):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray()

    def send(self, message: dict) -> None:
        payload = msgpack.packb(message, use_bin_type=True)
        self.sock.sendall(HEADER.pack(len(payload)) + payload)

    def _fill(self, needed: int, deadline: float) -> None:
        while len(self.buffer) < needed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CheckFailed(f"timed out after {self.timeout}s waiting for a message")
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise CheckFailed("the server closed the connection")
            self.buffer += chunk

    def recv(self) -> dict:
        deadline = time.monotonic() + self.timeout
        self._fill(HEADER.size, deadline)
        (length,) = HEADER.unpack_from(self.buffer)
        if length > MAX_FRAME:
            raise CheckFailed(f"frame of {length} bytes")
        self._fill(HEADER.size + length, deadline)
        payload = bytes(self.buffer[HEADER.size : HEADER.size + length])
        del self.buffer[: HEADER.size + length]
        return msgpack.unpackb(payload, raw=False, strict_map_key=False)

    def expect(self, expected: dict, step: str) -> None:
        got = self.recv()
        if got != expected:
            raise CheckFailed(f"[{step}] expected {expected!r}, got {got!r}")


def ok(rid: int, value) -> dict:
    return {"action": "reply", "rid": rid, "ok": value}


def error(rid: int, text: str) -> dict:
    return {"action": "reply", "rid": rid, "error": text}


def run(host: str, port: int, timeout: float) -> None:
    conn = Connection(host, port, timeout)
    conn.expect({"action": "connected"}, "greeting")

    # A reply returned by the handler, and a handler's error.
    conn.send({"action": "list_rooms", "mode": "ffa", "rid": 1})
    conn.expect(ok(1, {"rooms": ["ffa-1", "ffa-2"]}), "list_rooms")
    conn.send({"action": "join_room", "room": "attic", "rid": 2})
    conn.expect(error(2, "no such room: attic"), "join_room error")
    conn.send({"action": "join_room", "room": "lobby", "rid": 3})
    conn.expect(ok(3, {"room": "lobby", "seat": 1}), "join_room ok")

    # Plain messages are unchanged: no rid, no reply.
    conn.send({"action": "chat", "text": "hi"})
    conn.expect({"action": "said", "text": "hi"}, "plain message")
    # A rid that is not an integer leaves a message plain: the request handler
    # runs, and nothing answers.
    conn.send({"action": "double", "n": 2, "rid": "not-a-number"})
    conn.send({"action": "chat", "text": "after"})
    conn.expect({"action": "said", "text": "after"}, "string rid")

    # Deferred replies, answered together in reverse order.
    conn.send({"action": "find_match", "players": 2, "rid": 10})
    conn.send({"action": "find_match", "players": 2, "rid": 11})
    conn.expect(ok(11, {"position": 2}), "find_match second")
    conn.expect(ok(10, {"position": 1}), "find_match first")

    # A token dropped unanswered, and any integer as an id.
    conn.send({"action": "forget", "rid": 12})
    conn.expect(error(12, DROPPED), "dropped token")
    big = 2**40 + 3
    conn.send({"action": "double", "n": 21, "rid": big})
    conn.expect(ok(big, 42), "big rid")

    # Many at once, several per write.
    frames = b"".join(
        HEADER.pack(len(p)) + p
        for p in (
            msgpack.packb({"action": "double", "n": n, "rid": 100 + n}, use_bin_type=True)
            for n in range(50)
        )
    )
    conn.sock.sendall(frames)
    for n in range(50):
        conn.expect(ok(100 + n, 2 * n), f"pipelined {n}")

    # Requests nothing answers still get an error reply.
    conn.send({"action": "chat", "text": "as a request", "rid": 200})
    conn.expect({"action": "said", "text": "as a request"}, "chat request")
    conn.expect(error(200, 'action "chat" does not answer requests'), "chat request reply")
    conn.sock.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    try:
        run(args.host, args.port, args.timeout)
    except (CheckFailed, OSError) as exc:
        print(f"interop request client: FAILED: {exc}", file=sys.stderr)
        return 1
    print("interop request client: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
