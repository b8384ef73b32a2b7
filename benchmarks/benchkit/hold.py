"""Hold many idle connections open against a fresh `echo` server, echo on every one of them, and
measure what an idle connection costs the server.

    benchmarks/hold --connections 20000                                  uring, default mode
    benchmarks/hold --connections 50000 -- --backend uring --fixed-files --threads 4
    benchmarks/hold --connections 19000 --json -- --backend epoll        one JSON object on stdout

Everything after `--` is passed to `echo` (default: the uring variant, --backend uring); a single
variant name from benchkit/variants.py (`-- uring-bundle`) stands for its flags. The server is `echo`
(--echo PATH, default .build/release/echo if present, else .build/debug/echo), started by this
script on 0.0.0.0 on a free port with --quiet and --stats-json, and stopped with SIGTERM at the end
(it must exit 0).

The clients are spread over --processes worker processes (one RLIMIT_NOFILE each), each binding
its sockets to its own source address, 127.0.0.2, 127.0.0.3, ... (one source address has only
about 28,000 ephemeral ports towards one server port). The steps, each timed:

  1. baseline: the server's VmRSS, open descriptors and connections_open (from --stats-json after
     SIGUSR1) once it has echoed one probe connection and closed it;
  2. connect: every client connects (at most --window connects in flight per worker);
  3. echo round 1: every connection sends one 32-byte message naming it and the round and reads
     it back; every byte is checked;
  4. idle: --idle seconds with nothing sent, then the server's RSS, descriptors and
     connections_open are sampled: memory per idle connection = (RSS held - RSS baseline) / held;
     the machine's Slab (kernel memory, both ends of every connection) is sampled too;
  5. echo round 2 on every connection, as in 3;
  6. close: every client half-closes (shutdown SHUT_WR, at most --window at a time per worker)
     and must then see the server close its end within --timeout; the server's connections_open
     and descriptors must return to their baseline, with never --settle seconds between one close
     and the next. The kernel's TCP aborts for lack of memory and the loopback queue's drops over
     the run are reported: a client closed outright past tcp_max_orphans is reset, and a dropped
     reset leaves the server's end established for good (see Worker.close_all).

Exit status 0 when every connection was held and echoed both rounds with no byte wrong and the
server went back to its baseline and exited 0 on SIGTERM; 1 otherwise (one line starting with
FAIL says why); 2 for bad options. The summary (or --json) has every figure.
"""

import argparse
import errno
import json
import multiprocessing
import os
import resource
import select
import signal
import socket
import struct
import sys
import tempfile
import time

from benchkit import environment, procfs
from benchkit.paths import default_echo
from benchkit.processes import die_with_parent
from benchkit.server import Server, ServerFailed
from benchkit.variants import ALIASES, BUILTIN, echo_flags

IP_BIND_ADDRESS_NO_PORT = 24
MESSAGE = 32


class HoldFailure(Exception):
    pass


def message(identifier, round_number):
    head = struct.pack("<IIQ", identifier, round_number, identifier * 2654435761 + round_number)
    return head + bytes((identifier + round_number + i) & 0xFF for i in range(MESSAGE - len(head)))


# MARK: worker (one process, its share of the clients)

class Worker:
    def __init__(self, port, source, first, count, window, timeout):
        self.port = port
        self.source = source
        self.first = first
        self.count = count
        self.window = window
        self.timeout = timeout
        self.sockets = []
        self.epoll = select.epoll()

    def connect_all(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        pending = {}
        failed = 0
        errors = {}
        next_index = 0
        deadline = time.monotonic() + self.timeout
        while next_index < self.count or pending:
            while next_index < self.count and len(pending) < self.window:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                s.bind((self.source, 0))
                code = s.connect_ex(("127.0.0.1", self.port))
                if code not in (0, errno.EINPROGRESS):
                    errors[errno.errorcode.get(code, str(code))] = errors.get(errno.errorcode.get(code, str(code)), 0) + 1
                    failed += 1
                    s.close()
                else:
                    pending[s.fileno()] = s
                    self.epoll.register(s.fileno(), select.EPOLLOUT)
                next_index += 1
            if time.monotonic() > deadline:
                failed += len(pending)
                errors["timeout"] = errors.get("timeout", 0) + len(pending)
                for s in pending.values():
                    self.epoll.unregister(s.fileno())
                    s.close()
                pending.clear()
                break
            for fd, _ in self.epoll.poll(0.5):
                s = pending.pop(fd)
                self.epoll.unregister(fd)
                code = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code == 0:
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self.sockets.append(s)
                else:
                    name = errno.errorcode.get(code, str(code))
                    errors[name] = errors.get(name, 0) + 1
                    failed += 1
                    s.close()
        return {"connected": len(self.sockets), "failed": failed, "errors": errors}

    def echo_round(self, round_number):
        """Sends one message on every connection, then reads every echo back and checks it."""
        expected = {}
        received = {}
        broken = 0
        for index, s in enumerate(self.sockets):
            data = message(self.first + index, round_number)
            try:
                if s.send(data) != len(data):  # 32 bytes into an empty socket buffer
                    raise OSError(errno.EAGAIN, "short send")
            except OSError:
                broken += 1
                continue
            expected[s.fileno()] = (s, data)
            received[s.fileno()] = b""
            self.epoll.register(s.fileno(), select.EPOLLIN)
        echoed = 0
        mismatched = 0
        deadline = time.monotonic() + self.timeout
        while expected and time.monotonic() < deadline:
            for fd, _ in self.epoll.poll(0.5):
                s, data = expected[fd]
                try:
                    chunk = s.recv(MESSAGE)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    broken += 1
                else:
                    received[fd] += chunk
                    if len(received[fd]) < MESSAGE:
                        continue
                    if received[fd] == data:
                        echoed += 1
                    else:
                        mismatched += 1
                self.epoll.unregister(fd)
                del expected[fd]
        stalled = len(expected)
        for fd in expected:
            self.epoll.unregister(fd)
        return {"echoed": echoed, "mismatched": mismatched, "broken": broken, "stalled": stalled}

    def close_all(self):
        """Half-closes every connection (at most --window at a time) and closes each once the
        server has closed its end. A client socket closed outright becomes an orphan, and past
        net.ipv4.tcp_max_orphans the kernel resets it instead of sending its FIN; a reset is sent
        once, and a full loopback queue (net.core.netdev_max_backlog) can drop it, so the server's
        end stays established for good. A half-closed socket is still its process's, so its FIN is
        retransmitted until the server has it."""
        pending = {}
        answered = 0
        next_index = 0
        deadline = time.monotonic() + self.timeout
        while (next_index < len(self.sockets) or pending) and time.monotonic() < deadline:
            while next_index < len(self.sockets) and len(pending) < self.window:
                s = self.sockets[next_index]
                next_index += 1
                try:
                    s.shutdown(socket.SHUT_WR)
                except OSError:  # already reset: the server has let go of it
                    s.close()
                    answered += 1
                    continue
                pending[s.fileno()] = s
                self.epoll.register(s.fileno(), select.EPOLLIN)
            for fd, _ in self.epoll.poll(0.5):
                s = pending[fd]
                try:
                    if s.recv(MESSAGE):
                        continue  # nothing is due after round 2; the end of stream is what counts
                except BlockingIOError:
                    continue
                except OSError:
                    pass  # reset: the server's end is gone too
                self.epoll.unregister(fd)
                del pending[fd]
                s.close()
                answered += 1
        for s in pending.values():
            self.epoll.unregister(s.fileno())
            s.close()
        unanswered = len(pending) + len(self.sockets) - next_index
        for s in self.sockets[next_index:]:
            s.close()
        count = len(self.sockets)
        self.sockets = []
        return {"closed": count, "answered": answered, "unanswered": unanswered}


def worker_main(connection, port, source, first, count, window, timeout):
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    worker = Worker(port, source, first, count, window, timeout)
    while True:
        command, argument = connection.recv()
        if command == "connect":
            connection.send(worker.connect_all())
        elif command == "echo":
            connection.send(worker.echo_round(argument))
        elif command == "close":
            connection.send(worker.close_all())
            return


# MARK: the server

def start_server(o, directory):
    """A fresh echo on 0.0.0.0 with --stats-json, ready (listening, stats file written)."""
    stats_path = os.path.join(directory, "stats.json")

    def command(port):
        return [o.echo, "--host", "0.0.0.0", "--port", str(port), "--quiet", "--stats-json", stats_path] + o.server

    server = Server(command, os.path.join(directory, "echo.log"), name="echo", stats_path=stats_path,
                    preexec_fn=die_with_parent, start_timeout=20)
    server.start()
    return server


def probe(server):
    """One echo from 127.0.0.1, so every loop is running before the baseline is taken."""
    data = message(0xFFFFFFFF, 0)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(data)
        echoed = b""
        while len(echoed) < len(data):
            chunk = s.recv(len(data) - len(echoed))
            if not chunk:
                break
            echoed += chunk
    if echoed != data:
        raise HoldFailure("the start-up probe was not echoed")


def sample(server):
    stats = server.statistics()
    return {"rss_kib": procfs.status_kib(server.pid, "VmRSS"), "fds": procfs.fd_count(server.pid),
            "connections_open": stats.get("connections_open"), "slab_kib": procfs.slab_kib()}


def stop(server):
    """SIGTERM; echo must exit 0 within 10 s."""
    code = server.stop(timeout=10)
    if code == "killed":
        raise HoldFailure("echo did not exit within 10 s of SIGTERM")
    if code != 0:
        raise HoldFailure(f"echo exited {code} on SIGTERM: {server.log_text()}")


def parse(argv):
    if "--" in argv:
        at = argv.index("--")
        own, server = argv[:at], argv[at + 1:]
    else:
        own, server = argv, []
    p = argparse.ArgumentParser(
        prog="benchmarks/hold",
        description="Hold many idle connections against a fresh echo server, echo on all of them "
                    "twice, and report the server's memory per idle connection. Arguments after "
                    "-- go to echo (default: --backend uring).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--connections", type=int, default=10000, help="clients to hold (default 10000)")
    p.add_argument("--processes", type=int, default=0,
                   help="client processes, one source address each (default: enough for 15,000 "
                        "clients each, and at most the descriptor limit allows)")
    p.add_argument("--window", type=int, default=256, help="connects, and half-closes awaiting the server's close, in flight per process "
                        "(default 256)")
    p.add_argument("--idle", type=float, default=2.0, help="seconds idle before sampling (default 2)")
    p.add_argument("--settle", type=float, default=15.0,
                   help="once the clients close, the longest the server may go on without closing a "
                        "connection before it is back at its baseline (default 15)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds allowed for each phase of each process (default 60)")
    p.add_argument("--echo", default=default_echo(), help="the echo executable")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")
    o = p.parse_args(own)
    if o.connections < 1:
        p.error("--connections must be at least 1")
    if o.window < 1:
        p.error("--window must be at least 1")
    if not o.echo or not os.access(o.echo, os.X_OK):
        p.error("no echo executable: build it (swift build) or pass --echo PATH")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    per_process = max(1, min(15000, hard - 64))
    if o.processes <= 0:
        o.processes = -(-o.connections // per_process)
    if o.processes > 250:
        p.error("too many processes: the descriptor limit is too low for that many connections")
    if -(-o.connections // o.processes) > hard - 64:
        p.error(f"{o.connections} connections over {o.processes} processes exceed the descriptor "
                f"limit ({hard}) per process; give more --processes")
    if len(server) == 1 and not server[0].startswith("-") and (server[0] in BUILTIN or server[0] in ALIASES):
        try:
            server = echo_flags(server[0])  # a variant's name: its flags from the variant table
        except ValueError as e:
            p.error(str(e))
    o.server = server or echo_flags("uring")
    return o


def run(o, say):
    result = {"connections": o.connections, "processes": o.processes, "server_arguments": o.server,
              "where_it_ran": environment.gather(o.echo)}
    say(environment.console_line(result["where_it_ran"]))
    with tempfile.TemporaryDirectory(prefix="hold-") as directory:
        server = start_server(o, directory)
        result["server_command"] = " ".join(server.argv)
        workers = []
        try:
            probe(server)
            tcp_before = procfs.tcp_losses()
            time.sleep(0.5)
            baseline = sample(server)
            result["baseline"] = baseline
            say(f"server pid {server.pid} listening on port {server.port}: RSS {baseline['rss_kib']} KiB, "
                f"{baseline['fds']} descriptors")
            share, extra = divmod(o.connections, o.processes)
            first = 0
            for index in range(o.processes):
                count = share + (1 if index < extra else 0)
                parent_end, child_end = multiprocessing.Pipe()
                source = f"127.0.0.{2 + index}"
                process = multiprocessing.Process(
                    target=worker_main, args=(child_end, server.port, source, first, count, o.window, o.timeout),
                    daemon=True)
                process.start()
                workers.append((process, parent_end))
                first += count

            def everyone(command, argument=None):
                for _, pipe in workers:
                    pipe.send((command, argument))
                replies = []
                for process, pipe in workers:
                    if not pipe.poll(o.timeout + 30):
                        raise HoldFailure(f"client process {process.pid} did not answer '{command}'")
                    replies.append(pipe.recv())
                return {key: (sum(r[key] for r in replies) if not isinstance(replies[0][key], dict)
                              else merge([r[key] for r in replies])) for key in replies[0]}

            started = time.monotonic()
            connected = everyone("connect")
            result["connect"] = dict(connected, seconds=round(time.monotonic() - started, 3))
            say(f"connect: {connected['connected']} of {o.connections} in "
                f"{result['connect']['seconds']} s" + (f", failures {connected['errors']}" if connected["failed"] else ""))

            started = time.monotonic()
            first_round = everyone("echo", 1)
            result["round1"] = dict(first_round, seconds=round(time.monotonic() - started, 3))
            say(f"echo round 1: {first_round['echoed']} echoed, {first_round['mismatched']} wrong, "
                f"{first_round['broken']} broken, {first_round['stalled']} stalled in {result['round1']['seconds']} s")

            time.sleep(o.idle)
            held = sample(server)
            result["held"] = held
            grown = held["rss_kib"] - baseline["rss_kib"]
            count = max(connected["connected"], 1)
            result["rss_per_connection_bytes"] = round(grown * 1024 / count, 1)
            result["slab_per_connection_bytes"] = round((held["slab_kib"] - baseline["slab_kib"]) * 1024 / count, 1)
            say(f"held: server connections_open {held['connections_open']}, RSS {held['rss_kib']} KiB "
                f"(+{grown} KiB, {result['rss_per_connection_bytes']} B per connection), "
                f"{held['fds']} descriptors; kernel Slab +{held['slab_kib'] - baseline['slab_kib']} KiB "
                f"({result['slab_per_connection_bytes']} B per connection, both ends)")

            started = time.monotonic()
            second_round = everyone("echo", 2)
            result["round2"] = dict(second_round, seconds=round(time.monotonic() - started, 3))
            say(f"echo round 2: {second_round['echoed']} echoed, {second_round['mismatched']} wrong, "
                f"{second_round['broken']} broken, {second_round['stalled']} stalled in {result['round2']['seconds']} s")

            started = time.monotonic()
            closed = everyone("close")
            result["close"] = dict(closed, seconds=round(time.monotonic() - started, 3))
            say(f"close: {closed['answered']} of {closed['closed']} half-closed connections closed by the server "
                f"in {result['close']['seconds']} s" + (f", {closed['unanswered']} not" if closed["unanswered"] else ""))
            for process, _ in workers:
                process.join(10)
            workers = []
            # Waits while the server is still closing: --settle bounds a stall, not the whole wait,
            # so a slow machine (an emulated kernel closes 50,000 connections in about 20 s) is no
            # failure and a server that stopped closing is one.
            started = progressed = time.monotonic()
            after = sample(server)
            while (after["connections_open"] != baseline["connections_open"] or after["fds"] > baseline["fds"]) \
                    and time.monotonic() - progressed < o.settle:
                time.sleep(0.2)
                before, after = after, sample(server)
                if after["connections_open"] < before["connections_open"] or after["fds"] < before["fds"]:
                    progressed = time.monotonic()
            result["after"] = dict(after, seconds=round(time.monotonic() - started, 3))
            result["tcp_losses"] = {key: value - tcp_before[key] for key, value in procfs.tcp_losses().items()}
            say(f"closed: server connections_open {after['connections_open']}, {after['fds']} descriptors, "
                f"RSS {after['rss_kib']} KiB after {result['after']['seconds']} s")
        finally:
            for process, _ in workers:
                if process.is_alive():
                    process.kill()
                    process.join(5)
            try:
                stop(server)
                result["server_exit"] = 0
            except HoldFailure as failure:
                result["server_exit"] = str(failure)
                raise

    problems = []
    if result["connect"]["connected"] != o.connections:
        problems.append(f"held {result['connect']['connected']} of {o.connections} connections "
                        f"({result['connect']['errors']})")
    if result["held"]["connections_open"] != baseline["connections_open"] + o.connections:
        problems.append(f"the server reports {result['held']['connections_open']} connections open, "
                        f"expected {baseline['connections_open'] + o.connections}")
    for name in ("round1", "round2"):
        r = result[name]
        if r["echoed"] != o.connections or r["mismatched"] or r["broken"] or r["stalled"]:
            problems.append(f"{name}: {r['echoed']} of {o.connections} echoed, {r['mismatched']} wrong, "
                            f"{r['broken']} broken, {r['stalled']} stalled")
    if result["close"]["unanswered"]:
        problems.append(f"{result['close']['unanswered']} of {result['close']['closed']} half-closed connections "
                        f"were not closed by the server within {o.timeout} s")
    if result["after"]["connections_open"] != baseline["connections_open"] or result["after"]["fds"] > baseline["fds"]:
        losses = result["tcp_losses"]
        problems.append(f"after the clients closed: {result['after']['connections_open']} connections open "
                        f"and {result['after']['fds']} descriptors (baseline {baseline['connections_open']} "
                        f"and {baseline['fds']}); the kernel's TCP aborts for lack of memory over the run: "
                        f"{losses['aborts_on_memory']}, packets its input queues dropped: {losses['backlog_drops']}")
    result["ok"] = not problems
    result["problems"] = problems
    return result


def merge(dicts):
    total = {}
    for d in dicts:
        for key, value in d.items():
            total[key] = total.get(key, 0) + value
    return total


def main():
    o = parse(sys.argv[1:])
    say = (lambda line: None) if o.json else (lambda line: print(line, flush=True))
    try:
        result = run(o, say)
    except (HoldFailure, ServerFailed) as failure:
        if o.json:
            print(json.dumps({"ok": False, "problems": [str(failure)]}))
        print(f"FAIL {failure}", file=sys.stderr)
        return 1
    if o.json:
        print(json.dumps(result))
    if not result["ok"]:
        for problem in result["problems"]:
            print(f"FAIL {problem}", file=sys.stderr)
        return 1
    say(f"ok: {o.connections} connections held and echoed twice, every byte checked")
    return 0


def run_main():
    multiprocessing.set_start_method("fork")
    sys.exit(main())
