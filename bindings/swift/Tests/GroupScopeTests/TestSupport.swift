// Helpers of the Swift tests: temporary data directories and the reference server on loopback.
import Foundation
import XCTest
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

@testable import GroupScope

/// The reference server started by `scripts/test-swift.sh`, on a loopback address.
enum ReferenceServer {
    static var url: String {
        guard let url = ProcessInfo.processInfo.environment["GROUPSCOPE_SERVER_URL"] else {
            fatalError("GROUPSCOPE_SERVER_URL is not set; run the tests with scripts/test-swift.sh")
        }
        let host = URL(string: url)?.host
        precondition(
            host == "127.0.0.1" || host == "localhost" || host == "::1",
            "GROUPSCOPE_SERVER_URL must be a loopback address, got \(url)"
        )
        return url
    }

    /// Returns every event the server stored whose `token` property is `token`.
    static func events(token: String) throws -> [[String: Any]] {
        let body = try get("/api/events?limit=10000")
        let parsed = try JSONSerialization.jsonObject(with: body)
        let all: [[String: Any]]
        if let list = parsed as? [[String: Any]] {
            all = list
        } else if let object = parsed as? [String: Any], let list = object["events"] as? [[String: Any]] {
            all = list
        } else {
            throw TestFailure("unexpected /api/events response: \(String(decoding: body, as: UTF8.self))")
        }
        return all.filter { properties(of: $0)["token"] as? String == token }
    }

    /// Returns the properties of a stored event, whichever envelope the server wraps it in.
    static func properties(of event: [String: Any]) -> [String: Any] {
        if let properties = event["properties"] as? [String: Any] {
            return properties
        }
        if let inner = event["event"] as? [String: Any], let properties = inner["properties"] as? [String: Any] {
            return properties
        }
        return [:]
    }

    /// Returns the name of a stored event.
    static func name(of event: [String: Any]) -> String? {
        if let name = event["event"] as? String {
            return name
        }
        if let inner = event["event"] as? [String: Any] {
            return inner["event"] as? String
        }
        return event["name"] as? String
    }

    static func get(_ path: String) throws -> Data {
        let request = URLRequest(url: URL(string: url + path)!, timeoutInterval: 5)
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox(.failure(TestFailure("GET \(path) timed out")))

        URLSession.shared.dataTask(with: request) { data, response, error in
            if let error {
                box.result = .failure(error)
            } else if let status = (response as? HTTPURLResponse)?.statusCode, status != 200 {
                box.result = .failure(TestFailure("GET \(path) returned HTTP \(status)"))
            } else {
                box.result = .success(data ?? Data())
            }
            done.signal()
        }.resume()

        _ = done.wait(timeout: .now() + 10)
        return try box.result.get()
    }
}

/// The outcome of a request, written by URLSession's callback thread before it signals.
private final class ResultBox: @unchecked Sendable {
    var result: Result<Data, Error>

    init(_ result: Result<Data, Error>) {
        self.result = result
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// Returns a new empty data directory under the system temporary folder.
func newDataDirectory() throws -> String {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("groupscope-swift-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url.path
}

/// Returns a token no other test uses, so each test finds its own events at the server.
func uniqueToken(_ test: String) -> String {
    "sw-\(test)-\(UUID().uuidString.prefix(8).lowercased())"
}

/// Returns a configuration that sends to the reference server; 0 s sends at once.
func serverConfig(dataDirectory: String, flushIntervalSeconds: Double = 0) -> ClientConfig {
    ClientConfig(dataDir: dataDirectory, apiHost: ReferenceServer.url, flushIntervalSeconds: flushIntervalSeconds)
}
