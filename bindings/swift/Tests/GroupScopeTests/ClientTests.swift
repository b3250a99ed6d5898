import Foundation
import XCTest

@testable import GroupScope

/// Records drop reports and then throws, to check that a failing listener never stops the core.
private final class ThrowingListener: DropListener, @unchecked Sendable {
    private let lock = NSLock()
    private var received: [DropReport] = []
    let called = DispatchSemaphore(value: 0)

    var reports: [DropReport] {
        lock.lock()
        defer { lock.unlock() }
        return received
    }

    func onDrop(report: DropReport) throws {
        lock.lock()
        received.append(report)
        lock.unlock()
        called.signal()
        throw TestFailure("listener failure must not reach the core")
    }
}

final class ClientTests: XCTestCase {
    func testTrackMergesSuperPropertiesAndGroups() throws {
        let token = uniqueToken("track")
        let client = try Client(token: token, config: serverConfig(dataDirectory: newDataDirectory()))
        try client.identify(distinctId: "user-1")
        try client.register(properties: ["app_version": "2.1", "plan": "free"])
        try client.setGroup(key: "company_id", id: "acme")
        try client.setGroup(key: "team_id", id: 5)

        try client.track(event: "Signup", properties: ["plan": "pro", "seats": 5])
        try client.track(event: "Invite", groups: ["company_id": ["globex", 7], "team_id": nil])
        XCTAssertTrue(client.flush(timeout: 5))

        let events = try ReferenceServer.events(token: token)
        let byName = Dictionary(events.map { (ReferenceServer.name(of: $0) ?? "", ReferenceServer.properties(of: $0)) }) { first, _ in first }
        let signup = try XCTUnwrap(byName["Signup"])
        XCTAssertEqual(signup["distinct_id"] as? String, "user-1")
        XCTAssertEqual(signup["app_version"] as? String, "2.1")
        XCTAssertEqual(signup["plan"] as? String, "pro")
        XCTAssertEqual(signup["seats"] as? Int, 5)
        XCTAssertEqual(signup["company_id"] as? [String], ["acme"])
        XCTAssertEqual(signup["team_id"] as? [String], ["5"])

        let invite = try XCTUnwrap(byName["Invite"])
        XCTAssertEqual(invite["company_id"] as? [String], ["globex", "7"])
        XCTAssertNil(invite["team_id"], "team_id should be left off: \(invite)")
        XCTAssertEqual(invite["plan"] as? String, "free")
    }

    func testTrackMapsValueTypes() throws {
        let token = uniqueToken("values")
        let client = try Client(token: token, config: serverConfig(dataDirectory: newDataDirectory()))
        let none: String? = nil

        try client.track(event: "Typed", properties: [
            "text": "héllo \"quoted\"",
            "count": 3,
            "big": Int64(9_007_199_254_740_993),
            "ratio": 0.25,
            "flag": false,
            "none": none as Any,
            "at": Date(timeIntervalSince1970: 1_796_415_330.123),
            "day": DateComponents(year: 2026, month: 12, day: 4),
            "price": Decimal(string: "19.90")!,
            "seats": Decimal(string: "40.0")!,
            "bad": Double.nan,
            "list": ["a", 1, Double.infinity] as [Any],
            "nested": ["k": "v"],
        ])
        XCTAssertTrue(client.flush(timeout: 5))
        XCTAssertEqual(client.stats().nonFiniteReplaced, 2)

        let events = try ReferenceServer.events(token: token)
        XCTAssertEqual(events.count, 1)
        let properties = ReferenceServer.properties(of: try XCTUnwrap(events.first))
        XCTAssertEqual(properties["text"] as? String, "héllo \"quoted\"")
        XCTAssertEqual(properties["count"] as? Int, 3)
        XCTAssertEqual((properties["big"] as? NSNumber)?.int64Value, 9_007_199_254_740_993)
        XCTAssertEqual(properties["ratio"] as? Double, 0.25)
        XCTAssertEqual(properties["flag"] as? Bool, false)
        XCTAssertTrue(properties["none"] is NSNull)
        XCTAssertEqual(properties["at"] as? String, "2026-12-04T20:15:30.123Z")
        XCTAssertEqual(properties["day"] as? String, "2026-12-04")
        XCTAssertEqual(properties["price"] as? Double, 19.9)
        XCTAssertEqual(properties["seats"] as? Int, 40)
        XCTAssertTrue(properties["bad"] is NSNull)
        let list = try XCTUnwrap(properties["list"] as? [Any])
        XCTAssertEqual(list.count, 3)
        XCTAssertEqual(list[0] as? String, "a")
        XCTAssertEqual(list[1] as? Int, 1)
        XCTAssertTrue(list[2] is NSNull)
        XCTAssertEqual(properties["nested"] as? [String: String], ["k": "v"])
    }

    func testFlushDeliversEverything() throws {
        let token = uniqueToken("flush")
        let client = try Client(token: token, config: serverConfig(dataDirectory: newDataDirectory(), flushIntervalSeconds: 60))

        for number in 0..<120 {
            try client.track(event: "Tick", properties: ["n": number])
        }
        XCTAssertTrue(client.flush(timeout: 5))

        let stats = client.stats()
        XCTAssertEqual(stats.enqueued, 120)
        XCTAssertEqual(stats.delivered, 120)
        XCTAssertEqual(stats.queued, 0)
        let numbers = Set(try ReferenceServer.events(token: token).compactMap { ReferenceServer.properties(of: $0)["n"] as? Int })
        XCTAssertEqual(numbers, Set(0..<120))
    }

    func testShutdownDeliversAndRejectsLaterCalls() throws {
        let token = uniqueToken("shutdown")
        let client = try Client(token: token, config: serverConfig(dataDirectory: newDataDirectory(), flushIntervalSeconds: 60))

        try client.track(event: "Before Shutdown")
        XCTAssertTrue(client.shutdown(timeout: 5))
        XCTAssertTrue(client.shutdown(timeout: 5), "a second shutdown should be a no-op")

        XCTAssertThrowsError(try client.track(event: "After Shutdown")) { error in
            guard case .ShutDown? = error as? GroupscopeError else {
                return XCTFail("expected GroupscopeError.ShutDown, got \(error)")
            }
        }
        let names = try ReferenceServer.events(token: token).compactMap { ReferenceServer.name(of: $0) }
        XCTAssertEqual(names, ["Before Shutdown"])
    }

    func testBackgroundFlushDelivers() throws {
        let client = try Client(token: uniqueToken("background"), config: serverConfig(dataDirectory: newDataDirectory(), flushIntervalSeconds: 60))
        try client.track(event: "Backgrounded")

        client.flushOnBackground(timeout: 5)

        let deadline = Date().addingTimeInterval(5)
        while client.stats().delivered < 1 && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.02)
        }
        XCTAssertEqual(client.stats().delivered, 1)
    }

    func testOptOutPersistsAcrossRestart() throws {
        let token = uniqueToken("optout")
        let dataDirectory = try newDataDirectory()

        do {
            let client = try Client(token: token, config: serverConfig(dataDirectory: dataDirectory, flushIntervalSeconds: 60))
            try client.optOut()
            try client.track(event: "Ignored While Opted Out")
            XCTAssertTrue(client.isOptedOut())
            _ = client.shutdown(timeout: 5)
        }

        let client = try Client(token: token, config: serverConfig(dataDirectory: dataDirectory))
        XCTAssertTrue(client.isOptedOut(), "the opt-out flag should persist")
        try client.optIn()
        try client.track(event: "After Opt In")
        XCTAssertTrue(client.flush(timeout: 5))

        let names = try ReferenceServer.events(token: token).compactMap { ReferenceServer.name(of: $0) }
        XCTAssertEqual(names, ["After Opt In"])
    }

    func testGroupProfileOperations() throws {
        let token = uniqueToken("profiles")
        let acmeId = "acme-\(token)"
        let numericId = Int(Date().timeIntervalSince1970 * 1_000_000)
        let client = try Client(token: token, config: serverConfig(dataDirectory: newDataDirectory()))
        let acme = try client.group(key: "company_id", id: acmeId)
        let numeric = try client.group(key: "company_id", id: numericId)
        XCTAssertEqual(acme.key(), "company_id")
        XCTAssertEqual(acme.id(), acmeId)
        XCTAssertEqual(numeric.id(), String(numericId))

        try acme.set(["plan": "enterprise", "seats": 40])
        try acme.setOnce(["plan": "ignored", "created": DateComponents(year: 2026, month: 1, day: 2)])
        try acme.unset("seats")
        try acme.union(["tags": ["beta", "eu"]])
        try acme.remove(["tags": "eu"])
        try numeric.set(["plan": "free"])
        try numeric.delete()
        XCTAssertTrue(client.flush(timeout: 5))

        let stats = client.stats()
        XCTAssertEqual(stats.enqueued, 7)
        XCTAssertEqual(stats.delivered, 7)
        let group = try XCTUnwrap(JSONSerialization.jsonObject(with: ReferenceServer.get("/api/groups/company_id/\(acmeId)")) as? [String: Any])
        let profile = try XCTUnwrap((group["profile"] as? [String: Any])?["properties"] as? [String: Any])
        XCTAssertEqual(profile["plan"] as? String, "enterprise")
        XCTAssertEqual(profile["created"] as? String, "2026-01-02")
        XCTAssertEqual(profile["tags"] as? [String], ["beta"])
        XCTAssertNil(profile["seats"])
        XCTAssertThrowsError(try ReferenceServer.get("/api/groups/company_id/\(numericId)")) { error in
            XCTAssertTrue("\(error)".contains("HTTP 404"), "\(error)")
        }
    }

    func testErrorsAreSwiftErrors() throws {
        let client = try Client(token: uniqueToken("errors"), config: serverConfig(dataDirectory: newDataDirectory(), flushIntervalSeconds: 60))

        XCTAssertThrowsError(try client.track(event: "")) { error in
            guard case .InvalidEventName(let message)? = error as? GroupscopeError else {
                return XCTFail("expected GroupscopeError.InvalidEventName, got \(error)")
            }
            XCTAssertTrue(message.contains("event name"), message)
        }
        XCTAssertThrowsError(try client.track(event: "E", properties: ["when": Thread.current])) { error in
            guard case .InvalidProperty(let message)? = error as? GroupscopeError else {
                return XCTFail("expected GroupscopeError.InvalidProperty, got \(error)")
            }
            XCTAssertTrue(message.contains(#""when""#), message)
        }
        XCTAssertThrowsError(try client.trackEncoded(callJson: #"{"event":"E","properties":[1]}"#)) { error in
            guard case .InvalidProperty(let message)? = error as? GroupscopeError else {
                return XCTFail("expected GroupscopeError.InvalidProperty, got \(error)")
            }
            XCTAssertTrue(message.contains("must be a JSON object"), message)
        }
        XCTAssertThrowsError(try client.identify(distinctId: "")) { error in
            guard case .InvalidDistinctId? = error as? GroupscopeError else {
                return XCTFail("expected GroupscopeError.InvalidDistinctId, got \(error)")
            }
        }
        XCTAssertEqual(client.stats().enqueued, 0, "rejected calls must enqueue nothing")
    }

    func testInvalidConfigRejected() throws {
        XCTAssertThrowsError(try Client(token: "sw-config", config: ClientConfig(dataDir: "", apiHost: ReferenceServer.url))) { error in
            guard case .InvalidConfig(let message)? = error as? GroupscopeError else {
                return XCTFail("expected GroupscopeError.InvalidConfig, got \(error)")
            }
            XCTAssertTrue(message.contains("data_dir"), message)
        }
        let negative = ClientConfig(dataDir: try newDataDirectory(), apiHost: ReferenceServer.url, flushIntervalSeconds: -1)
        XCTAssertThrowsError(try Client(token: "sw-config", config: negative)) { error in
            XCTAssertTrue("\(error)".contains("flush_interval_seconds"), "\(error)")
        }
    }

    func testThrowingDropListenerContained() throws {
        let token = uniqueToken("listener")
        let listener = ThrowingListener()
        let client = try Client(
            token: token,
            config: serverConfig(dataDirectory: newDataDirectory(), flushIntervalSeconds: 60),
            onDrop: listener
        )

        try client.track(event: "Cleared")
        try client.optOut()
        XCTAssertEqual(listener.called.wait(timeout: .now() + 5), .success, "the listener was not called for the opt-out drop")
        try client.optIn()
        try client.track(event: "Delivered")
        XCTAssertTrue(client.flush(timeout: 5))

        XCTAssertEqual(listener.reports.first?.reason, .optedOut)
        XCTAssertEqual(listener.reports.first?.count, 1)
        let names = try ReferenceServer.events(token: token).compactMap { ReferenceServer.name(of: $0) }
        XCTAssertEqual(names, ["Delivered"])
    }
}
