import Foundation
import XCTest

@testable import GroupScope

/// Runs the scenario of `bindings/examples/parity.rs` from Swift and compares the records the
/// server received with the Rust run's, whose token is in `GROUPSCOPE_PARITY_TOKEN`.
final class ParityTests: XCTestCase {
    private let ignoredFields: Set<String> = ["time", "$time", "$insert_id", "token", "$token", "$anon_distinct_id", "$device_id"]

    func testRecordsMatchRust() throws {
        let rustToken = try XCTUnwrap(
            ProcessInfo.processInfo.environment["GROUPSCOPE_PARITY_TOKEN"],
            "GROUPSCOPE_PARITY_TOKEN is not set; run the tests with scripts/test-swift.sh"
        )
        let token = uniqueToken("parity")
        let client = try Client(token: token, config: serverConfig(dataDirectory: newDataDirectory()))

        try runScenario(client)
        XCTAssertTrue(client.shutdown(timeout: 10))

        for endpoint in ["events", "engage", "groups-records"] {
            let expected = try records(endpoint, token: rustToken)
            let actual = try records(endpoint, token: token)
            XCTAssertFalse(expected.isEmpty, "the Rust run left no \(endpoint) records")
            XCTAssertEqual(actual, expected, "\(endpoint) records differ from the Rust run's")
        }
    }

    private func runScenario(_ client: Client) throws {
        try client.identify(distinctId: "parity-user")
        try client.setGroup(key: "company_id", ids: ["acme", 7])
        try client.addGroup(key: "team_id", id: "red")
        try client.addGroup(key: "team_id", id: 5)
        try client.addGroup(key: "team_id", id: "red")
        try client.removeGroup(key: "company_id", id: 7)
        try client.removeGroup(key: "company_id", id: "absent")
        try client.register(properties: ["app": "parity"])

        let none: String? = nil
        try client.track(event: "Parity Typed", properties: [
            "text": "héllo \"quoted\" ✓",
            "count": 3,
            "negative": Int64(-42),
            "ratio": 0.25,
            "flag": false,
            "none": none as Any,
            "at": Date(timeIntervalSince1970: 1_796_415_330.123_456),
            "day": DateComponents(year: 2026, month: 12, day: 4),
            "price": Decimal(string: "19.90")!,
            "seats": Decimal(string: "40.0")!,
            "precise": Decimal(string: "3.14159265358979323846264")!,
            "bad": Double.nan,
            "list": ["a", 1, none as Any] as [Any],
            "nested": ["k": "v", "n": [1, 2]] as [String: Any],
        ])
        try client.track(event: "Parity Groups", groups: ["company_id": ["globex", 9] as [Any], "team_id": nil])

        let acme = try client.group(key: "company_id", id: "acme")
        try acme.set(["plan": "enterprise", "seats": 40])
        try acme.setOnce(["founded": DateComponents(year: 2026, month: 1, day: 2)])
        try acme.unset("seats")
        try acme.union(["tags": ["beta", "eu"]])
        try acme.remove(["tags": "eu"])
        try client.group(key: "company_id", id: 9).delete()
    }

    /// Returns the normalised records of `token` at one `/api` listing, as canonical JSON text
    /// in a stable order.
    private func records(_ endpoint: String, token: String) throws -> [String] {
        let body = try XCTUnwrap(JSONSerialization.jsonObject(with: ReferenceServer.get("/api/\(endpoint)?limit=10000")) as? [String: Any])
        let listed = try XCTUnwrap((body["events"] ?? body["records"]) as? [[String: Any]])
        var normalised: [String] = []
        for entry in listed where tokenOf(entry) == token {
            let comparable: [String: Any] = endpoint == "events"
                ? ["event": entry["event"] ?? NSNull(), "distinct_id": entry["distinct_id"] ?? NSNull(), "properties": normalise(entry["properties"] ?? NSNull())]
                : ["record": normalise(entry["record"] ?? NSNull()), "error": entry["error"] ?? NSNull()]
            let data = try JSONSerialization.data(withJSONObject: comparable, options: [.sortedKeys])
            normalised.append(String(decoding: data, as: UTF8.self))
        }
        return normalised.sorted()
    }

    private func tokenOf(_ entry: [String: Any]) -> String? {
        if let token = (entry["properties"] as? [String: Any])?["token"] as? String {
            return token
        }
        return (entry["record"] as? [String: Any])?["$token"] as? String
    }

    private func normalise(_ value: Any) -> Any {
        if let object = value as? [String: Any] {
            return object.filter { !ignoredFields.contains($0.key) }.mapValues(normalise)
        }
        if let list = value as? [Any] {
            return list.map(normalise)
        }
        return value
    }
}
