"""What an echo server must do, checked over real loopback sockets with every byte compared: the
cases of the project's conformance suite (Tests/EchoServerTests/ConformanceTests.swift) that make
sense for a server we only see from outside. The peers' tests run them all (tests/test_peers.py);
the runner runs the quick set against each peer before measuring it, so a peer that drops or
corrupts bytes stops the run instead of being benchmarked.

A case takes the running server (its `port`, and `pid` for the descriptor check) and `quick`
(smaller sizes), returns what it verified in words, and raises ConformanceFailed otherwise.
"""

import random
import select
import selectors
import socket
import struct
import threading
import time

from benchkit import procfs

TIMEOUT = 5.0      # seconds any one socket operation may take: catches a hang, not a slow machine
MiB = 1024 * 1024


class ConformanceFailed(Exception):
    pass


def payload(size, seed):
    return random.Random(seed).randbytes(size)


def connect(port, host="127.0.0.1", timeout=TIMEOUT):
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def mismatch(expected, received):
    """None when equal, else where they first differ, in words."""
    if expected == received:
        return None
    same = next((i for i, (a, b) in enumerate(zip(expected, received)) if a != b), min(len(expected), len(received)))
    return f"expected {len(expected)} bytes, got {len(received)}; first difference at byte {same}"


def receive_exactly(s, count):
    chunks, got = [], 0
    while got < count:
        try:
            chunk = s.recv(min(count - got, 1 << 20))
        except socket.timeout:
            raise ConformanceFailed(f"no byte for {TIMEOUT:g} s after {got} of {count} bytes")
        if not chunk:
            raise ConformanceFailed(f"the server closed the connection after {got} of {count} bytes")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def receive_until_eof(s, limit):
    """Everything until the server closes its side; more than `limit` bytes is a failure."""
    chunks, got = [], 0
    while True:
        try:
            chunk = s.recv(1 << 20)
        except socket.timeout:
            raise ConformanceFailed(f"no end of stream within {TIMEOUT:g} s after {got} bytes")
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        got += len(chunk)
        if got > limit:
            raise ConformanceFailed(f"the server sent {got} bytes, more than the {limit} it was sent")


def nothing_more(s, wait=0.05):
    """The server sent nothing beyond what it received."""
    if select.select([s], [], [], wait)[0]:
        extra = s.recv(65536)
        if extra:
            raise ConformanceFailed(f"the server sent {len(extra)} bytes more than it received")


def send_slices(s, data, slices, then_shutdown=False):
    """Sends `data` cut into `slices` (cycled), each its own send; a failure is kept for the caller."""
    failure = []

    def write():
        try:
            offset, index = 0, 0
            while offset < len(data):
                size = slices[index % len(slices)] if slices else len(data)
                s.sendall(data[offset:offset + size])
                offset, index = offset + size, index + 1
            if then_shutdown:
                s.shutdown(socket.SHUT_WR)
        except OSError as e:
            failure.append(e)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread, failure


def echo_concurrently(s, data, slices=None):
    """Writes `data` from a thread while reading it back here; what came back."""
    thread, failure = send_slices(s, data, slices)
    back = receive_exactly(s, len(data))
    thread.join(TIMEOUT)
    if failure:
        raise ConformanceFailed(f"sending failed: {failure[0]}")
    return back


def check(expected, received, what):
    problem = mismatch(expected, received)
    if problem:
        raise ConformanceFailed(f"{what}: {problem}")


def round_trips(server, quick):
    """Round trips around the usual buffer sizes on one connection, then nothing extra."""
    sizes = [1, 2, 4095, 4096, 4097, 16384, 65537]
    with connect(server.port, server.host) as s:
        for index, size in enumerate(sizes):
            data = payload(size, 100 + index)
            check(data, echo_concurrently(s, data), f"round trip of {size} bytes")
        nothing_more(s)
    return f"{len(sizes)} round trips of 1 B to 64 KiB + 1 on one connection"


def many_clients(server, quick):
    """Many connections open at once, each echoed its own bytes (a tagged payload of its own size)."""
    count = 100 if quick else 1000
    size = [1 + (i * 7919) % 2048 for i in range(count)]
    sockets, expected, received = [], [], []
    selector = selectors.DefaultSelector()
    try:
        for i in range(count):
            sockets.append(connect(server.port, server.host))
        for i, s in enumerate(sockets):
            data = (struct.pack("!I", i) + payload(size[i], 1000 + i))[:size[i]]
            expected.append(data)
            received.append(bytearray())
            s.sendall(data)  # at most 2 KiB: the socket buffer takes it
            s.setblocking(False)
            selector.register(s, selectors.EVENT_READ, i)
        pending = count
        deadline = time.monotonic() + TIMEOUT + count / 100
        while pending and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.5):
                i = key.data
                chunk = key.fileobj.recv(65536)
                if not chunk:
                    raise ConformanceFailed(f"connection {i} of {count} closed after {len(received[i])} bytes")
                received[i] += chunk
                if len(received[i]) >= len(expected[i]):
                    check(expected[i], bytes(received[i]), f"connection {i} of {count}")
                    selector.unregister(key.fileobj)
                    pending -= 1
        if pending:
            raise ConformanceFailed(f"{pending} of {count} connections got no complete echo in time")
    finally:
        selector.close()
        for s in sockets:
            s.close()
    return f"{count} connections open at once, each echoed its own 1-2048 bytes"


def stream(server, quick):
    """A large stream written from a thread in odd slices while read back, then end of stream."""
    size = 1 * MiB if quick else 8 * MiB
    data = payload(size, 8)
    with connect(server.port, server.host) as s:
        check(data, echo_concurrently(s, data, [65536, 1, 131_072, 4093, 3, 1_000_000, 32768]), "stream")
        s.shutdown(socket.SHUT_WR)
        rest = receive_until_eof(s, 0)
        if rest:
            raise ConformanceFailed(f"{len(rest)} extra bytes after the stream")
    return f"a {size // MiB} MiB stream in odd slices, then end of stream"


def pipelined(server, quick):
    """Messages of random sizes sent back to back, each its own send, without waiting."""
    generator = random.Random(0x5EED_0004)
    sizes = [generator.randint(1, 2000) for _ in range(500 if quick else 5000)]
    data = payload(sum(sizes), 4)
    with connect(server.port, server.host) as s:
        check(data, echo_concurrently(s, data, sizes), "pipelined burst")
        nothing_more(s)
    return f"a pipelined burst of {len(sizes)} messages of 1-2000 B, in order"


def half_close(server, quick):
    """The client shuts down its side after sending: every byte comes back, then end of stream."""
    sizes = [13, 300_000]
    for size in sizes:
        data = payload(size, size)
        with connect(server.port, server.host) as s:
            thread, failure = send_slices(s, data, None, then_shutdown=True)
            echoed = receive_until_eof(s, size)
            thread.join(TIMEOUT)
            if failure:
                raise ConformanceFailed(f"half-close, {size} B: sending failed: {failure[0]}")
            check(data, echoed, f"half-close, {size} B")
    return "half-close at 13 B and 300,000 B: all bytes back, then end of stream"


def resets(server, quick):
    """Clients that reset mid-stream (data in flight), then a fresh client is served in full."""
    count = 30 if quick else 300
    linger = struct.pack("ii", 1, 0)
    for i in range(count):
        with connect(server.port, server.host) as s:
            s.sendall(payload(65536, 600 + i % 7))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)  # close() sends RST
    data = payload(200_000, 6)
    with connect(server.port, server.host) as s:
        check(data, echo_concurrently(s, data), "a fresh client after the resets")
    return f"{count} clients reset mid-stream, then a fresh client echoed 200,000 B"


def ping_pong(server, quick):
    """Sequential round trips of 1-300 B; a lost wake-up shows as one that stalls."""
    generator = random.Random(0x9199)
    slowest = 0.0
    rounds = 200 if quick else 2000
    with connect(server.port, server.host) as s:
        for i in range(rounds):
            message = generator.randbytes(generator.randint(1, 300))
            sent = time.monotonic()
            s.sendall(message)
            check(message, receive_exactly(s, len(message)), f"round trip {i}")
            slowest = max(slowest, time.monotonic() - sent)
    if slowest > 0.5:
        raise ConformanceFailed(f"the slowest of {rounds} round trips took {slowest:.2f} s")
    return f"{rounds} sequential round trips, the slowest {1000 * slowest:.1f} ms"


def kernel_buffering():
    """The most the kernel may hold on one echoed loopback connection: the send and receive buffers
    at both ends (tcp_wmem and tcp_rmem maximums, twice)."""
    total = 0
    for name, default in (("tcp_wmem", 4 * MiB), ("tcp_rmem", 6 * MiB)):
        try:
            with open(f"/proc/sys/net/ipv4/{name}") as f:
                total += 2 * int(f.read().split()[-1])
        except (OSError, ValueError, IndexError):
            total += 2 * default
    return total


class Pattern:
    """A long stream without storing it: a random period of 1 MiB + 7 bytes, repeated."""

    def __init__(self, seed):
        period = payload(MiB + 7, seed)
        self.period, self.doubled = len(period), memoryview(period * 2)

    def at(self, offset, size):
        """`size` bytes (at most one period) from `offset` on."""
        start = offset % self.period
        return self.doubled[start:start + size]


def stuck_client(server, quick):
    """A client that writes and never reads: the server stops reading from it (back-pressure: it may
    hold a bounded pool, here up to 96 MiB beyond what the kernel buffers), other clients are still
    served, and the stuck client gets every byte back once it reads."""
    limit = kernel_buffering() + 96 * MiB
    pattern = Pattern(71)
    with connect(server.port, server.host) as stuck:
        stuck.setblocking(False)
        written, last_progress = 0, time.monotonic()
        while time.monotonic() - last_progress < 0.3:
            if written >= limit:
                raise ConformanceFailed(f"the server took {written // MiB} MiB from a client that reads nothing")
            try:
                written += stuck.send(pattern.at(written, 65536))
                last_progress = time.monotonic()
            except BlockingIOError:
                select.select([], [stuck], [], 0.05)
        stuck.settimeout(TIMEOUT)
        started = time.monotonic()
        other = payload(1 * MiB, 72)
        with connect(server.port, server.host) as s:
            check(other, echo_concurrently(s, other), "another client while one is stuck")
        elapsed = time.monotonic() - started
        if elapsed > TIMEOUT:
            raise ConformanceFailed(f"another client took {elapsed:.1f} s while one was stuck")
        received = 0
        while received < written:
            chunk = receive_exactly(stuck, min(65536, written - received))
            check(pattern.at(received, len(chunk)), chunk, f"the stuck client's bytes from offset {received}")
            received += len(chunk)
    return f"a client stuck after {written / MiB:.1f} MiB held nobody up and got every byte back"


def connections_released(server, quick):
    """After many connect/close cycles the server holds no connection (only its listener)."""
    cycles, settle = (100, 2.0) if quick else (1000, TIMEOUT)
    for i in range(cycles):
        with connect(server.port, server.host) as s:
            s.sendall(b"x")
            receive_exactly(s, 1)
    deadline = time.monotonic() + settle
    while True:
        held = procfs.tcp_connections(server.pid, server.port)
        if held == 0:
            return f"{cycles} connect/close cycles: every connection released"
        if time.monotonic() > deadline:
            raise ConformanceFailed(f"{held} connection(s) still held {settle:g} s after {cycles} connect/close cycles")
        time.sleep(0.05)


CASES = [round_trips, many_clients, stream, pipelined, half_close, resets, ping_pong, stuck_client,
         connections_released]
# The runner's check before measuring a peer: well under a second.
QUICK = [round_trips, many_clients, stream, half_close, resets]


def run(server, cases=None, quick=False):
    """Runs `cases` (default all) against the running server; [(name, what it verified)].
    ConformanceFailed names the case that failed."""
    done = []
    for case in cases or CASES:
        try:
            done.append((case.__name__, case(server, quick)))
        except ConformanceFailed as e:
            raise ConformanceFailed(f"{case.__name__.replace('_', ' ')}: {e}") from None
        except OSError as e:
            raise ConformanceFailed(f"{case.__name__.replace('_', ' ')}: {e}") from None
    return done
