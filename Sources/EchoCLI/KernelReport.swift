import URingBackend
import EchoSupport

/// What `echo` says about the kernel's io_uring: the start line after the negotiation, and the
/// feature table of `echo --features` (as text or JSON).
enum KernelReport {
    /// The negotiated default on `kernel`, or nil where io_uring cannot serve at all.
    private static func defaultNegotiation(_ kernel: URingFeatures) -> URingBackend.Negotiation? {
        guard kernel.unavailable == nil else { return nil }
        return URingBackend.Options.negotiated(on: kernel)
    }

    /// The table: one row per feature, then the default design.
    static func table(_ kernel: URingFeatures) -> String {
        let negotiation = defaultNegotiation(kernel)
        let used = negotiation?.options.featuresUsed ?? []
        var lines = ["io_uring features on Linux \(kernel.release)"
            + (kernel.unavailable.map { ": io_uring unavailable (\($0))" } ?? "")]
        let rows = [["feature", "since", "here", "default", "kernel name"]] + URingFeature.allCases.map {
            [$0.name, "\($0.since)", kernel.has($0) ? "yes" : "no", used.contains($0) ? "yes" : "no", $0.kernelName]
        }
        let widths = (0..<4).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            let padded = (0..<4).map { row[$0] + String(repeating: " ", count: widths[$0] - row[$0].count) }
            lines.append((padded + [row[4]]).joined(separator: "  "))
        }
        if let negotiation {
            lines.append("default: \(negotiation.options.design); \(negotiation.leftOutText)")
        } else {
            lines.append("default: none (--backend epoll serves here)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// One JSON object: `kernel_release`, `uring_available` (with `reason` when false), `default`
    /// (`design`, `summary`, `left_out`; null where io_uring cannot serve) and `features`, a list
    /// of `{name, since, available, used_by_default}`.
    static func json(_ kernel: URingFeatures) -> String {
        let negotiation = defaultNegotiation(kernel)
        let used = negotiation?.options.featuresUsed ?? []
        var fields = ["\"kernel_release\":\(JSONText.string(kernel.release))",
                      "\"uring_available\":\(kernel.unavailable == nil)"]
        if let unavailable = kernel.unavailable { fields.append("\"reason\":\(JSONText.string("\(unavailable)"))") }
        if let negotiation {
            fields.append("\"default\":{\"design\":\(JSONText.string(negotiation.options.design)),"
                + "\"summary\":\(JSONText.string(URingBackend(options: negotiation.options).summary)),"
                + "\"left_out\":\(leftOutJSON(negotiation.leftOut))}")
        } else {
            fields.append("\"default\":null")
        }
        let rows = URingFeature.allCases.map {
            "{\"name\":\"\($0.name)\",\"since\":\"\($0.since)\",\"available\":\(kernel.has($0)),"
                + "\"used_by_default\":\(used.contains($0))}"
        }
        fields.append("\"features\":[\(rows.joined(separator: ","))]")
        return "{" + fields.joined(separator: ",") + "}\n"
    }

    /// `[{"feature": …, "reason": …}, …]`.
    static func leftOutJSON(_ leftOut: [URingBackend.Negotiation.LeftOut]) -> String {
        "[" + leftOut.map { "{\"feature\":\"\($0.feature.name)\",\"reason\":\(JSONText.string($0.reason))}" }
            .joined(separator: ",") + "]"
    }
}
