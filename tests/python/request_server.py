#!/usr/bin/env python3
"""A Python server answering repod requests, as a Python repod program would.

A request is a message dict carrying an integer "rid"; the server answers it
with {"action": "reply", "rid": <rid>, "ok": <value>} or
{"action": "reply", "rid": <rid>, "error": "<text>"}.

Actions:

* list_rooms {mode}  -> ok {"rooms": [mode + "-py"]}
* join_room {room}   -> error "the room is full"
* double {n}         -> ok n * 2
* stall {n}          -> held; answered with ok n by the next "release"
                        message, the latest first
* release            -> a plain message: answers the held stall requests
* chat {text}        -> a plain message: answered with "said" {text}
* any other request  -> error "unknown action: <action>"

Usage::

    python3 request_server.py --port 0 [--host 127.0.0.1]

The first line on stdout is ``listening on HOST:PORT``. The server runs until
SIGTERM or SIGINT.
"""

import argparse
import asyncio
import signal
import struct
import sys

import msgpack

HEADER = struct.Struct(">I")
MAX_FRAME = 1024 * 1024


def encode(message: dict) -> bytes:
    payload = msgpack.packb(message, use_bin_type=True)
    return HEADER.pack(len(payload)) + payload


class Connection:
    def __init__(self, writer: asyncio.StreamWriter):
        self.writer = writer
        self.stalled = []

    def send(self, message: dict) -> None:
        if not self.writer.is_closing():
            self.writer.write(encode(message))

    def reply(self, rid: int, value) -> None:
        self.send({"action": "reply", "rid": rid, "ok": value})

    def fail(self, rid: int, text: str) -> None:
        self.send({"action": "reply", "rid": rid, "error": text})

    def handle(self, message) -> None:
        if not isinstance(message, dict):
            return
        action = message.get("action")
        rid = message.get("rid")
        if not isinstance(rid, int) or isinstance(rid, bool) or rid < 0:
            rid = None

        if action == "chat":
            self.send({"action": "said", "text": message.get("text", "")})
        elif action == "release":
            for rid_held, n in reversed(self.stalled):
                self.reply(rid_held, n)
            self.stalled.clear()
        elif rid is None:
            return
        elif action == "list_rooms":
            self.reply(rid, {"rooms": [f"{message.get('mode', '')}-py"]})
        elif action == "join_room":
            self.fail(rid, "the room is full")
        elif action == "double":
            self.reply(rid, message.get("n", 0) * 2)
        elif action == "stall":
            self.stalled.append((rid, message.get("n", 0)))
        else:
            self.fail(rid, f"unknown action: {action}")


async def handle_connection(reader, writer) -> None:
    conn = Connection(writer)
    conn.send({"action": "connected"})
    try:
        while True:
            (length,) = HEADER.unpack(await reader.readexactly(HEADER.size))
            if length > MAX_FRAME:
                break
            payload = await reader.readexactly(length)
            conn.handle(msgpack.unpackb(payload, raw=False, strict_map_key=False))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass


async def serve(host: str, port: int) -> None:
    server = await asyncio.start_server(handle_connection, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    bound_host, bound_port = server.sockets[0].getsockname()[:2]
    print(f"listening on {bound_host}:{bound_port}", flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
