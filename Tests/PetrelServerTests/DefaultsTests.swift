import Delivery
import PetrelConfiguration
import SMTPCore
import Testing

/// The embedded defaults are the configuration's (docs/configuration.md); the engines' own
/// settings types keep defaults too, for their tests and for callers without a configuration.
/// Written in two places, they are compared here so that they cannot drift apart.
@Suite struct DefaultsTests {
    @Test func theSMTPLimitsAreTheConfigurations() {
        let configured = Configuration.Limits()
        let session = SMTPLimits()
        #expect(configured.messageSize == session.messageSize)
        #expect(configured.recipients == session.recipients)
        #expect(configured.errors == session.errors)
    }

    @Test func theDeliverySettingsAreTheConfigurations() {
        let configured = Configuration.DeliveryPolicy()
        let settings = DeliverySettings(hostname: "mx.petrel.test", localDomains: [])
        #expect(settings.schedule == RetrySchedule())
        #expect(configured.retryFirst == settings.schedule.first)
        #expect(configured.retryMaximum == settings.schedule.ceiling)
        #expect(configured.maximumAge == settings.schedule.maximumAge)
        #expect(configured.connections == settings.connections)
        #expect(configured.connectionsPerDomain == settings.connectionsPerDomain)
        #expect(configured.delayNotice == settings.delayNotice)
        #expect(configured.hold == settings.hold)
    }
}
