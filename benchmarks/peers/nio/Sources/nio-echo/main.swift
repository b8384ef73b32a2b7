// nio-echo: SwiftNIO's echo server, the incumbent the uring-echo backends are measured against.
//
//   nio-echo [--host 127.0.0.1] [--port 6666] [--threads 1]
//
// The same shape as NIO's own NIOEchoServer example: a ChannelInboundHandler that writes what
// it reads and flushes at the end of each read burst, behind NIO's BackPressureHandler (no
// reading while a write is pending). One event loop by default: a fair single-core match for
// the single-threaded backends. Prints nothing unless something fails; SIGINT or SIGTERM
// closes the server and exits 0.
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix

/// Echoes every buffer it reads; flushes once per read burst.
final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A peer that resets its connection is not the server's error: close quietly.
        context.close(promise: nil)
    }
}

func fail(_ message: String, code: Int32 = 1) -> Never {
    var line = "nio-echo: error: \(message)\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    exit(code)
}

// Options.
var host = "127.0.0.1"
var port = 6666
var threads = 1
var arguments = CommandLine.arguments.dropFirst()
while let option = arguments.popFirst() {
    func value() -> String {
        guard let value = arguments.popFirst() else { fail("\(option) needs a value", code: 64) }
        return value
    }
    switch option {
    case "--host": host = value()
    case "--port":
        guard let p = Int(value()), (0...65535).contains(p) else { fail("invalid port: must be 0...65535", code: 64) }
        port = p
    case "--threads":
        guard let t = Int(value()), t >= 1 else { fail("invalid threads: must be at least 1", code: 64) }
        threads = t
    case "-h", "--help":
        print("usage: nio-echo [--host ADDRESS] [--port PORT] [--threads EVENT_LOOPS]")
        print("SwiftNIO echo server (default 127.0.0.1:6666, 1 event loop); stops on SIGINT/SIGTERM.")
        exit(0)
    default:
        fail("unknown option '\(option)' (see 'nio-echo --help')", code: 64)
    }
}

// As many descriptors as the hard limit allows: 1000s of connections.
var limit = rlimit()
if getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max {
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
}
signal(SIGPIPE, SIG_IGN)

// Block SIGINT and SIGTERM before NIO starts its threads, so only sigwait below sees them.
var stopSignals = sigset_t()
sigemptyset(&stopSignals)
sigaddset(&stopSignals, SIGINT)
sigaddset(&stopSignals, SIGTERM)
pthread_sigmask(SIG_BLOCK, &stopSignals, nil)

let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
let bootstrap = ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 4096)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(BackPressureHandler())
            try channel.pipeline.syncOperations.addHandler(EchoHandler())
        }
    }
    .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
    .childChannelOption(.maxMessagesPerRead, value: 16)
    .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator())

let channel: Channel
do {
    channel = try bootstrap.bind(host: host, port: port).wait()
} catch {
    try? group.syncShutdownGracefully()
    fail("cannot listen on \(host):\(port): \(error)")
}

var received: Int32 = 0
while sigwait(&stopSignals, &received) != 0 {}
try? channel.close().wait()
try? group.syncShutdownGracefully()
exit(0)
