#!/usr/bin/env python3
"""Reference chat server used to test the Rust chat client for interop.

Implements the same chat protocol as the repod chat example, on the same wire
format as the Python "repod" package: each frame is a 4-byte big-endian
unsigned length N followed by N bytes of MessagePack holding one map, whose
"action" key names the message.

Protocol:

* A new connection is greeted with ``{"action": "connected"}`` and starts
  with the nickname "Anonymous".
* ``{"action": "nickname", "nickname": S}``: S is stripped. If it is empty
  or longer than 20 characters the sender alone gets
  ``{"action": "error", "message": "Invalid nickname"}``; otherwise every
  client (sender included) gets
  ``{"action": "name_changed", "old_name": OLD, "new_name": S}``.
* ``{"action": "message", "text": T}``: T is stripped. If it is empty or
  longer than 500 characters the sender alone gets
  ``{"action": "error", "message": "Invalid message"}``; otherwise every
  client gets ``{"action": "message", "text": T, "nickname": NICK}``.
* Unknown actions, and maps without an "action" key, are ignored.
* A frame larger than 1 MiB, or a payload that is not valid MessagePack,
  closes that connection.

Usage::

    python3 chat_server.py --port 0 [--host 127.0.0.1]

The first line on stdout is ``listening on HOST:PORT`` with the port actually
bound (useful with ``--port 0``). The server runs until SIGTERM or SIGINT and
then exits with status 0.
"""

import argparse
import asyncio
import signal
import struct
import sys

import msgpack

MAX_FRAME = 1024 * 1024
MAX_NICKNAME = 20
MAX_MESSAGE = 500
DEFAULT_NICKNAME = "Anonymous"

HEADER = struct.Struct(">I")


def encode(message: dict) -> bytes:
    """Encode one message as a complete length-prefixed frame."""
    payload = msgpack.packb(message, use_bin_type=True)
    return HEADER.pack(len(payload)) + payload


class ChatClient:
    """Per-connection state."""

    def __init__(self, writer: asyncio.StreamWriter):
        self.writer = writer
        self.nickname = DEFAULT_NICKNAME

    def send(self, message: dict) -> None:
        # Writes are buffered by the transport; a closing connection simply
        # drops them.
        if not self.writer.is_closing():
            self.writer.write(encode(message))


class ChatServer:
    def __init__(self):
        self.clients: set[ChatClient] = set()

    def broadcast(self, message: dict) -> None:
        frame = encode(message)
        for client in list(self.clients):
            if not client.writer.is_closing():
                client.writer.write(frame)

    def handle_message(self, client: ChatClient, message) -> None:
        """Apply one decoded message from `client`."""
        if not isinstance(message, dict):
            return
        action = message.get("action")

        if action == "nickname":
            nickname = message.get("nickname")
            nickname = nickname.strip() if isinstance(nickname, str) else ""
            if not nickname or len(nickname) > MAX_NICKNAME:
                client.send({"action": "error", "message": "Invalid nickname"})
                return
            old = client.nickname
            client.nickname = nickname
            self.broadcast(
                {"action": "name_changed", "old_name": old, "new_name": nickname}
            )

        elif action == "message":
            text = message.get("text")
            text = text.strip() if isinstance(text, str) else ""
            if not text or len(text) > MAX_MESSAGE:
                client.send({"action": "error", "message": "Invalid message"})
                return
            self.broadcast(
                {"action": "message", "text": text, "nickname": client.nickname}
            )

        # Any other action, or no action at all, is ignored.

    async def handle_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        client = ChatClient(writer)
        self.clients.add(client)
        client.send({"action": "connected"})
        try:
            while True:
                header = await reader.readexactly(HEADER.size)
                (length,) = HEADER.unpack(header)
                if length > MAX_FRAME:
                    break
                payload = await reader.readexactly(length)
                try:
                    message = msgpack.unpackb(
                        payload, raw=False, strict_map_key=False
                    )
                except Exception:
                    break
                self.handle_message(client, message)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.clients.discard(client)
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass

    def close_all(self) -> None:
        for client in list(self.clients):
            client.writer.close()


async def serve(host: str, port: int) -> None:
    chat = ChatServer()
    server = await asyncio.start_server(chat.handle_connection, host, port)

    # Run until asked to stop; the handlers are in place before readiness is announced, so a
    # signal sent right after the "listening on" line is not lost.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    bound_host, bound_port = server.sockets[0].getsockname()[:2]
    print(f"listening on {bound_host}:{bound_port}", flush=True)
    await stop.wait()

    # Stop accepting, disconnect clients, and let handlers finish.
    server.close()
    chat.close_all()
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
