import MailStore
import NIOConcurrencyHelpers
import PetrelSystem

/// A queue in memory, for the runner's tests: what `EmbeddedQueue` does with files, in a
/// dictionary.
final class InMemoryQueue: QueueStore {
    struct State {
        var entries: [String: QueueEntry] = [:]
        var messages: [String: [UInt8]] = [:]
        /// What `petrel sendmail` would have left in pickup/.
        var pickup: [(QueueEntry, [UInt8])] = []
        /// Requests from `petrel queue` not yet handled.
        var requests: [String] = []
        /// Entries cannot be read (as when the process has no descriptor left).
        var unreadable = false
    }

    let state = NIOLockedValueBox(State())

    func put(_ entry: QueueEntry, message: String) {
        self.state.withLockedValue {
            $0.entries[entry.id] = entry
            $0.messages[entry.id] = Array(message.utf8)
        }
    }

    subscript(id: String) -> QueueEntry? { self.state.withLockedValue { $0.entries[id] } }
    var ids: [String] { self.state.withLockedValue { $0.entries.keys.sorted() } }
    func message(_ id: String) -> String? {
        self.state.withLockedValue { $0.messages[id].map { String(decoding: $0, as: UTF8.self) } }
    }

    func entries() async throws -> [QueueEntry] {
        self.state.withLockedValue { $0.entries.values.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) } }
    }

    func entry(_ id: String) async throws -> QueueEntry? {
        guard !self.state.withLockedValue({ $0.unreadable }) else {
            throw StoreError.io(operation: "read", path: id, errno: EMFILE)
        }
        return self[id]
    }

    func update(_ entry: QueueEntry) async throws(StoreError) {
        self.state.withLockedValue { $0.entries[entry.id] = entry }
    }

    func add(message: [UInt8], entry: QueueEntry) async throws(StoreError) {
        self.state.withLockedValue {
            $0.entries[entry.id] = entry
            $0.messages[entry.id] = message
        }
    }

    func remove(_ id: String) async throws(StoreError) {
        self.state.withLockedValue {
            $0.entries[id] = nil
            $0.messages[id] = nil
        }
    }

    func content(of id: String) async throws -> any MessageContent {
        guard let bytes = self.state.withLockedValue({ $0.messages[id] }) else {
            throw StoreError.io(operation: "open", path: id, errno: 2)
        }
        return Content(bytes: bytes)
    }

    func adoptPickedUp() async throws(StoreError) -> [String] {
        self.state.withLockedValue { state in
            let taken = state.pickup
            state.pickup = []
            for (entry, message) in taken {
                state.entries[entry.id] = entry
                state.messages[entry.id] = message
            }
            return taken.map(\.0.id)
        }
    }

    func pendingRequests() async throws(StoreError) -> [String] {
        self.state.withLockedValue { $0.requests }
    }

    func finishRequest(_ name: String) async {
        self.state.withLockedValue { $0.requests.removeAll { $0 == name } }
    }

    struct Content: MessageContent {
        let bytes: [UInt8]
        var size: Int { self.bytes.count }

        func read(at offset: Int, count: Int) async throws -> [UInt8] {
            guard offset < self.bytes.count else { return [] }
            return Array(self.bytes[offset..<min(offset + count, self.bytes.count)])
        }

        func close() {}
    }
}
