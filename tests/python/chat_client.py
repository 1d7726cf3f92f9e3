#!/usr/bin/env python3
"""Interop client for the repod chat example.

Connects two clients (A and B) to a chat server and walks through the whole
chat protocol, checking every reply exactly. It exits with status 0 and prints
``interop chat client: OK`` when every check passes; on the first mismatch,
protocol error or timeout it prints a description to stderr and exits with
status 1.

Wire format (compatible with the Python "repod" package): each frame is a
4-byte big-endian unsigned length N followed by N bytes of MessagePack holding
one map; its "action" key names the message.

Usage::

    python3 chat_client.py --port PORT [--host 127.0.0.1] [--timeout 10]
"""

import argparse
import socket
import struct
import sys
import time

import msgpack

# Frames bigger than this are treated as a protocol error rather than
# something worth buffering.
MAX_FRAME = 1024 * 1024

HEADER = struct.Struct(">I")


class CheckFailed(Exception):
    """Raised when the server's behaviour differs from what we expect."""


def encode(message: dict) -> bytes:
    """Encode one message as a complete length-prefixed frame."""
    payload = msgpack.packb(message, use_bin_type=True)
    return HEADER.pack(len(payload)) + payload


class Client:
    """One connection to the server with a frame-aware receive buffer."""

    def __init__(self, name: str, host: str, port: int, timeout: float):
        self.name = name
        self.timeout = timeout
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise CheckFailed(f"client {name}: cannot connect to {host}:{port}: {exc}")
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray()

    def close(self) -> None:
        self.sock.close()

    def send(self, message: dict) -> None:
        self.send_raw(encode(message))

    def send_raw(self, data: bytes) -> None:
        """Send bytes as-is, e.g. several frames in one write."""
        try:
            self.sock.settimeout(self.timeout)
            self.sock.sendall(data)
        except OSError as exc:
            raise CheckFailed(f"client {self.name}: send failed: {exc}")

    def _fill(self, needed: int, deadline: float) -> None:
        """Read from the socket until the buffer holds `needed` bytes."""
        while len(self.buffer) < needed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout()
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise CheckFailed(f"client {self.name}: server closed the connection")
            self.buffer += chunk

    def recv(self) -> dict:
        """Receive and decode the next message, bounded by the timeout."""
        deadline = time.monotonic() + self.timeout
        try:
            self._fill(HEADER.size, deadline)
            (length,) = HEADER.unpack_from(self.buffer)
            if length > MAX_FRAME:
                raise CheckFailed(
                    f"client {self.name}: frame of {length} bytes exceeds {MAX_FRAME}"
                )
            self._fill(HEADER.size + length, deadline)
        except socket.timeout:
            raise CheckFailed(
                f"client {self.name}: timed out after {self.timeout}s "
                "waiting for a message"
            )
        except OSError as exc:
            raise CheckFailed(f"client {self.name}: receive failed: {exc}")

        payload = bytes(self.buffer[HEADER.size : HEADER.size + length])
        del self.buffer[: HEADER.size + length]
        try:
            message = msgpack.unpackb(payload, raw=False, strict_map_key=False)
        except Exception as exc:
            raise CheckFailed(
                f"client {self.name}: undecodable payload {payload.hex()}: {exc}"
            )
        return message

    def expect(self, expected: dict, step: str) -> None:
        """Receive the next message and require it to equal `expected`."""
        got = self.recv()
        if got != expected:
            raise CheckFailed(
                f"[{step}] client {self.name}: expected {expected!r}, got {got!r}"
            )


def expect_all(clients, expected: dict, step: str) -> None:
    """Require every client in `clients` to receive `expected` next."""
    for client in clients:
        client.expect(expected, step)


def name_changed(old: str, new: str) -> dict:
    return {"action": "name_changed", "old_name": old, "new_name": new}


def chat_message(text: str, nickname: str) -> dict:
    return {"action": "message", "text": text, "nickname": nickname}


INVALID_NICKNAME = {"action": "error", "message": "Invalid nickname"}
INVALID_MESSAGE = {"action": "error", "message": "Invalid message"}


def run(host: str, port: int, timeout: float) -> None:
    a = Client("A", host, port, timeout)
    b = Client("B", host, port, timeout)
    both = (a, b)
    try:
        # Every new connection is greeted first.
        a.expect({"action": "connected"}, "greeting")
        b.expect({"action": "connected"}, "greeting")

        # Nicknames are stripped and the change is broadcast to everyone,
        # sender included.
        a.send({"action": "nickname", "nickname": "  alice  "})
        expect_all(both, name_changed("Anonymous", "alice"), "A sets nickname")

        b.send({"action": "nickname", "nickname": "bob"})
        expect_all(both, name_changed("Anonymous", "bob"), "B sets nickname")

        # Invalid nicknames produce an error for the sender only. B is not
        # checked here directly: the ordering checks below prove B never
        # received these errors, because B's next message must be a broadcast.
        a.send({"action": "nickname", "nickname": ""})
        a.expect(INVALID_NICKNAME, "empty nickname")

        a.send({"action": "nickname", "nickname": "x" * 21})
        a.expect(INVALID_NICKNAME, "21-character nickname")

        # Chat messages are stripped and broadcast with the sender's nickname.
        a.send({"action": "message", "text": "  hello world  "})
        expect_all(both, chat_message("hello world", "alice"), "A sends message")

        # Invalid messages produce an error for the sender only.
        a.send({"action": "message", "text": ""})
        a.expect(INVALID_MESSAGE, "empty message")

        a.send({"action": "message", "text": "y" * 501})
        a.expect(INVALID_MESSAGE, "501-character message")

        # Unknown actions and maps without an action are ignored silently; a
        # following valid message proves the connection survived and that
        # nothing (such as an error reply) was sent in between.
        a.send({"action": "no_such_action"})
        a.send({"text": "x"})
        a.send({"action": "message", "text": "still alive"})
        expect_all(both, chat_message("still alive", "alice"), "after ignored messages")

        # Two complete frames in a single write must be split correctly and
        # handled in order.
        a.send_raw(
            encode({"action": "message", "text": "first"})
            + encode({"action": "message", "text": "second"})
        )
        expect_all(both, chat_message("first", "alice"), "batched frame 1")
        expect_all(both, chat_message("second", "alice"), "batched frame 2")

        # B talks too, so the broadcast is checked in the other direction.
        b.send({"action": "message", "text": "hi alice"})
        expect_all(both, chat_message("hi alice", "bob"), "B sends message")

        # Boundary values that must be accepted: exactly 20 and 500 chars.
        a.send({"action": "nickname", "nickname": "n" * 20})
        expect_all(both, name_changed("alice", "n" * 20), "20-character nickname")

        a.send({"action": "message", "text": "m" * 500})
        expect_all(both, chat_message("m" * 500, "n" * 20), "500-character message")

        # Nothing else may be pending on either connection (for example a
        # stray error delivered to B).
        for client in both:
            if client.buffer:
                raise CheckFailed(
                    f"client {client.name}: unexpected extra data buffered"
                )
    finally:
        a.close()
        b.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="seconds to wait for each expected message (default: 10)",
    )
    args = parser.parse_args()

    try:
        run(args.host, args.port, args.timeout)
    except CheckFailed as exc:
        print(f"interop chat client: FAILED: {exc}", file=sys.stderr)
        return 1
    print("interop chat client: OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
