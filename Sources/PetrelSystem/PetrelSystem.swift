// The platform's C library, re-exported: Glibc on Linux, Darwin on macOS. The one place that
// knows which; every target that calls POSIX imports this instead of repeating the choice.

#if canImport(Glibc)
@_exported import Glibc
#elseif canImport(Darwin)
@_exported import Darwin
#endif
