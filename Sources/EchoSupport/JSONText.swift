/// JSON text without Foundation: string literals, and numbers JSON can carry.
public enum JSONText {
    /// `value` with `digits` decimals ("0" for NaN and infinities, which JSON cannot carry).
    public static func fixed(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return "0" }
        return DecimalText.fixed(value, digits) ?? number(value)
    }

    /// The shortest text that reads back as `value` ("2.0", "0.25", "1e-05"), valid JSON.
    public static func number(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        return value.description
    }

    /// A JSON string literal.
    public static func string(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }
}
