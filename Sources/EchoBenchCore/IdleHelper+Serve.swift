
#if canImport(Glibc)
import Glibc
import EchoSupport
#endif

extension IdleHelper {
    /// The helper's side (`echo-bench --idle-helper`): connects idle connections
    /// `first ..< first + configuration.idle`, says `ready`, holds them until standard input ends,
    /// checks them and says `done`. Returns the exit status.
    public static func serve(_ configuration: BenchmarkConfiguration, first: Int, perSource: Int) -> Int32 {
        FileDescriptorLimit.raiseToHardLimit()
        let range = first..<(first + configuration.idle)
        guard let address = try? SocketAddress.resolve(host: configuration.host, port: configuration.port),
              var loop = try? ClientLoop(configuration: configuration, address: address, identifiers: range,
                                         idle: true, perSource: perSource) else {
            writeLine("\(readyWord) 0 \(range.count)")
            return 1
        }
        loop.connectAll(timeout: ProcessClock.nanoseconds(configuration.connectTimeout))
        writeLine("\(readyWord) \(loop.tally.established) \(loop.tally.errors.connect)")
        var byte: UInt8 = 0
        while true {
            let count = SystemCall.outcome(retryingInterrupts: true) { read(0, &byte, 1) }.value
            if count <= 0 { break }
        }
        loop.checkIdle()
        writeLine("\(doneWord) \(loop.tally.errors.mismatch) \(loop.tally.errors.reset) \(loop.tally.errors.eof)")
        return 0
    }

    private static func writeLine(_ line: String) {
        StandardStream.write(line + "\n", to: 1)
    }
}
