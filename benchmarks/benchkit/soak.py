"""Bounded soak test for the echo server: a mixed workload for minutes, every byte verified,
the server's RSS and descriptor count watched for upward trends.

    benchmarks/soak                               10 minutes, uring, 200 clients
    benchmarks/soak --seconds 30 --backend epoll  a short run
    benchmarks/soak --minutes 60 --out /tmp/soak  writes soak.json and soak.csv there

Backends: every echo variant of the kit that serves many clients at once (benchmarks/run --help
lists them; blocking-naive serves one), and uring-bundle for uring-multishot-defer-bundle. The
server is `echo` (--echo PATH, default .build/release/echo if present, else .build/debug/echo),
started on 127.0.0.1 on a free port with --quiet and stopped with SIGTERM at the end (it must
exit 0).

One process drives every client with non-blocking sockets and a selector:
  * message sizes from 1 B to 64 KiB (log-uniform, random per message), random write chunking
    and random read sizes;
  * pipelining: each connection keeps 1-8 messages in flight;
  * churn: each connection closes after a random number of messages and is replaced; closes are
    graceful (shutdown, then EOF expected with nothing more), graceful with echoes still in
    flight (they must all arrive before EOF), abrupt RST (SO_LINGER {1, 0}) when idle, or RST with
    data in flight;
  * a few slow readers that read small amounts with delays, so the server sees back-pressure.
Every byte a connection receives is compared with what it sent, in order.

Each second it samples the server's VmRSS and open descriptors and prints a progress line. It
fails (exit 1, one line starting with FAIL) if a byte differs, bytes go missing or arrive extra,
the server resets a connection or dies or does not exit 0 on SIGTERM, a connection stalls, or RSS
or fds trend upward: the median of the last third of the samples against the median of the middle
third (the first third is warm-up); fds may grow by max(16, 2% of clients), RSS by 20% + 2 MiB.
The fds counted leave pipes out (--splice): how many pipes are open follows how many connections
are moving bytes at that moment, within the pipe pool's own bound; they are shown apart.
"""

import argparse
import collections
import errno
import json
import os
import random
import selectors
import shlex
import signal
import socket
import sys
import tempfile
import time

from benchkit import environment
from benchkit.paths import ECHO_DEBUG, default_echo
from benchkit.processes import die_with_parent
from benchkit.procfs import fd_count, pipe_count, status_kib
from benchkit.server import Server, ServerFailed, free_port
from benchkit.stats import median
from benchkit.variants import ALIASES, ECHO_VARIANTS, echo_flags


def soak_backends(echo_variants, aliases):
    """The names `--backend` takes: every echo variant that serves many clients at once, in the
    table's order, then the aliases of those. A variant added to echo's table is soakable with no
    edit here; the naive blocking loop is not, since it serves one client while the rest wait."""
    names = [v.name for v in echo_variants if not v.serves_one_client]
    return names + [alias for alias, name in aliases.items() if name in names]


BACKENDS = soak_backends(ECHO_VARIANTS, ALIASES)

MAX_MESSAGE = 64 * 1024
STALL_SECONDS = 30.0
DRAIN_SECONDS = 30.0
CONNECTS_PER_SECOND = 400


class SoakFailure(Exception):
    pass


class Terminated(BaseException):
    pass


class Client:
    __slots__ = ("id", "sock", "state", "slow", "depth", "max_msgs", "close_mode", "sent_msgs",
                 "sendbuf", "expected", "inflight", "next_read", "last_progress", "events",
                 "received")

    def __init__(self, cid, sock, rng, slow):
        self.id = cid
        self.sock = sock
        self.state = "connecting"  # connecting, open, finwait
        self.slow = slow
        self.depth = rng.randint(1, 8)
        r = rng.random()
        if r < 0.3:
            self.max_msgs = rng.randint(1, 10)
        elif r < 0.8:
            self.max_msgs = rng.randint(10, 200)
        else:
            self.max_msgs = rng.randint(200, 3000)
        if slow:
            self.max_msgs = min(self.max_msgs, rng.randint(5, 60))
        r = rng.random()
        self.close_mode = ("fin" if r < 0.55 else "fin-inflight" if r < 0.7
                           else "rst" if r < 0.85 else "rst-inflight")
        self.sent_msgs = 0
        self.sendbuf = bytearray()
        self.expected = bytearray()
        self.inflight = collections.deque()  # remaining bytes of each message still to come back
        self.next_read = 0.0
        self.last_progress = time.monotonic()
        self.events = 0
        self.received = 0


class Soak:
    def __init__(self, args, port):
        self.args = args
        self.port = port
        self.rng = random.Random(args.seed)
        self.pool = self.rng.randbytes(1 << 20) + self.rng.randbytes(MAX_MESSAGE)
        self.sel = selectors.DefaultSelector()
        self.clients = {}
        self.next_id = 0
        self.opened = 0
        self.closed = 0
        self.rst_closes = 0
        self.messages = 0
        self.bytes_verified = 0
        self.bytes_sent = 0
        self.draining = False
        self.connect_budget = 0.0
        self.budget_time = time.monotonic()

    # --- connections -----------------------------------------------------------------------
    def open_client(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        slow = self.rng.random() < self.args.slow_fraction
        if slow:
            # Small buffers so back-pressure reaches the server quickly.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        rc = s.connect_ex(("127.0.0.1", self.port))
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            raise SoakFailure(f"connect to 127.0.0.1:{self.port} failed: {os.strerror(rc)}")
        c = Client(self.next_id, s, self.rng, slow)
        self.next_id += 1
        self.opened += 1
        self.clients[s.fileno()] = c
        c.events = selectors.EVENT_WRITE
        self.sel.register(s, c.events, c)

    def update_interest(self, c):
        ev = 0
        if c.state == "connecting" or (c.sendbuf and c.state == "open"):
            ev |= selectors.EVENT_WRITE
        if c.state != "connecting" and not c.slow:
            ev |= selectors.EVENT_READ
        if ev != c.events:
            if c.events == 0:
                self.sel.register(c.sock, ev, c)
            elif ev == 0:
                self.sel.unregister(c.sock)
            else:
                self.sel.modify(c.sock, ev, c)
            c.events = ev

    def drop(self, c, rst):
        if c.events:
            self.sel.unregister(c.sock)
            c.events = 0
        del self.clients[c.sock.fileno()]
        if rst:
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.rst_closes += 1
        c.sock.close()
        self.closed += 1

    # --- workload --------------------------------------------------------------------------
    def new_message(self, c):
        size = min(MAX_MESSAGE, max(1, int(2 ** self.rng.uniform(0, 16.01))))
        off = self.rng.randrange(0, len(self.pool) - size)
        data = self.pool[off:off + size]
        c.sendbuf += data
        c.expected += data
        c.inflight.append(size)
        c.sent_msgs += 1

    def advance(self, c):
        """Queues new messages, or starts closing once the connection has sent its share."""
        if c.state != "open":
            return
        if self.draining:
            c.max_msgs = min(c.max_msgs, c.sent_msgs)
        while len(c.inflight) < c.depth and c.sent_msgs < c.max_msgs:
            self.new_message(c)
        if c.sent_msgs >= c.max_msgs:
            mode = c.close_mode
            if mode == "rst-inflight" or (mode == "rst" and not c.inflight):
                self.drop(c, rst=True)
                return
            if not c.sendbuf and (mode == "fin-inflight" or not c.inflight):
                c.sock.shutdown(socket.SHUT_WR)
                c.state = "finwait"
        self.update_interest(c)

    def on_writable(self, c, now):
        if c.state == "connecting":
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise SoakFailure(f"connection {c.id}: connect failed: {os.strerror(err)}")
            c.state = "open"
            c.last_progress = now
            self.advance(c)
            return
        for _ in range(4):
            if not c.sendbuf:
                break
            n = len(c.sendbuf)
            if self.rng.random() < 0.5:
                n = self.rng.randint(1, n)
            try:
                sent = c.sock.send(memoryview(c.sendbuf)[:n])
            except BlockingIOError:
                break
            except (ConnectionResetError, BrokenPipeError) as e:
                raise SoakFailure(f"connection {c.id}: send failed: {e} (server reset the connection)")
            del c.sendbuf[:sent]
            self.bytes_sent += sent
            c.last_progress = now
            if sent < n:
                break
        self.advance(c)

    def on_readable(self, c, now, limit=None):
        size = limit or (65536 if self.rng.random() < 0.7 else self.rng.randint(1, 65536))
        try:
            data = c.sock.recv(size)
        except BlockingIOError:
            return
        except ConnectionResetError as e:
            raise SoakFailure(f"connection {c.id}: recv failed: {e} (server reset the connection; "
                              f"{len(c.expected)} bytes still expected)")
        if not data:
            if c.expected:
                raise SoakFailure(f"connection {c.id}: EOF with {len(c.expected)} bytes never echoed "
                                  f"(after {c.received} bytes, state {c.state})")
            if c.state != "finwait":
                raise SoakFailure(f"connection {c.id}: the server closed the connection unasked "
                                  f"after {c.received} bytes")
            self.drop(c, rst=False)
            return
        n = len(data)
        if n > len(c.expected):
            raise SoakFailure(f"connection {c.id}: {n - len(c.expected)} extra bytes at offset "
                              f"{c.received + len(c.expected)}")
        if c.expected[:n] != data:
            i = next(i for i in range(n) if c.expected[i] != data[i])
            raise SoakFailure(f"connection {c.id}: byte {c.received + i} differs: sent "
                              f"0x{c.expected[i]:02x}, received 0x{data[i]:02x}")
        del c.expected[:n]
        c.received += n
        self.bytes_verified += n
        c.last_progress = now
        left = n
        while left and c.inflight:
            if c.inflight[0] <= left:
                left -= c.inflight.popleft()
                self.messages += 1
            else:
                c.inflight[0] -= left
                left = 0
        self.advance(c)

    def top_up(self, now):
        self.connect_budget = min(CONNECTS_PER_SECOND, self.connect_budget +
                                  (now - self.budget_time) * CONNECTS_PER_SECOND)
        self.budget_time = now
        while len(self.clients) < self.args.clients and self.connect_budget >= 1:
            self.connect_budget -= 1
            self.open_client()

    def step(self, timeout):
        now = time.monotonic()
        if not self.draining:
            self.top_up(now)
        for key, mask in self.sel.select(timeout):
            c = key.data
            if c.sock.fileno() not in self.clients or self.clients[c.sock.fileno()] is not c:
                continue
            if mask & selectors.EVENT_WRITE:
                self.on_writable(c, now)
            if mask & selectors.EVENT_READ and c.events and c.sock.fileno() in self.clients:
                self.on_readable(c, now)
        now = time.monotonic()
        for c in list(self.clients.values()):
            if c.slow and c.state != "connecting" and now >= c.next_read:
                if self.draining:
                    c.slow = False
                    self.update_interest(c)
                else:
                    c.next_read = now + self.rng.uniform(0.02, 0.3)
                    self.on_readable(c, now, limit=self.rng.randint(1, 8192))

    def check_stalls(self, now):
        for c in self.clients.values():
            waiting = c.expected or c.sendbuf or c.state in ("connecting", "finwait")
            if waiting and now - c.last_progress > STALL_SECONDS:
                raise SoakFailure(f"connection {c.id} stalled for {STALL_SECONDS:.0f} s (state "
                                  f"{c.state}, {len(c.expected)} bytes expected, {len(c.sendbuf)} to send)")

    def start_drain(self):
        self.draining = True
        for c in list(self.clients.values()):
            if c.state == "connecting":
                continue
            if c.slow:
                c.slow = False
                self.update_interest(c)
            self.advance(c)

    def close_all(self):
        for c in list(self.clients.values()):
            try:
                self.drop(c, rst=False)
            except OSError:
                pass


def main():
    p = argparse.ArgumentParser(description="Bounded soak test for the echo server.",
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--minutes", type=float)
    g.add_argument("--seconds", type=float)
    p.add_argument("--backend", choices=sorted(BACKENDS), default="uring")
    p.add_argument("--echo", help="the echo executable (default .build/release/echo, else .build/debug/echo)")
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--out", help="directory for soak.json and soak.csv")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    p.add_argument("--slow-fraction", type=float, default=0.02, help=argparse.SUPPRESS)
    # Testing the tester: a server command instead of echo, with {port} in it.
    p.add_argument("--server-command", help=argparse.SUPPRESS)
    args = p.parse_args()
    duration = args.seconds if args.seconds is not None else 60 * (args.minutes if args.minutes is not None else 10)
    if duration <= 0 or args.clients < 1:
        p.error("the duration and --clients must be positive")
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 32)

    echo = args.echo or default_echo() or ECHO_DEBUG
    if args.server_command:
        def command_for(port):
            return [w.replace("{port}", str(port)) for w in shlex.split(args.server_command)]
        label = "custom"
    else:
        if not os.access(echo, os.X_OK):
            print(f"FAIL: no echo executable at {echo} (build with: swift build --product echo)")
            return 1
        flags = echo_flags(args.backend)

        def command_for(port):
            return [echo] + flags + ["--host", "127.0.0.1", "--port", str(port), "--quiet"]
        label = args.backend
    port = free_port()
    command = command_for(port)
    where = environment.gather(echo)
    print(environment.console_line(where), flush=True)

    def on_term(signum, frame):
        raise Terminated()
    signal.signal(signal.SIGTERM, on_term)

    workdir = tempfile.TemporaryDirectory(prefix="soak-")
    server = Server(command_for, os.path.join(workdir.name, "server.log"), name=f"the {label} server",
                    preexec_fn=die_with_parent, start_timeout=10)
    soak = None
    samples = []
    failure = None
    exit_status = None
    started = time.monotonic()
    try:
        print(f"soak: {label} server `{' '.join(command)}`, {args.clients} clients, {duration:g} s, seed {args.seed}",
              flush=True)
        try:
            server.start(port)
        except ServerFailed as e:
            raise SoakFailure(str(e))
        command, port = server.argv, server.port

        soak = Soak(args, port)
        begin = time.monotonic()
        end = begin + duration
        next_sample = begin
        drain_deadline = None
        iterations = 0
        max_iterations = int((duration + DRAIN_SECONDS + 10) * 20000)  # a hard bound on the loop
        while True:
            iterations += 1
            if iterations > max_iterations:
                raise SoakFailure("the event loop ran past its bound")
            now = time.monotonic()
            if now >= next_sample:
                if not server.running():
                    raise SoakFailure(f"the server died (status {server.process.returncode})")
                try:
                    rss, pipes = status_kib(server.pid, "VmRSS"), pipe_count(server.pid)
                    fds = fd_count(server.pid) - pipes
                except OSError as e:
                    raise SoakFailure(f"cannot read /proc/{server.pid}: {e}")
                sample = {"t": round(now - begin, 3), "bytes_verified": soak.bytes_verified,
                          "messages": soak.messages, "opened": soak.opened, "closed": soak.closed,
                          "open": len(soak.clients), "rss_kib": rss, "fds": fds, "pipes": pipes}
                if drain_deadline is None:
                    samples.append(sample)
                print(f"[{now - begin:6.1f}s] verified {soak.bytes_verified / 1048576:9.1f} MiB  "
                      f"messages {soak.messages:8d}  conns opened {soak.opened:6d} closed {soak.closed:6d}  "
                      f"rss {rss} KiB  fds {fds}" + (f"  pipes {pipes}" if pipes else ""), flush=True)
                soak.check_stalls(now)
                next_sample += 1.0
                if next_sample < now:
                    next_sample = now + 1.0
            if drain_deadline is None and now >= end:
                soak.start_drain()
                drain_deadline = now + DRAIN_SECONDS
            if drain_deadline is not None:
                if not soak.clients:
                    break
                if now > drain_deadline:
                    raise SoakFailure(f"{len(soak.clients)} connections did not finish within "
                                      f"{DRAIN_SECONDS:.0f} s after the workload stopped")
            soak.step(max(0.0, min(0.02, next_sample - time.monotonic())))

        # Stop the server: SIGTERM, exit 0 expected.
        exit_status = server.stop(timeout=15)
        if exit_status == "killed":
            exit_status = server.process.returncode
            raise SoakFailure("the server did not exit within 15 s of SIGTERM")
        if exit_status != 0:
            raise SoakFailure(f"the server exited with status {exit_status} after SIGTERM")

        # Trends: the last third against the middle third.
        third = len(samples) // 3
        if third >= 1:
            middle, last = samples[third:2 * third], samples[2 * third:]
            fd_mid, fd_last = median([s["fds"] for s in middle]), median([s["fds"] for s in last])
            rss_mid, rss_last = median([s["rss_kib"] for s in middle]), median([s["rss_kib"] for s in last])
            fd_allow = max(16, 0.02 * args.clients)
            rss_allow = 0.2 * rss_mid + 2048
            if fd_last - fd_mid > fd_allow:
                raise SoakFailure(f"descriptors trend upward: median {fd_mid:.0f} (middle third) -> "
                                  f"{fd_last:.0f} (last third), more than {fd_allow:.0f}")
            if rss_last - rss_mid > rss_allow:
                raise SoakFailure(f"RSS trends upward: median {rss_mid:.0f} KiB (middle third) -> "
                                  f"{rss_last:.0f} KiB (last third), more than {rss_allow:.0f} KiB")
        else:
            print("note: too few samples for a trend check", flush=True)
    except SoakFailure as e:
        failure = str(e)
    except (KeyboardInterrupt, Terminated):
        failure = "interrupted"
    finally:
        if soak is not None:
            soak.close_all()
        if server.running():
            server.process.kill()  # by PID: only the server this script started
            server.process.wait()
        if server.process is not None and exit_status is None:
            exit_status = server.process.returncode

    summary = {
        "backend": label, "command": command, "seed": args.seed, "clients": args.clients,
        "duration_s": duration, "elapsed_s": round(time.monotonic() - started, 3),
        "bytes_verified": soak.bytes_verified if soak else 0,
        "bytes_sent": soak.bytes_sent if soak else 0,
        "messages": soak.messages if soak else 0,
        "connections_opened": soak.opened if soak else 0,
        "connections_closed": soak.closed if soak else 0,
        "rst_closes": soak.rst_closes if soak else 0,
        "server_exit_status": exit_status,
        "result": "fail" if failure else "pass", "reason": failure,
        "where_it_ran": where,
    }
    if samples:
        rss = [s["rss_kib"] for s in samples]
        fds = [s["fds"] for s in samples]
        summary.update(rss_kib_start=rss[0], rss_kib_end=rss[-1], rss_kib_max=max(rss),
                       fds_start=fds[0], fds_end=fds[-1], fds_max=max(fds),
                       pipes_max=max(s["pipes"] for s in samples))
    print("summary:")
    print(f"  bytes verified  {summary['bytes_verified']} ({summary['bytes_verified'] / 1048576:.1f} MiB)")
    print(f"  messages        {summary['messages']}")
    print(f"  connections     {summary['connections_opened']} opened, {summary['connections_closed']} closed "
          f"({summary['rst_closes']} with RST)")
    if samples:
        print(f"  RSS KiB         start {summary['rss_kib_start']}  end {summary['rss_kib_end']}  max {summary['rss_kib_max']}")
        print(f"  fds             start {summary['fds_start']}  end {summary['fds_end']}  max {summary['fds_max']}"
              + (f"  (pipes apart: at most {summary['pipes_max']})" if summary['pipes_max'] else ""))
    print(f"  server exit     {exit_status}")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "soak.json"), "w") as f:
            json.dump({"summary": summary, "samples": samples}, f, indent=2)
        with open(os.path.join(args.out, "soak.csv"), "w") as f:
            keys = ["t", "bytes_verified", "messages", "opened", "closed", "open", "rss_kib", "fds", "pipes"]
            f.write(",".join(keys) + "\n")
            for s in samples:
                f.write(",".join(str(s[k]) for k in keys) + "\n")
    if failure:
        tail = server.log_text(2000)
        if tail:
            print("server output (tail):\n" + tail, file=sys.stderr)
        print(f"FAIL: {failure}", flush=True)
        workdir.cleanup()
        return 1
    print("PASS", flush=True)
    workdir.cleanup()
    return 0


def run_main():
    sys.exit(main())
