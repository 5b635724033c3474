import PetrelSystem

public struct DirectoryError: Error, CustomStringConvertible {
    public let description: String
}

/// `mkdir -p` with mode 0700.
public func createDirectories(_ path: String) throws {
    var current = path.hasPrefix("/") ? "" : "."
    for component in path.split(separator: "/") {
        current += "/" + component
        if mkdir(current, 0o700) != 0 && errno != EEXIST {
            throw DirectoryError(description: "cannot create \(current): \(String(cString: strerror(errno)))")
        }
    }
}
