import ArgumentParser
import PetrelOperator

struct Queue: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Look at and act on the outbound queue.",
        discussion: """
            Works whether or not the server runs: a running server is asked to act (and does \
            within a second or two); otherwise the queue on disk is changed directly.
            """,
        subcommands: [List.self, Show.self, Retry.self, Delete.self, Bounce.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the messages waiting for delivery.",
            discussion: """
                One block a message: queue id, age, size and sender, then each recipient with its \
                state (pending, delivered, failed), attempts, next attempt and last error.
                """
        )

        @OptionGroup var options: ConfigOption

        func run() async throws {
            try QueueTool.list(try self.options.load())
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print one message's envelope, recipients and header section."
        )

        @OptionGroup var options: ConfigOption
        @Argument(help: "The queue id (from `petrel queue list`).") var id: String

        func run() async throws {
            try QueueTool.show(try self.options.load(), id: self.id)
        }
    }

    struct Target: ParsableArguments {
        @Argument(help: "The queue id (from `petrel queue list`).") var id: String?
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Try a message's waiting recipients now, or every message's with --all."
        )

        @OptionGroup var options: ConfigOption
        @OptionGroup var target: Target
        @Flag(help: "Every message in the queue.") var all = false

        func validate() throws {
            guard (self.target.id != nil) != self.all else { throw ValidationError("give a queue id, or --all") }
        }

        func run() async throws {
            try await QueueTool.act(
                .retry,
                id: self.all ? "all" : self.target.id!,
                configuration: try self.options.load()
            )
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a message from the queue, telling nobody."
        )

        @OptionGroup var options: ConfigOption
        @Argument(help: "The queue id (from `petrel queue list`).") var id: String

        func run() async throws {
            try await QueueTool.act(.delete, id: self.id, configuration: try self.options.load())
        }
    }

    struct Bounce: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Give up on a message's waiting recipients and send the sender a report."
        )

        @OptionGroup var options: ConfigOption
        @Argument(help: "The queue id (from `petrel queue list`).") var id: String

        func run() async throws {
            try await QueueTool.act(.bounce, id: self.id, configuration: try self.options.load())
        }
    }
}
