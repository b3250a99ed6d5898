import Foundation
import XCTest

@testable import GroupScope

final class GroupsTests: XCTestCase {
    private func makeClient() throws -> Client {
        try Client(token: "sw-groups", config: serverConfig(dataDirectory: newDataDirectory(), flushIntervalSeconds: 60))
    }

    func testSetGroupDropsDuplicates() throws {
        let client = try makeClient()

        try client.setGroup(key: "company_id", ids: ["acme", "globex", "acme"])

        XCTAssertEqual(client.groups(), ["company_id": ["acme", "globex"]])
    }

    func testIntIdsNormalised() throws {
        let client = try makeClient()

        try client.setGroup(key: "team_id", ids: [5, Int64(7)])
        try client.addGroup(key: "team_id", id: "5")
        try client.addGroup(key: "team_id", id: 9)

        XCTAssertEqual(client.groups(), ["team_id": ["5", "7", "9"]])
    }

    func testAddGroupDuplicateIgnored() throws {
        let client = try makeClient()

        try client.addGroup(key: "company_id", id: "acme")
        try client.addGroup(key: "company_id", id: "acme")

        XCTAssertEqual(client.groups(), ["company_id": ["acme"]])
    }

    func testRemoveAbsentIdChangesNothing() throws {
        let client = try makeClient()
        try client.setGroup(key: "company_id", ids: ["acme", "globex"])

        try client.removeGroup(key: "company_id", id: "initech")

        XCTAssertEqual(client.groups(), ["company_id": ["acme", "globex"]])
    }

    func testRemoveLastIdRemovesKey() throws {
        let client = try makeClient()
        try client.setGroup(key: "company_id", id: "acme")
        try client.setGroup(key: "team_id", id: 3)

        try client.removeGroup(key: "company_id", id: "acme")
        try client.removeGroup(key: "team_id", id: 3)

        XCTAssertEqual(client.groups(), [:])
    }

    func testEmptyIdRejected() throws {
        let client = try makeClient()

        XCTAssertThrowsError(try client.addGroup(key: "company_id", id: "")) { error in
            guard case .InvalidGroupId(let message)? = error as? GroupscopeError else {
                return XCTFail("expected GroupscopeError.InvalidGroupId, got \(error)")
            }
            XCTAssertTrue(message.contains("company_id"), message)
        }
        XCTAssertEqual(client.groups(), [:])
    }

    func testEmptyKeyRejected() throws {
        let client = try makeClient()

        XCTAssertThrowsError(try client.setGroup(key: "", id: "acme")) { error in
            guard case .InvalidGroupKey? = error as? GroupscopeError else {
                return XCTFail("expected GroupscopeError.InvalidGroupKey, got \(error)")
            }
        }
    }

    func testStateSurvivesRestart() throws {
        let dataDirectory = try newDataDirectory()

        do {
            let client = try Client(token: "sw-restart", config: serverConfig(dataDirectory: dataDirectory, flushIntervalSeconds: 60))
            try client.identify(distinctId: "user-42")
            try client.setGroup(key: "company_id", ids: ["acme", 7])
            try client.addGroup(key: "team_id", id: "red")
            try client.removeGroup(key: "company_id", id: 7)
            XCTAssertTrue(client.shutdown(timeout: 5))
        }

        let restarted = try Client(token: "sw-restart", config: serverConfig(dataDirectory: dataDirectory, flushIntervalSeconds: 60))
        XCTAssertEqual(restarted.distinctId(), "user-42")
        XCTAssertEqual(restarted.groups(), ["company_id": ["acme"], "team_id": ["red"]])
    }
}
