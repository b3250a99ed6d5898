import Foundation
import XCTest

@testable import GroupScope

final class PropertyEncoderTests: XCTestCase {
    private func decode(_ json: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    }

    func testTrackCallEncoded() throws {
        let call = try PropertyEncoder.encodeTrackCall(
            event: "Signup \"beta\"",
            properties: ["ratio": Double.nan],
            groups: ["team_id": nil],
            distinctId: "user-1"
        )

        XCTAssertEqual(call.json, #"{"event":"Signup \"beta\"","properties":{"ratio":null},"groups":{"team_id":null},"distinct_id":"user-1"}"#)
        XCTAssertEqual(call.nonFiniteReplaced, 1)
    }

    func testTrackCallWithoutOptions() throws {
        let call = try PropertyEncoder.encodeTrackCall(event: "Opened", properties: [:], groups: [:], distinctId: nil)

        XCTAssertEqual(call.json, #"{"event":"Opened","properties":{}}"#)
    }

    func testScalarsEncoded() throws {
        let encoded = try PropertyEncoder.encodeObject("properties", ["s": "pro", "i": 5, "b": true, "d": 1.5])
        let decoded = try decode(encoded.json)

        XCTAssertEqual(decoded["s"] as? String, "pro")
        XCTAssertEqual(decoded["i"] as? Int, 5)
        XCTAssertEqual(decoded["b"] as? Bool, true)
        XCTAssertEqual(decoded["d"] as? Double, 1.5)
        XCTAssertEqual(encoded.nonFiniteReplaced, 0)
    }

    func testNilEncodedAsNull() throws {
        let missing: String? = nil

        let encoded = try PropertyEncoder.encodeObject("properties", ["missing": missing as Any])

        XCTAssertEqual(encoded.json, #"{"missing":null}"#)
    }

    func testDateEncodedAsUtcMilliseconds() throws {
        let date = Date(timeIntervalSince1970: 1_796_415_330.123_456)

        let encoded = try PropertyEncoder.encodeValue("at", date)

        XCTAssertEqual(encoded.json, #""2026-12-04T20:15:30.123Z""#)
    }

    func testCalendarDateEncoded() throws {
        let day = DateComponents(year: 2026, month: 1, day: 2)

        let encoded = try PropertyEncoder.encodeValue("day", day)

        XCTAssertEqual(encoded.json, #""2026-01-02""#)
    }

    func testDecimalsMappedByValue() throws {
        let cases: [(String, String)] = [
            ("19.90", "19.9"),
            ("40.00", "40"),
            ("-9223372036854775808", "-9223372036854775808"),
            ("18446744073709551615", "18446744073709551615"),
            ("3.14159265358979323846264", #""3.14159265358979323846264""#),
            ("1E+30", "1e+30"),
        ]

        for (input, expected) in cases {
            let decimal = try XCTUnwrap(Decimal(string: input))

            let encoded = try PropertyEncoder.encodeValue("price", decimal)

            XCTAssertEqual(encoded.json, expected, "Decimal(string: \"\(input)\")")
        }
    }

    func testNanDecimalReplacedAndCounted() throws {
        let encoded = try PropertyEncoder.encodeValue("price", Decimal.nan)

        XCTAssertEqual(encoded.json, "null")
        XCTAssertEqual(encoded.nonFiniteReplaced, 1)
    }

    func testDeepNestingRejected() {
        var nested: Any = "leaf"
        for _ in 0..<70 {
            nested = [nested]
        }

        XCTAssertThrowsError(try PropertyEncoder.encodeObject("properties", ["deep": nested])) { error in
            guard case .InvalidProperty(let message)? = error as? GroupscopeError else {
                return XCTFail("expected GroupscopeError.InvalidProperty, got \(error)")
            }
            XCTAssertTrue(message.contains("nested deeper than 64 levels"), message)
        }
    }

    func testNestedOptionalsUnwrapped() throws {
        let inner: Int? = 5
        let outer: Int?? = inner

        let encoded = try PropertyEncoder.encodeObject("properties", ["count": outer as Any, "list": [inner, nil] as [Int?]])

        XCTAssertTrue(encoded.json == #"{"count":5,"list":[5,null]}"# || encoded.json == #"{"list":[5,null],"count":5}"#, encoded.json)
    }

    func testNonFiniteReplacedAndCounted() throws {
        let properties: [String: Any] = [
            "nan": Double.nan,
            "list": [1.0, Double.infinity],
            "nested": ["f": -Float.infinity],
        ]

        let encoded = try PropertyEncoder.encodeObject("properties", properties)
        let decoded = try decode(encoded.json)

        XCTAssertEqual(encoded.nonFiniteReplaced, 3)
        XCTAssertTrue(decoded["nan"] is NSNull)
        XCTAssertTrue((decoded["list"] as? [Any])?.last is NSNull)
    }

    func testStringsEscaped() throws {
        let encoded = try PropertyEncoder.encodeValue("text", "quote \" backslash \\ newline \n bell \u{07} emoji 😀")

        XCTAssertEqual(encoded.json, #""quote \" backslash \\ newline \n bell \u0007 emoji 😀""#)
    }

    func testUnsupportedTypeNamesPath() {
        let properties: [String: Any] = ["order": ["handle": FileHandle.standardError]]

        XCTAssertThrowsError(try PropertyEncoder.encodeObject("properties", properties)) { error in
            guard case .InvalidProperty(let message)? = error as? GroupscopeError else {
                return XCTFail("expected GroupscopeError.InvalidProperty, got \(error)")
            }
            XCTAssertTrue(message.contains(#""order.handle""#), message)
            XCTAssertTrue(message.contains("FileHandle"), message)
        }
    }

    func testNonStringKeyRejected() {
        let properties: [String: Any] = ["counts": [1: "one"]]

        XCTAssertThrowsError(try PropertyEncoder.encodeObject("properties", properties)) { error in
            guard case .InvalidProperty(let message)? = error as? GroupscopeError else {
                return XCTFail("expected GroupscopeError.InvalidProperty, got \(error)")
            }
            XCTAssertTrue(message.contains("the key 1 is a Int"), message)
        }
    }
}
