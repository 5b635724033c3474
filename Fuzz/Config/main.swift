import CFuzzDriver
import PetrelConfiguration

// libFuzzer target for the configuration loader: TOML (TOMLKit, over toml++) and Petrel's checks
// of every key. An operator's file is not hostile, but a typo must be a clear error naming the
// place, never a crash. A crash, a hang (libFuzzer's -timeout), a leak or an AddressSanitizer
// report is a bug. Built and run by Scripts/fuzz/fuzz.sh config.

func fuzzConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        let configuration = try ConfigurationLoader.parse(
            text,
            source: "fuzz.toml",
            baseDirectory: "/var/lib/petrel",
            hostname: "mx.example.test"
        )
        precondition(!configuration.hostname.isEmpty)
        precondition(configuration.dataDirectory.hasPrefix("/"), "data_dir is made absolute")
    } catch {
        precondition(error.source == "fuzz.toml")
        precondition(!error.description.isEmpty)
    }
    return 0
}

/// The entry point: SwiftPM links `main` to `<module>_main` on Linux, and this hands control to
/// libFuzzer's driver with the function above as the target.
@_cdecl("fuzz_config_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in data.map { fuzzConfig($0, size) } ?? 0 }
}
