/// How a listening or connecting address is shown to people.
public enum Endpoint {
    /// `host:port`, with an IPv6 address in brackets (`[::1]:6666`), as URLs and `ss` write it.
    public static func text(host: String, port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
