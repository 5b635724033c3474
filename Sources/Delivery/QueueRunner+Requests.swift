import MailStore

extension QueueRunner {
    // MARK: - Requests from the command line

    /// `petrel sendmail` leaves messages in `pickup/`; `petrel queue` leaves requests in
    /// `queue/control/` (`ID.retry`, `ID.delete`, `ID.bounce`, `all.retry`), removed once done.
    func handleRequests() async {
        var adopted: [String] = []
        var failure: String?
        do {
            adopted = try await self.queue.adoptPickedUp()
        } catch {
            failure = "\(error)"
        }
        let previous = self.state.withLockedValue { state in
            defer { state.pickupError = failure }
            return state.pickupError
        }
        if let failure, failure != previous {
            self.logger.error("cannot take messages from pickup", metadata: ["error": "\(failure)"])
        }
        for id in adopted {
            self.logger.info("picked up", metadata: ["id": "\(id)"])
            self.enqueued(id)
        }
        let requests = (try? await self.queue.pendingRequests()) ?? []
        for name in requests {
            let parts = name.split(separator: ".")
            guard parts.count == 2 else {
                await self.queue.finishRequest(name)
                continue
            }
            let id = String(parts[0])
            if id == "all", parts[1] == "retry" {
                let ids = self.state.withLockedValue { Array($0.due.keys) }
                for id in ids { await self.handle(.retry, id) }
            } else if let request = QueueRequest(rawValue: String(parts[1])), QueueEntry.isValidID(id) {
                // A message being delivered is dealt with once its attempt is over.
                guard !self.state.withLockedValue({ $0.inFlight.contains(id) }) else { continue }
                await self.handle(request, id)
            }
            await self.queue.finishRequest(name)
        }
    }

    func handle(_ request: QueueRequest, _ id: String) async {
        guard !self.state.withLockedValue({ $0.inFlight.contains(id) }),
            var entry = try? await self.queue.entry(id)
        else { return }
        switch request {
        case .retry:
            entry.retryNow()
            await self.save(entry)
            self.enqueued(id)
        case .delete:
            do {
                try await self.queue.remove(id)
                self.forget(id)
                self.logger.notice("removed", metadata: ["id": "\(id)", "reason": "deleted by the operator"])
            } catch {
                self.logger.error("cannot remove from queue", metadata: ["id": "\(id)", "error": "\(error)"])
            }
        case .bounce:
            entry.returnToSender(now: self.clock())
            await self.save(entry)
            self.enqueued(id)
        }
    }
}
