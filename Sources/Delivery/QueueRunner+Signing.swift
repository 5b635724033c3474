import MailAuth
import MailCore

extension QueueRunner {
    /// The keys that sign a message: those of our domain (or the domain its subdomain belongs
    /// to) when the message speaks only for that domain: one From field, read as `AuthorFields`
    /// reads it, every address in it there. Submission makes sure a user may use those
    /// addresses; `petrel sendmail` is trusted as the server's own local user, as Postfix's is.
    /// A message whose From names several domains, or none of ours, is not signed at all.
    func signers(for header: HeaderSection) -> [DKIMSigner] {
        let from = header.fields(named: "From")
        guard from.count == 1, let addresses = AuthorFields.addresses(in: from[0].value) else { return [] }
        var signing: String?
        for address in addresses {
            guard let domain = AddressList.domain(of: address),
                let ours = self.settings.localDomains.filter({ domain == $0 || domain.hasSuffix("." + $0) })
                    .max(by: { $0.count < $1.count }),
                signing == nil || signing == ours
            else { return [] }
            signing = ours
        }
        return signing.map(self.signers) ?? []
    }
}
