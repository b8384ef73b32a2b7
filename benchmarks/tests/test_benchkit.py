"""The kit's plumbing: the variant table, text helpers, the runner's plan, and the shared server
lifecycle (readiness, the SIGUSR1 statistics protocol, stop) against a small stand-in server."""

import os
import sys
import tempfile
import textwrap
import unittest

from benchkit import options, runner, server, soak, text, variants

# A stand-in for echo: listens on argv[1], writes {"n": K} to argv[2] (PATH.tmp, renamed over PATH)
# once listening and on each SIGUSR1, exits 0 on SIGTERM.
FAKE = textwrap.dedent("""
    import json, os, signal, socket, sys, time
    port, path = int(sys.argv[1]), sys.argv[2]
    count = [0]
    def write(*_):
        count[0] += 1
        with open(path + ".tmp", "w") as f:
            json.dump({"n": count[0]}, f)
        os.rename(path + ".tmp", path)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen()
    signal.signal(signal.SIGUSR1, write)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    write()
    while True:
        time.sleep(1)
""")


class VariantTests(unittest.TestCase):
    def test_aliases_and_flags(self):
        self.assertIs(variants.lookup("uring-bundle"), variants.BUILTIN["uring-multishot-defer-bundle"])
        self.assertEqual(variants.echo_flags("uring"), ["--backend", "uring"])
        self.assertEqual(variants.lookup("uring-bundle").option("--uring-mode", None), "bundle")
        with self.assertRaises(ValueError):
            variants.echo_flags("nio")
        with self.assertRaises(KeyError):
            variants.lookup("nope")

    def test_echo_variants_are_loaded_from_echo(self):
        names = [v.name for v in variants.ECHO_VARIANTS]
        self.assertEqual(names[:4], ["uring", "epoll", "blocking-threaded", "blocking-naive"])
        self.assertEqual(len(set(names)), len(names))
        for v in variants.ECHO_VARIANTS:
            self.assertFalse(v.is_peer, v.name)
            self.assertEqual(v.flags[0], "--backend", v.name)
            self.assertFalse(set(v.flags) & set(variants.RESERVED_FLAGS), v.name)
            self.assertTrue(v.parent is None or v.parent in names[:names.index(v.name)], v.name)
        # A stated design: the default's row requires incremental buffers, the default does not.
        self.assertIn("--incremental-buffers", variants.echo_flags("uring-multishot-defer-inc"))
        self.assertEqual(variants.BUILTIN["uring-multishot"].parent, "uring-legacy")

    def test_ablation_chains_follow_the_parents(self):
        self.assertEqual(variants.ABLATION_LADDER[:5], ["uring-legacy", "uring-multishot", "uring-multishot-defer",
                                                        "uring-multishot-defer-64k", "uring-multishot-defer-inc"])
        self.assertEqual(variants.ABLATION_LADDER[-2:], ["uring-splice-poll", "uring-splice-linked"])
        self.assertEqual(len(variants.ABLATION_LADDER), 11)
        self.assertEqual(variants.ABLATION_REFERENCE, ["epoll", "epoll-edge", "epoll-splice"])

    def test_ablation_names_are_builtin(self):
        for name in variants.ABLATION_LADDER + variants.ABLATION_REFERENCE + list(variants.C_FLOOR):
            self.assertIn(name, variants.BUILTIN)
        self.assertTrue(variants.BUILTIN["blocking-naive"].serves_one_client)
        self.assertFalse(variants.BUILTIN["blocking-threaded"].serves_one_client)


class SoakBackendTests(unittest.TestCase):
    def test_a_new_variant_is_soakable_and_one_client_loops_are_not(self):
        table = variants.ECHO_VARIANTS + [variants.Variant("uring-new", ["--backend", "uring", "--sqpoll"], "new")]
        names = soak.soak_backends(table, {"new-alias": "uring-new", "naive-alias": "blocking-naive"})
        self.assertIn("uring-new", names)
        self.assertIn("new-alias", names)
        self.assertNotIn("blocking-naive", names)
        self.assertNotIn("naive-alias", names)
        self.assertEqual(len(set(names)), len(names))

    def test_the_soak_takes_every_concurrent_echo_variant(self):
        concurrent = {v.name for v in variants.ECHO_VARIANTS if not v.serves_one_client}
        self.assertEqual(set(soak.BACKENDS) - set(variants.ALIASES), concurrent)
        for name in soak.BACKENDS:
            self.assertTrue(variants.echo_flags(name), name)
        self.assertIn("uring-bundle", soak.BACKENDS)
        self.assertNotIn(variants.NIO, soak.BACKENDS)


class TextTests(unittest.TestCase):
    def test_text(self):
        self.assertEqual(text.duration_text(59.6), "1m00s")
        self.assertEqual(text.duration_text(3725), "1h02m")
        self.assertEqual(text.fmt(None), "–")
        self.assertEqual(text.fmt(1234.5, 1), "1,234.5")
        self.assertEqual(text.md_cell("a|b"), "a\\|b")
        self.assertEqual(text.percent(0.0171, 2), "1.71 %")


class PlanTests(unittest.TestCase):
    def test_quick_plan_alternates(self):
        o = options.parse_options(["--quick", "--rounds", "2", "--backends", "uring,epoll,blocking-naive"])
        runs = [(k, point.key, length, connections, server) for k, point, length, connections, server in runner.plan(o)]
        self.assertEqual(runs[:3], [(1, "pingpong", 128, 1, "uring"), (1, "pingpong", 128, 1, "epoll"),
                                    (1, "pingpong", 128, 1, "blocking-naive")])
        self.assertNotIn((1, "pingpong", 128, 50, "blocking-naive"), runs)
        self.assertEqual(runs[5], (2, "pingpong", 128, 1, "blocking-naive"))  # order flipped in round 2


class ServerTests(unittest.TestCase):
    def test_lifecycle(self):
        with tempfile.TemporaryDirectory() as d:
            script, stats = os.path.join(d, "fake.py"), os.path.join(d, "stats.json")
            with open(script, "w") as f:
                f.write(FAKE)
            s = server.Server(lambda port: [sys.executable, script, str(port), stats], os.path.join(d, "log"),
                              name="fake", stats_path=stats, start_timeout=20)
            s.start()
            try:
                self.assertTrue(server.can_connect(s.port))
                first = s.statistics()["n"]
                self.assertEqual(s.statistics()["n"], first + 1)
            finally:
                status = s.stop()
            self.assertEqual(status, 0)
            self.assertFalse(s.running())

    def test_start_failure_names_the_output(self):
        with tempfile.TemporaryDirectory() as d:
            s = server.Server(lambda port: [sys.executable, "-c", "print('no luck'); raise SystemExit(3)"],
                              os.path.join(d, "log"), name="broken", start_timeout=10)
            with self.assertRaises(server.ServerFailed) as caught:
                s.start()
            self.assertIn("no luck", str(caught.exception))
            self.assertIn("status 3", str(caught.exception))


if __name__ == "__main__":
    unittest.main()
