import ArgumentParser
import BlockingBackend
import EpollBackend
import URingBackend

/// `--backend`: one case per backend, each named by the backend's own ``EventBackend/name``.
enum BackendChoice: CaseIterable, ExpressibleByArgument {
    case uring
    case epoll
    case blocking

    /// The name `--backend` takes.
    var name: String {
        switch self {
        case .uring: URingBackend.name
        case .epoll: EpollBackend.name
        case .blocking: BlockingBackend.name
        }
    }

    init?(argument: String) {
        guard let choice = Self.allCases.first(where: { $0.name == argument }) else { return nil }
        self = choice
    }

    var defaultValueDescription: String { name }

    static var allValueStrings: [String] { allCases.map(\.name) }
}
