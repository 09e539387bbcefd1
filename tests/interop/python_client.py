"""A zmanager client in Python, written from docs/protocol.md alone (Debian's python3-zmq and
python3-msgpack). It proves the protocol is language-neutral: handshake, calls, errors, large
bytes in blob frames, object references passed and returned, and reference release, over either
transport: ZeroMQ (section 1) or the same-host length-framed stream (section 1.1, unix://).

Usage: python_client.py ADDRESS AUTHKEY   (against zmanager_test_server)"""
import hashlib
import hmac
import os
import socket
import struct
import sys
import time

import msgpack
import zmq

HELLO, CHALLENGE, AUTH, WELCOME, CALL, REPLY, ERROR, PING, PONG, BYE = range(1, 11)
EXT_BLOB, EXT_REF = 1, 2
RECV_TIMEOUT_S = 10


class RemoteError(Exception):
    def __init__(self, error):
        super().__init__(f"{error['type']}: {error['message']}")
        self.error = error


class Ref:
    def __init__(self, object_id, typeid):
        self.object_id, self.typeid = object_id, typeid


# The transport layer: send(frames) and recv() -> frames, where frames[0] is the body and
# frames[1:] the blob frames (section 1); close().

class ZmqTransport:
    """Section 1: one DEALER socket; a message is one multipart message."""

    def __init__(self, address):
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 200)
        self.sock.setsockopt(zmq.RCVTIMEO, RECV_TIMEOUT_S * 1000)
        self.sock.connect(address)

    def send(self, frames):
        self.sock.send_multipart(frames)

    def recv(self):
        return self.sock.recv_multipart(copy=True)

    def close(self):
        self.sock.close()


# Section 1.1: 16-byte header (body length uint64 LE, blob count uint32 LE, reserved uint32 zero),
# then the body, then per blob frame its length (uint64 LE) and its bytes.
STREAM_HEADER = struct.Struct("<QII")
BLOB_LENGTH = struct.Struct("<Q")


def unix_socket_address(address):
    """unix:///path names a socket file; unix://@name the abstract name NUL + name."""
    rest = address[len("unix://"):]
    return "\0" + rest[1:] if rest.startswith("@") else rest


class StreamTransport:
    """Section 1.1: one Unix stream connection is one peer."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(RECV_TIMEOUT_S)
        self.sock.connect(unix_socket_address(address))

    def send(self, frames):
        body, blobs = frames[0], frames[1:]
        parts = [STREAM_HEADER.pack(len(body), len(blobs), 0), body]
        for blob in blobs:
            parts += [BLOB_LENGTH.pack(len(blob)), blob]
        self.sock.sendall(b"".join(parts))

    def _read_exact(self, n):
        data = bytearray()
        while len(data) < n:
            chunk = self.sock.recv(min(n - len(data), 1 << 20))
            if not chunk:
                raise ConnectionError("the server closed the connection")
            data += chunk
        return bytes(data)

    def recv(self):
        body_length, blob_count, reserved = STREAM_HEADER.unpack(self._read_exact(STREAM_HEADER.size))
        if reserved != 0:
            raise ConnectionError(f"malformed stream: reserved header field is {reserved}")
        frames = [self._read_exact(body_length)]
        for _ in range(blob_count):
            (length,) = BLOB_LENGTH.unpack(self._read_exact(BLOB_LENGTH.size))
            frames.append(self._read_exact(length))
        return frames

    def close(self):
        self.sock.close()


def connect_transport(address):
    return StreamTransport(address) if address.startswith("unix://") else ZmqTransport(address)


class Client:
    def __init__(self, address, key):
        self.transport = connect_transport(address)
        self.next_id = 1
        key = key.encode()
        cnonce = os.urandom(32)
        self._send([HELLO, 1, cnonce, "python"])
        op, version, snonce, server_proof = self._recv_body()
        assert op == CHALLENGE, op
        expected = hmac.new(key, b"zmanager-server-proof-v1" + cnonce + snonce, hashlib.sha256).digest()
        assert hmac.compare_digest(expected, server_proof), "server does not know the key"
        proof = hmac.new(key, b"zmanager-client-proof-v1" + snonce + cnonce, hashlib.sha256).digest()
        self._send([AUTH, proof])
        welcome = self._recv_body()
        assert welcome[0] == WELCOME, welcome
        self.session, self.heartbeat_ms, self.ttl_ms = welcome[1:4]

    def _send(self, body, blobs=()):
        self.transport.send([msgpack.packb(body, use_bin_type=True), *blobs])

    def _recv(self):
        frames = self.transport.recv()
        blobs = frames[1:]

        def ext_hook(code, data):
            if code == EXT_BLOB:
                return blobs[struct.unpack(">I", data)[0] - 1]
            if code == EXT_REF:
                object_id, typeid = msgpack.unpackb(data, raw=False)
                return Ref(object_id, typeid)
            return msgpack.ExtType(code, data)

        return msgpack.unpackb(frames[0], raw=False, ext_hook=ext_hook, strict_map_key=False)

    def _recv_body(self):
        body = self._recv()
        if body[0] == ERROR:
            raise RemoteError(body[2])
        return body

    def call(self, object_id, method, *args):
        request_id, self.next_id = self.next_id, self.next_id + 1
        blobs, refs, encoded = [], [], []
        for a in args:
            if isinstance(a, bytes) and len(a) >= 4096:
                blobs.append(a)
                encoded.append(msgpack.ExtType(EXT_BLOB, struct.pack(">I", len(blobs))))
            elif isinstance(a, Ref):
                refs.append(a.object_id)
                encoded.append(msgpack.ExtType(EXT_REF, msgpack.packb([a.object_id, a.typeid])))
            else:
                encoded.append(a)
        self._send([CALL, request_id, object_id, method, encoded, refs], blobs)
        body = self._recv_body()
        assert body[0] == REPLY and body[1] == request_id, body
        return body[2]

    def release(self, ref):
        self._send([CALL, 0, 0, "release", [[ref.object_id]], []])

    def close(self):
        self._send([BYE])
        self.transport.close()


def expect_error(kind_type, fn, *args):
    try:
        fn(*args)
    except RemoteError as e:
        assert e.error["type"] == kind_type, e.error
        return e.error
    raise AssertionError(f"no {kind_type}")


def check_stream_connection(address, key, c):
    """Section 1.1's own promises: closing a connection ends its session at once, and a header
    whose reserved field is not zero makes the server close the connection."""
    def wait_until(predicate, what, timeout_s=5.0):
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting until {what}")
            time.sleep(0.02)

    before = c.call(0, "stats")
    other = Client(address, key)
    other.call(0, "create", "Counter", [0])  # held only by the other session
    assert c.call(0, "stats")["sessions"] == before["sessions"] + 1
    other.transport.close()  # no BYE: the close alone must end the session
    wait_until(lambda: c.call(0, "stats")["sessions"] == before["sessions"], "the closed session ended")
    # (The test server also shares a Counter of its own, so count rather than look for the type.)
    wait_until(lambda: c.call(0, "stats")["destroyed"] == before["destroyed"] + 1,
               "the closed session's object was destroyed")
    after = c.call(0, "stats")
    assert after["objects_by_type"] == before["objects_by_type"], (before, after)

    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.settimeout(RECV_TIMEOUT_S)
    raw.connect(unix_socket_address(address))
    raw.sendall(STREAM_HEADER.pack(0, 0, 1))
    try:
        assert raw.recv(1) == b"", "the server answered a malformed header"
    except ConnectionResetError:
        pass
    raw.close()


def main():
    address, key = sys.argv[1], sys.argv[2]
    c = Client(address, key)
    maths = c.call(0, "create", "Maths", [])
    assert isinstance(maths, Ref) and maths.typeid == "Maths"
    assert c.call(maths.object_id, "add", 4, 3) == 7
    assert c.call(maths.object_id, "mul", 7, 8) == 56
    assert c.call(maths.object_id, "greet", "python") == "hello python"
    assert c.call(maths.object_id, "move", [1.0, 2.0, "p"], 0.5) == [1.5, 2.0, "p"]
    big = bytes(range(256)) * 512  # 128 KiB: sent as a blob frame, returned as one
    assert c.call(maths.object_id, "reverse", big) == big[::-1]
    assert c.call(maths.object_id, "length", b"abc") == 3
    e = expect_error("AttributeError", c.call, maths.object_id, "nope")
    assert e["kind"] == "raised" and e["method"] == "nope"
    expect_error("TypeError", c.call, maths.object_id, "add", 1)
    expect_error("TypeError", c.call, maths.object_id, "add", "one", 2)
    expect_error("KeyError", c.call, maths.object_id, "fail_key", "k")
    assert expect_error("test::CustomFailure", c.call, maths.object_id, "fail_custom", "x")["message"] == "x"

    holder = c.call(0, "create", "Holder", [])
    assert c.call(holder.object_id, "add_through", maths, 20, 22) == 42
    c.call(holder.object_id, "keep", maths)
    back = c.call(holder.object_id, "give")
    assert back.object_id == maths.object_id
    counter = c.call(0, "create", "Counter", [5])
    assert c.call(counter.object_id, "increment", 2) == 7

    before = c.call(0, "stats")
    for ref in (maths, back, counter):
        c.release(ref)
    after = c.call(0, "stats")
    # maths is still held by the holder; the counter is gone.
    assert after["objects_by_type"]["Maths"] == 1, after
    assert after["destroyed"] == before["destroyed"] + 1, (before, after)
    c.call(holder.object_id, "drop")
    assert "Maths" not in c.call(0, "stats")["objects_by_type"]
    described = c.call(0, "describe")
    assert "add" in described["types"]["Maths"]
    c.release(holder)

    # The built-in types (protocol.md section 11), which C++ proxies share with this client.
    d = c.call(0, "create", "dict", [{"a": 1}])
    q = c.call(0, "create", "Queue", [2])
    c.call(d.object_id, "setitem", "queue", q)  # a reference stored in a dict stays live
    c.call(d.object_id, "setitem", "nested", [1, "two", {"three": 3.0}])
    assert c.call(d.object_id, "getitem", "nested") == [1, "two", {"three": 3.0}]
    assert c.call(d.object_id, "keys") == ["a", "queue", "nested"]
    expect_error("KeyError", c.call, d.object_id, "getitem", "missing")
    inner = c.call(d.object_id, "getitem", "queue")
    assert inner.object_id == q.object_id and inner.typeid == "Queue"
    c.call(inner.object_id, "put", "job", True, None)
    c.call(q.object_id, "put_nowait", "job 2")
    expect_error("Full", c.call, q.object_id, "put", "job 3", False, 5.0)
    assert c.call(q.object_id, "get", True, None) == "job"
    assert c.call(q.object_id, "qsize") == 1
    lock = c.call(0, "create", "RLock", [])
    assert c.call(lock.object_id, "acquire", 1, True, None) is True
    assert c.call(lock.object_id, "acquire", 2, False, None) is False  # another thread token
    expect_error("RuntimeError", c.call, lock.object_id, "release", 2)
    c.call(lock.object_id, "release", 1)
    for ref in (d, q, inner, lock):
        c.release(ref)
    if address.startswith("unix://"):
        check_stream_connection(address, key, c)
    c.close()
    print(f"python client: ok ({address.split(':', 1)[0]})")


if __name__ == "__main__":
    main()
