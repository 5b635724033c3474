import MailAuth
import MailCore
import Testing

/// Inputs the fuzz targets (Fuzz/, Scripts/fuzz/fuzz.sh, docs/security.md) once crashed on, kept so
/// that they never do again.
struct FuzzRegressionTests {
    /// fuzz-dkim, crash-28ed3a79: a DKIM-Signature field with no colon (here, an empty one) made
    /// the parser start reading one octet past its end, a trap.
    @Test(arguments: ["", "(", "DKIM-Signature"])
    func signatureFieldWithoutColon(_ raw: String) {
        let field = HeaderField(name: "DKIM-Signature", raw: Array(raw.utf8))
        #expect(throws: DKIMSignature.Invalid.self) { try DKIMSignature(field: field, now: 1_800_000_000) }
    }
}
