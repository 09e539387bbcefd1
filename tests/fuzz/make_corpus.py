#!/usr/bin/python3
"""Writes the seed corpus of the request-decoder fuzzer (tests/fuzz/corpus/): one well-formed
message of each kind the server reads, in the fuzz input layout (request_decoder.cpp): a byte
giving the number of side frames, each as a length byte and its bytes, then the msgpack body.
Run it again after changing the protocol; the fuzzer adds what it finds on its own."""
import hashlib
import os
import struct

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
BLOB, REF, OPAQUE = 1, 2, 3


def ext(kind, payload):
    return msgpack.ExtType(kind, payload)


def ref(object_id, type_id):
    return ext(REF, msgpack.packb([object_id, type_id]))


def blob(index):
    return ext(BLOB, struct.pack(">I", index))


def message(body, blobs=()):
    out = bytes([len(blobs)])
    for b in blobs:
        out += bytes([len(b)]) + b
    return out + msgpack.packb(body, use_bin_type=True)


def stream(*messages):
    """Messages as the same-host transport frames them (protocol.md 1.1): a 16-byte header
    (body length, number of blob frames, zero; little-endian), the body, each blob with its
    length. The fuzzer reads every input this way too."""
    out = b""
    for body, blobs in messages:
        packed = msgpack.packb(body, use_bin_type=True)
        out += struct.pack("<QII", len(packed), len(blobs), 0) + packed
        for b in blobs:
            out += struct.pack("<Q", len(b)) + b
    return out


def control(kind, body):
    """One of the same-host transport's own messages (protocol.md 1.2): the kind in the header."""
    packed = msgpack.packb(body)
    return struct.pack("<QII", len(packed), 0, kind) + packed


def placed(body, segment, offset, length):
    """A message whose one blob frame is `length` bytes at `offset` in `segment`."""
    packed = msgpack.packb(body, use_bin_type=True)
    return (struct.pack("<QII", len(packed), 1, 0) + packed
            + struct.pack("<QQQ", length | 1 << 63, segment, offset))


def zmq_transport(kind, body, side_frames=()):
    """A ZeroMQ message whose first frame is the transport's (protocol.md 1.3): 0xc1, the kind,
    the msgpack body; then `side_frames`, in the fuzz input layout."""
    first = bytes([0xC1, kind]) + msgpack.packb(body, use_bin_type=True)
    out = bytes([len(side_frames)])
    for f in side_frames:
        out += bytes([len(f)]) + f
    return out + first


SEEDS = {
    "hello": message([1, 2, b"\x01" * 32, "worker-1"]),
    "auth": message([3, b"\x02" * 32]),
    "ping": message([8]),
    "bye": message([10]),
    "call_put": message([5, 1, 7, "put", [{"job": [1, 2.5, None, True]}, True, 1.5], []]),
    "call_acquire": message([5, 2, 9, "acquire", [12345, True, None], [], 250]),
    "call_setitem": message([5, 3, 4, "setitem", ["k", [1, -2, "x", b"bytes"]], []]),
    "call_release": message([5, 0, 0, "release", [[4, 5, 6]], []]),
    "call_create": message([5, 4, 0, "create", ["Queue", [0]], []]),
    "call_user": message([5, 5, 11, "user", [3, 0.5, "name", blob(0)], []], [b"side frame"]),
    "call_ref": message([5, 6, 3, "setitem", ["inner", ref(8, "dict")], [8]]),
    "call_nested": message([5, 7, 4, "setitem", [[[[["deep"]]]], {"a": {"b": {"c": 1}}}], []]),
    "call_opaque": message([5, 8, 4, "user", [ext(OPAQUE, b"\x16\x00serialization::archive")], []]),
    "reply": message([6, 1, {"values": [1, 2, 3], "blob": blob(0)}, []], [b"abc"]),
    "error": message([7, 2, {"kind": "raised", "type": "KeyError", "message": "'k'",
                             "method": "getitem", "object": "4"}]),
    # Version 3: calls sent together, each body a bin; replies come back the same way.
    "batch_calls": message([11, [msgpack.packb([5, 10, 7, "add", [1, 2], []]),
                                 msgpack.packb([5, 11, 7, "get", ["k", None, 0.5], [], 100]),
                                 msgpack.packb([8])]]),
    "batch_replies": message([11, [msgpack.packb([6, 10, 3, []]),
                                   msgpack.packb([7, 11, {"kind": "raised", "type": "KeyError",
                                                          "message": "'k'", "method": "get",
                                                          "object": "7"}])]]),
    "stream_hello_call": stream(([1, 2, b"\x01" * 32, "local"], []),
                                ([5, 5, 11, "user", [3, 0.5, "name", blob(1)], []], [b"side"])),
    # Over the fuzzer's 8 frames: read past, and the ping after it still parses.
    "stream_over_limit": stream(([5, 9, 1, "put", [b"x" * 200], []], [b"a"] * 9), ([8], [])),
    # Version 5 (protocol.md 1.2): a LEASE, a put whose blob is in the segment lent (id 1), one
    # in a segment that is not, and a RELEASE.
    "stream_segments": control(3, [4, 1 << 20])
    + placed([5, 12, 1, "put", [blob(1)], []], 1, 0, 1000)
    + placed([5, 13, 1, "put", [blob(1)], []], 2, 0, 1000)
    + control(4, [1, 2, 3]),
    # Version 6 (protocol.md 1.3), over ZeroMQ: LEASE, PROOF, RELEASE, and a put whose blob
    # frame (sent empty) is in segment 1.
    "zmq_lease": zmq_transport(3, [0, 0]),
    "zmq_proof": zmq_transport(6, [b"\x07" * 32]),
    "zmq_release": zmq_transport(4, [1, 2]),
    "zmq_offer": zmq_transport(5, [4242, 17, 65536]),
    "zmq_map": zmq_transport(1, [[1, 65536, 17], [2, 1 << 20, 18]]),
    "zmq_placed": zmq_transport(0, [[1, 1, 0, 1000]],
                                [msgpack.packb([5, 12, 1, "put", [blob(1)], []]), b""]),
}


def main():
    corpus = os.path.join(HERE, "corpus")
    os.makedirs(corpus, exist_ok=True)
    for name, data in SEEDS.items():
        digest = hashlib.sha1(data).hexdigest()[:12]
        with open(os.path.join(corpus, f"seed_{name}_{digest}"), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
