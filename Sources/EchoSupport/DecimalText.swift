/// Numbers as fixed-point text without Foundation, for reports and JSON.
public enum DecimalText {
    /// `value` with exactly `digits` decimals, or `nil` when it is not finite or too large to scale
    /// (the caller picks what to print then).
    public static func fixed(_ value: Double, _ digits: Int) -> String? {
        guard value.isFinite else { return nil }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        guard scaled < 9e18 else { return nil }
        let units = UInt64(scaled)
        let divisor = UInt64(scale)
        var text = (value < 0 && units != 0 ? "-" : "") + String(units / divisor)
        if digits > 0 {
            let fraction = String(units % divisor)
            text += "." + String(repeating: "0", count: digits - fraction.count) + fraction
        }
        return text
    }
}
