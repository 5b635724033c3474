/// Counts permits (concurrent deliveries, an account's turn at its mailboxes); waiters are
/// served in order, and a waiter holds no thread.
public actor AsyncSemaphore {
    private var available: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []

    public init(_ permits: Int) {
        self.available = max(permits, 1)
    }

    public func acquire() async {
        if self.available > 0 {
            self.available -= 1
            return
        }
        await withCheckedContinuation { self.waiters.append($0) }
    }

    public func release() {
        if self.waiters.isEmpty {
            self.available += 1
        } else {
            self.waiters.removeFirst().resume()
        }
    }
}

/// One semaphore per key (a destination), made when first needed and dropped when unused.
public actor SemaphoreTable<Key: Hashable & Sendable> {
    private let permits: Int
    private var table: [Key: (semaphore: AsyncSemaphore, users: Int)] = [:]

    public init(permits: Int) {
        self.permits = permits
    }

    public func acquire(_ key: Key) async {
        let semaphore = self.table[key]?.semaphore ?? AsyncSemaphore(self.permits)
        self.table[key] = (semaphore, (self.table[key]?.users ?? 0) + 1)
        await semaphore.acquire()
    }

    public func release(_ key: Key) async {
        guard let entry = self.table[key] else { return }
        self.table[key] = entry.users > 1 ? (entry.semaphore, entry.users - 1) : nil
        await entry.semaphore.release()
    }
}
