#!/usr/bin/env python3
"""Regenerate the MessagePack test vectors embedded in the Rust test suite.

repod is wire-compatible with the Python "repod" package (PyPI: repodnet),
which encodes every message as a single MessagePack map using::

    msgpack.packb(message, use_bin_type=True)

The Rust tests embed the hex encoding of a few reference messages so they
can check that the Rust encoder produces (and the decoder accepts) exactly
the bytes Python would. Run this script to regenerate those vectors; each
output line has the form ``name hex``.

Only the MessagePack payload is printed here, without the 4-byte big-endian
length prefix that frames it on the wire.
"""

import msgpack

# Reference messages, in the order they are printed. Dict insertion order is
# preserved by msgpack, so the key order below is the key order on the wire.
VECTORS = [
    ("chat", {"action": "chat", "text": "Hello"}),
    ("move", {"action": "move", "x": 100, "y": 200}),
    ("ping", {"action": "ping"}),
    (
        "nested",
        {
            "action": "game_state",
            "players": [
                {"name": "Alice", "x": 1.5, "score": 10},
                {"name": "Bob", "x": -2.25, "score": 300},
            ],
            "timestamp": 123456,
        },
    ),
]


def main() -> None:
    for name, message in VECTORS:
        print(name, msgpack.packb(message, use_bin_type=True).hex())


if __name__ == "__main__":
    main()
