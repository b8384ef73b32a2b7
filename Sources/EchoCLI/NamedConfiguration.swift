import BlockingBackend
import EchoSupport
import EpollBackend
import URingBackend

/// A server configuration with a name: the benchmark kit's built-in variants (its rows, and the
/// steps of its ablation), printed by `echo --list-variants --json` for the kit to load.
public struct NamedConfiguration: Sendable {
    /// The name the kit's `--backends` takes.
    public let name: String
    /// One line on what the configuration is, or for an ablation step what it adds to its parent.
    public let about: String
    public let setup: ServerSetup
    /// Whether the kernel negotiates what the configuration leaves open (the default io_uring
    /// design, as a user gets it); otherwise every design choice is a requirement.
    public let negotiated: Bool
    /// The configuration an ablation step adds one feature to.
    public let parent: String?

    init(_ name: String, _ setup: ServerSetup, _ about: String, parent: String? = nil, negotiated: Bool = false) {
        self.name = name
        self.setup = setup
        self.about = about
        self.parent = parent
        self.negotiated = negotiated
    }

    /// The `echo` flags that select this configuration.
    public var arguments: [String] { setup.arguments(negotiating: negotiated) }
}

extension NamedConfiguration {
    /// Every named configuration, in the order the kit lists them: the backends' defaults, then
    /// the io_uring ablation ladder (each step after its parent), then the other epoll trigger.
    public static let all: [NamedConfiguration] = [
        .init("uring", .uring(.init()), "io_uring in the server's default mode", negotiated: true),
        .init("epoll", .epoll(.init()), "epoll in the server's default mode (level-triggered)"),
        .init("blocking-threaded", .blocking(blocking(.threaded)), "blocking, thread per connection"),
        .init("blocking-naive", .blocking(blocking(.naive)), "blocking, naive (one client at a time)"),
        .init("uring-legacy", .uring(.legacy),
              "single-shot accept and recv, IORING_OP_PROVIDE_BUFFERS (the classic design)"),
        .init("uring-multishot", .uring(wholeBuffers { $0.deferTaskrun = false }),
              "multishot recv + provided-buffer ring (4 KiB buffers, one per receive) + multishot accept; "
                  + "a connection's queued buffers leave in one sendmsg", parent: "uring-legacy"),
        .init("uring-multishot-defer", .uring(wholeBuffers { _ in }), "+ SINGLE_ISSUER + DEFER_TASKRUN",
              parent: "uring-multishot"),
        .init("uring-multishot-defer-64k", .uring(uring { $0.incrementalBuffers = false }),
              "+ 64 KiB buffers (256: the same 16 MiB), still one per receive", parent: "uring-multishot-defer"),
        .init("uring-multishot-defer-inc", .uring(.init()),
              "+ incremental consumption (IOU_PBUF_RING_INC, 6.12): receives share buffers, a few hot ones "
                  + "in the ring (the server's default)", parent: "uring-multishot-defer-64k"),
        .init("uring-multishot-defer-fixed", .uring(wholeBuffers { $0.fixedFiles = true }),
              "+ fixed files (direct accept into a sparse registered table)", parent: "uring-multishot-defer"),
        .init("uring-multishot-defer-bundle", .uring(.init(mode: .bundle)),
              "+ recv bundles on a buffer ring per connection (8 × 4 KiB), gathered sends (instead of the "
                  + "shared ring)", parent: "uring-multishot-defer"),
        .init("uring-multishot-sqpoll", .uring(wholeBuffers(sqpoll: true) { _ in }),
              "multishot + SQPOLL (a kernel thread of the server polls the SQ; no DEFER_TASKRUN, no gathered "
                  + "sends)", parent: "uring-multishot"),
        .init("uring-multishot-defer-zc", .uring(wholeBuffers { $0.zeroCopyThreshold = 512 }),
              "+ IORING_OP_SEND_ZC from 512 B (so at 1000 B, not at 128 B; no gathered sends)",
              parent: "uring-multishot-defer"),
        .init("epoll-edge", .epoll(epoll { $0.trigger = .edge }), "edge-triggered epoll", parent: "epoll"),
        .init("epoll-splice", .epoll(epoll { $0.splice = true }),
              "epoll with splice(2) through a pipe: no copy into user space", parent: "epoll"),
        .init("uring-splice-poll", .uring(uring { $0.splice = .poll }),
              "io_uring multishot poll, splice(2) from the loop: no copy into user space",
              parent: "uring-multishot-defer-inc"),
        .init("uring-splice-linked", .uring(uring { $0.splice = .linked }),
              "io_uring poll, then hard-linked IORING_OP_SPLICE pairs run in io-wq",
              parent: "uring-multishot-defer-inc"),
    ]

    /// The configuration called `name`, if there is one.
    public static func named(_ name: String) -> NamedConfiguration? {
        all.first { $0.name == name }
    }

    /// One JSON object, `{"variants": [{name, about, parent, flags}, …], "scarcity": [flags]}`, a
    /// variant a line; `scarcity` holds the flags of ``Scarcity``.
    public static func json() -> String {
        let rows = all.map { configuration in
            let parent = configuration.parent.map(JSONText.string) ?? "null"
            let flags = configuration.arguments.map(JSONText.string).joined(separator: ", ")
            return "  {\"name\": \(JSONText.string(configuration.name)), \"about\": \(JSONText.string(configuration.about)), "
                + "\"parent\": \(parent), \"flags\": [\(flags)]}"
        }
        let scarcity = Scarcity.arguments.map(JSONText.string).joined(separator: ", ")
        return "{\"variants\": [\n" + rows.joined(separator: ",\n") + "\n],\n\"scarcity\": [\(scarcity)]}\n"
    }

    /// One line per configuration: its name and its flags.
    public static func table() -> String {
        let width = all.map(\.name.count).max() ?? 0
        return all.map { $0.name.padding(width + 1) + " " + $0.arguments.joined(separator: " ") }
            .joined(separator: "\n") + "\n"
    }

    // The ablation steps before 64 KiB buffers: the multishot pool as it was, 4096 whole 4 KiB buffers.
    private static func wholeBuffers(sqpoll: Bool = false,
                                     _ change: (inout URingBackend.Options) -> Void) -> URingBackend.Options {
        var options = URingBackend.Options(mode: .multishot, sqpoll: sqpoll)
        options.incrementalBuffers = false
        options.bufferSize = 4096
        options.bufferCount = 4096
        change(&options)
        return options
    }

    private static func uring(_ change: (inout URingBackend.Options) -> Void) -> URingBackend.Options {
        var options = URingBackend.Options()
        change(&options)
        return options
    }

    private static func epoll(_ change: (inout EpollBackend.Options) -> Void) -> EpollBackend.Options {
        var options = EpollBackend.Options()
        change(&options)
        return options
    }

    private static func blocking(_ mode: BlockingBackend.Mode) -> BlockingBackend.Options {
        var options = BlockingBackend.Options()
        options.mode = mode
        return options
    }
}
