import Backend
import BlockingBackend
import EpollBackend
import URingBackend

/// A backend and its options: what `echo`'s backend flags describe, and what they are rendered
/// from. `echo` parses flags into one (``init(parsing:on:)``), and ``arguments(negotiating:)``
/// renders one back, so the tests' configurations and the benchmark kit's variants are written
/// once, as options, and their flags derived.
public enum ServerSetup: Sendable, Equatable {
    case uring(URingBackend.Options)
    case epoll(EpollBackend.Options)
    case blocking(BlockingBackend.Options)

    /// The backend that serves with these options.
    public var backend: any EventBackend {
        switch self {
        case .uring(let options): URingBackend(options: options)
        case .epoll(let options): EpollBackend(options: options)
        case .blocking(let options): BlockingBackend(options: options)
        }
    }

    /// The `echo` flags that give this setup back; `negotiating` leaves the io_uring design open
    /// to the kernel (see ``URingBackend/Options/arguments(negotiating:)``).
    public func arguments(negotiating: Bool = false) -> [String] {
        switch self {
        case .uring(let options): options.arguments(negotiating: negotiating)
        case .epoll(let options): options.arguments
        case .blocking(let options): options.arguments
        }
    }

    /// The setup `echo` would run with `arguments` on `kernel`: the command's own parsing and
    /// checks, then its negotiation of what the flags leave open.
    ///
    /// - Throws: ArgumentParser's error for flags `echo` refuses, as `echo` reports them.
    public init(parsing arguments: [String], on kernel: URingFeatures) throws {
        self = try EchoCommand.parse(arguments).setup(on: kernel).setup
    }
}
