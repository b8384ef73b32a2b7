"""Every peer passes the conformance cases (benchkit/conformance.py), over real loopback sockets
with every byte compared: built with its own build script and started as the runner starts it.

A peer whose toolchain is missing is skipped, with the reason (`make peer-deps` installs Go,
cargo and Debian's tokio). The SwiftNIO peers take minutes to build, so they run here only when
benchmarks/run has built them. The cases themselves must fail on a server that is wrong: three
broken echo servers show that they do."""

import json
import os
import resource
import sys
import tempfile
import textwrap
import unittest
from unittest import mock

from benchkit import build, conformance, peers
from benchkit.options import parse_options
from benchkit.server import Server

# Built by benchmarks/run, not here: a first SwiftNIO build takes 1-2 minutes (nio-uring: the same
# to find that it does not compile), too long for the test suite.
BUILT_BY_THE_RUNNER = {"nio", "nio-uring"}
THREADS = 2  # the multi-thread peers' threads here


def setUpModule():
    # 1000 connections at once, both ends in this process's view: as many descriptors as allowed.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class PeerConformance:
    """One peer, started once for all its cases; the subclasses below name the peer."""

    peer = None
    built = {}  # (builder, binary) -> Built: tokio and tokio-mt, go and go-mt share one build

    @classmethod
    def setUpClass(cls):
        peer = peers.BY_NAME[cls.peer]
        key = (peer.builder, peer.binary)
        try:
            if key not in PeerConformance.built:
                PeerConformance.built[key] = peers.build(peer, lambda text: None,
                                                         no_build=cls.peer in BUILT_BY_THE_RUNNER)
        except peers.PeerBuildFailed as e:
            if cls.peer in BUILT_BY_THE_RUNNER:
                raise unittest.SkipTest(f"{cls.peer} is not built (benchmarks/run --peers {cls.peer} builds it)")
            raise
        outcome = PeerConformance.built[key]
        if outcome.skipped:
            raise unittest.SkipTest(f"{cls.peer}: {outcome.skipped}")
        cls.folder = tempfile.TemporaryDirectory(prefix=f"peer-{cls.peer}-")
        cls.server = Server(lambda port: peer.command(port, THREADS), os.path.join(cls.folder.name, "server.log"),
                            name=cls.peer, start_timeout=10)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.folder.cleanup()

    def check(self, case):
        try:
            conformance.run(self.server, [case])
        except conformance.ConformanceFailed as e:
            self.fail(f"{self.peer}: {e}\nserver log: {self.server.log_tail()}")
        self.assertTrue(self.server.running(), f"{self.peer} exited: {self.server.log_tail()}")

    def test_stops_with_status_0_on_sigterm_with_a_client_connected(self):
        peer = peers.BY_NAME[self.peer]
        with tempfile.TemporaryDirectory() as folder:
            server = Server(lambda port: peer.command(port, THREADS), os.path.join(folder, "log"), name=self.peer)
            server.start()
            with conformance.connect(server.port) as client:
                client.sendall(b"ping")
                self.assertEqual(conformance.receive_exactly(client, 4), b"ping")
                self.assertEqual(server.stop(timeout=5), 0, server.log_tail())


# What a peer is known to get wrong, and why; the test expects the failure, so a fix shows up as an
# unexpected success (a failure of the suite) and this entry goes.
KNOWN_FAILURES = {
    ("c-uring", "stuck_client"): "one 64 MiB buffer pool shared by every connection: a client that never "
                                 "reads fills it, and every other connection then waits for buffers (-ENOBUFS)",
}


def case_test(peer, case):
    def test(self):
        self.check(case)
    test.__doc__ = f"{peer}: {case.__doc__.splitlines()[0]}"
    if (peer, case.__name__) in KNOWN_FAILURES:
        test.__doc__ += f" (known to fail: {KNOWN_FAILURES[peer, case.__name__]})"
        return unittest.expectedFailure(test)
    return test


# One TestCase per peer in the table, e.g. TokioMtConformance, with one test per case.
for _peer in peers.NAMES:
    _name = "".join(part.capitalize() for part in _peer.split("-")) + "Conformance"
    globals()[_name] = type(_name, (PeerConformance, unittest.TestCase), dict(
        {f"test_{case.__name__}": case_test(_peer, case) for case in conformance.CASES}, peer=_peer))

# An echo server with one bug, chosen by argv[2]: flip (one byte changed at offset 5000 of each
# connection), truncate (closes after 65536 bytes), leak (never closes a connection).
BROKEN = textwrap.dedent("""
    import signal, socket, sys, threading
    port, bug = int(sys.argv[1]), sys.argv[2]
    held = []
    def serve(c):
        seen = 0
        while True:
            data = c.recv(65536)
            if not data:
                break
            if bug == "flip" and seen <= 5000 < seen + len(data):
                data = bytearray(data)
                data[5000 - seen] ^= 1
            if bug == "truncate" and seen + len(data) > 65536:
                break
            c.sendall(data)
            seen += len(data)
        if bug == "leak":
            held.append(c)
        else:
            c.close()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(4096)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
""")


class BrokenServers(unittest.TestCase):
    """The cases catch a server that corrupts, drops or leaks."""

    def caught(self, bug, cases):
        with tempfile.TemporaryDirectory() as folder:
            server = Server(lambda port: [sys.executable, "-c", BROKEN, str(port), bug], os.path.join(folder, "log"),
                            name=bug)
            server.start()
            try:
                with self.assertRaises(conformance.ConformanceFailed) as failure:
                    conformance.run(server, cases, quick=True)
                return str(failure.exception)
            finally:
                server.stop()

    def test_a_flipped_byte_fails_the_runners_check(self):
        self.assertIn("first difference at byte", self.caught("flip", conformance.QUICK))

    def test_a_truncated_stream_fails(self):
        self.assertIn("stream", self.caught("truncate", [conformance.stream]))

    def test_leaked_connections_fail(self):
        self.assertIn("still held", self.caught("leak", [conformance.connections_released]))


class PeerTable(unittest.TestCase):
    """How peers are started, skipped and remembered, without building anything."""

    def test_multi_thread_peers_get_one_thread_per_server_cpu(self):
        self.assertIn("GOMAXPROCS=4", peers.BY_NAME["go-mt"].command(7000, 4))
        self.assertIn("GOMAXPROCS=1", peers.BY_NAME["go"].command(7000, 4))
        argv = peers.BY_NAME["tokio-mt"].command(7000, 4)
        self.assertEqual(argv[argv.index("--threads") + 1], "4")
        self.assertNotIn("--threads", peers.BY_NAME["tokio"].command(7000, 4))
        self.assertNotIn("--host", peers.BY_NAME["c-epoll"].command(7000))
        self.assertEqual(parse_options(["--quick", "--server-cpus", "0", "--load-cpus", "1"]).server_threads, 1)

    def test_a_missing_toolchain_skips_the_peer_and_leaves_the_run(self):
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "build.sh"), "w") as f:
                f.write('echo "frobc not found (make peer-deps installs it)" >&2\nexit 3\n')
            fake = peers.Peer("tokio", "a peer whose toolchain is missing", folder, "build/none", peers.build_script)
            o = parse_options(["--quick", "--peers", "tokio,go", "--no-build"])
            with mock.patch.dict(peers.BY_NAME, {"tokio": fake, "go": fake}):
                o.no_build = False
                build.build_peers(o)
        self.assertEqual(o.peer_builds["tokio"].skipped, "frobc not found (make peer-deps installs it)")
        self.assertEqual(o.peers, [])
        self.assertEqual(o.servers, ["uring", "epoll"])

    def test_nio_uring_is_tried_once_per_swift_nio_version(self):
        errors = peers.compile_errors(
            "/x/.build-uring/checkouts/swift-nio/Sources/NIOPosix/SelectorUring.swift:201:46: error: cannot find "
            "'selectable' in scope\n    |  `- error: repeated caret line\n"
            "/x/.build-uring/checkouts/swift-nio/Sources/NIOPosix/SelectorUring.swift:201:46: error: cannot find "
            "'selectable' in scope\n")
        self.assertEqual(errors, ["swift-nio/Sources/NIOPosix/SelectorUring.swift:201:46: cannot find 'selectable' in scope"])
        with tempfile.TemporaryDirectory() as folder:
            outcome = os.path.join(folder, "outcome.json")
            with open(outcome, "w") as f:
                json.dump({"swift_nio": "2.101.3", "built": False, "errors": errors}, f)
            with mock.patch.object(peers, "NIO_URING_OUTCOME", outcome), \
                    mock.patch.object(peers, "nio_version", lambda: "2.101.3"):
                skipped = peers.build_nio_uring(peers.BY_NAME["nio-uring"], lambda text: self.fail(text), False).skipped
            self.assertIn("does not build on swift-nio 2.101.3: 1 compile error(s)", skipped)
            with mock.patch.object(peers, "NIO_URING_OUTCOME", outcome), \
                    mock.patch.object(peers, "nio_version", lambda: "2.102.0"):
                self.assertIsNone(peers.build_nio_uring(peers.BY_NAME["nio-uring"], print, True).skipped)


if __name__ == "__main__":
    unittest.main()
