import MailCore

/// RFC 5321 §6.3: a message that has passed through too many hosts is looping.
public enum HopCount {
    public static let maximum = 50

    public static func isLooping(_ header: HeaderSection) -> Bool {
        header.fields(named: "Received").count > Self.maximum
    }
}
