/// Counts permits for concurrent deliveries; waiters are served in order.
actor AsyncSemaphore {
    private var available: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(_ permits: Int) {
        self.available = max(permits, 1)
    }

    func acquire() async {
        if self.available > 0 {
            self.available -= 1
            return
        }
        await withCheckedContinuation { self.waiters.append($0) }
    }

    func release() {
        if self.waiters.isEmpty {
            self.available += 1
        } else {
            self.waiters.removeFirst().resume()
        }
    }
}

/// One semaphore per key (a destination), made when first needed and dropped when unused.
actor SemaphoreTable<Key: Hashable & Sendable> {
    private let permits: Int
    private var table: [Key: (semaphore: AsyncSemaphore, users: Int)] = [:]

    init(permits: Int) {
        self.permits = permits
    }

    func acquire(_ key: Key) async {
        let semaphore = self.table[key]?.semaphore ?? AsyncSemaphore(self.permits)
        self.table[key] = (semaphore, (self.table[key]?.users ?? 0) + 1)
        await semaphore.acquire()
    }

    func release(_ key: Key) async {
        guard let entry = self.table[key] else { return }
        self.table[key] = entry.users > 1 ? (entry.semaphore, entry.users - 1) : nil
        await entry.semaphore.release()
    }
}
