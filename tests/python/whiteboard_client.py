#!/usr/bin/env python3
"""A whiteboard player in Python, speaking Python repod's wire format over TCP.

Joins the board of ``whiteboard-server`` (a request: the dict carries ``"rid"``, the answer
is ``{"action": "reply", "rid": 1, "ok": welcome}``), waits until ``--players`` players are on
the board, draws one stroke, and waits until it has received a stroke from every other
player. Then it prints ``whiteboard client: OK`` and a JSON line
``{"me": <id>, "saw": [<ids of the players whose strokes arrived>]}`` and exits with status
0; on a timeout or a protocol error it prints the reason to stderr and exits with status 1.

Usage::

    python3 whiteboard_client.py --port PORT [--players 3] [--name python] [--timeout 30]
"""

import argparse
import json
import socket
import struct
import sys
import time

import msgpack

MAX_FRAME = 1024 * 1024
HEADER = struct.Struct(">I")


class Failed(Exception):
    pass


class Connection:
    def __init__(self, port: int, deadline: float):
        self.deadline = deadline
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray()

    def send(self, message: dict) -> None:
        payload = msgpack.packb(message, use_bin_type=True)
        self.sock.sendall(HEADER.pack(len(payload)) + payload)

    def receive(self) -> dict:
        while True:
            if len(self.buffer) >= HEADER.size:
                (length,) = HEADER.unpack_from(self.buffer)
                if length > MAX_FRAME:
                    raise Failed(f"frame of {length} bytes")
                if len(self.buffer) >= HEADER.size + length:
                    payload = bytes(self.buffer[HEADER.size:HEADER.size + length])
                    del self.buffer[:HEADER.size + length]
                    message = msgpack.unpackb(payload, raw=False, strict_map_key=False)
                    if not isinstance(message, dict):
                        raise Failed(f"not a map: {message!r}")
                    return message
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise Failed("timed out")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise Failed("timed out")
            if not chunk:
                raise Failed("the server closed the connection")
            self.buffer += chunk


def play(args) -> dict:
    deadline = time.monotonic() + args.timeout
    conn = Connection(args.port, deadline)
    conn.send({"action": "join", "rid": 1, "name": args.name})
    players = set()
    me = None
    drew = False
    saw = set()
    while True:
        if me is not None and not drew and len(players) >= args.players:
            # Everyone is here: draw a small zigzag in the top-left corner.
            conn.send({"action": "stroke", "points": [[40, 40], [80, 70], [120, 40], [160, 70]]})
            drew = True
        if drew and len(saw) >= args.players - 1:
            return {"me": me, "saw": sorted(saw)}
        message = conn.receive()
        action = message.get("action")
        if action == "reply" and message.get("rid") == 1:
            if "error" in message:
                raise Failed(f"join refused: {message['error']}")
            welcome = message["ok"]
            me = welcome["you"]["id"]
            players.update(p["id"] for p in welcome["players"])
        elif action == "joined":
            players.add(message["player"]["id"])
        elif action == "left":
            players.discard(message["id"])
        elif action == "drawn":
            if message["id"] != me:
                saw.add(message["id"])
        elif action == "error":
            raise Failed(f"the server sent an error: {message}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--players", type=int, default=3)
    parser.add_argument("--name", default="python")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    try:
        result = play(args)
    except (Failed, OSError, KeyError, TypeError) as exc:
        print(f"whiteboard client failed: {exc}", file=sys.stderr)
        return 1
    print("whiteboard client: OK")
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
