"""--path veth: two namespaces joined by a veth pair, the server reachable at 198.18.0.2 from the
load's namespace, pinned and sampled by PID from outside, and both namespaces gone afterwards, on an
error too. Needs root and ip: skipped (with the reason) otherwise."""

import os
import socket
import sys
import tempfile
import unittest

from benchkit import netpath, procfs
from benchkit.server import Server

WHY_NOT = netpath.problem()
# A stand-in server: echoes one message per connection, on the address and port it is given.
ECHO_ONCE = ("import socket, sys\n"
             "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
             "s.bind((sys.argv[1], int(sys.argv[2]))); s.listen()\n"
             "while True:\n"
             "    c, _ = s.accept(); c.sendall(c.recv(64)); c.close()\n")


@unittest.skipIf(WHY_NOT, WHY_NOT)
class VethTests(unittest.TestCase):
    def test_server_in_its_namespace_reached_over_the_veth(self):
        home = os.readlink("/proc/thread-self/ns/net")
        with tempfile.TemporaryDirectory() as d, netpath.Veth(tag=f"t{os.getpid()}") as net:
            names = netpath.namespaces()
            self.assertIn(net.server_ns, names)
            self.assertIn(net.load_ns, names)
            self.assertNotEqual(os.readlink("/proc/thread-self/ns/net"), home, "the runner is in the load's namespace")
            server = Server(lambda port: [sys.executable, "-c", ECHO_ONCE, net.server_host, str(port)],
                            os.path.join(d, "log"), cpus="0", host=net.server_host, prefix=net.server_prefix,
                            start_timeout=5)
            server.start()
            try:
                with socket.create_connection((net.server_host, server.port), timeout=3) as c:
                    self.assertEqual(c.getsockname()[0], netpath.LOAD_ADDRESS)
                    c.sendall(b"over the veth")
                    self.assertEqual(c.recv(64), b"over the veth")
                self.assertEqual(os.sched_getaffinity(server.pid), {0}, "taskset still pins it")
                with open(f"/proc/{server.pid}/comm") as f:
                    self.assertIn("python", f.read(), "the PID is the server's")
                procfs.cpu_times(server.pid)  # sampled by PID across the namespace
                self.assertNotEqual(os.readlink(f"/proc/{server.pid}/ns/net"), os.readlink("/proc/thread-self/ns/net"))
                with self.assertRaises(OSError, msg="not on the load's loopback: in a namespace of its own"):
                    socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
            finally:
                server.stop()
        self.assertEqual(os.readlink("/proc/thread-self/ns/net"), home)
        self.assertFalse({net.server_ns, net.load_ns} & set(netpath.namespaces()))

    def test_namespaces_go_on_an_error_and_stale_ones_are_removed(self):
        net = netpath.Veth(tag=f"e{os.getpid()}")
        with self.assertRaises(RuntimeError):
            with net:
                raise RuntimeError("a run failed")
        self.assertFalse({net.server_ns, net.load_ns} & set(netpath.namespaces()))
        stale = f"{netpath.NAMESPACE_PREFIX}srv-999999999"  # a runner that was killed: no such PID
        netpath.ip("netns", "add", stale)
        netpath.remove_stale()
        self.assertNotIn(stale, netpath.namespaces())


if __name__ == "__main__":
    unittest.main()
