// Measures the cost of one call across the Swift→Rust boundary, with properties as JSON text
// and as typed uniffi values. Compiled with swiftc -O together with the generated and
// hand-written sources by bindings/bench/run.sh, against a release build of libgroupscope_ffi
// with the representation-benchmark feature.
import Foundation

let rounds = 5

/// A typical event: strings, integers, a float, a boolean and a short list.
let properties: [String: Any] = [
    "plan": "enterprise",
    "seats": 40,
    "price": 129.5,
    "trial": false,
    "source": "onboarding-email",
    "step": 3,
    "tags": ["beta", "eu"],
    "screen": "settings/billing",
]

func toPropertyValue(_ value: Any) -> PropertyValue {
    switch value {
    case let string as String: return .textValue(value: string)
    case let bool as Bool: return .boolValue(value: bool)
    case let int as Int: return .intValue(value: Int64(int))
    case let double as Double: return .doubleValue(value: double)
    case let list as [Any]: return .listValue(items: list.map(toPropertyValue))
    case let object as [String: Any]: return .objectValue(entries: object.mapValues(toPropertyValue))
    default: fatalError("no typed form for \(type(of: value))")
    }
}

func toTyped(_ map: [String: Any]) -> [String: PropertyValue] {
    map.mapValues(toPropertyValue)
}

/// Runs `body` `calls` times per round and prints the median nanoseconds per call.
func measure(_ name: String, calls: Int, _ body: () throws -> Void) rethrows {
    for _ in 0..<calls {
        try body()
    }
    var perCall: [Double] = []
    for _ in 0..<rounds {
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<calls {
            try body()
        }
        perCall.append(Double(DispatchTime.now().uptimeNanoseconds - start) / Double(calls))
    }
    perCall.sort()
    let label = name.padding(toLength: 44, withPad: " ", startingAt: 0)
    print(String(
        format: "%@ %9.0f ns/call (median of %ld rounds of %ld calls, min %.0f, max %.0f)",
        label, perCall[rounds / 2], rounds, calls, perCall.first!, perCall.last!
    ))
}

let arguments = CommandLine.arguments
guard arguments.count == 2 else {
    fatalError("usage: track-benchmark <loopback api host>")
}
let dataDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("groupscope-swift-bench-\(UUID().uuidString)")
try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)

measure("boundary only, no properties (libraryVersion)", calls: 20_000) {
    _ = libraryVersion()
}
try measure("boundary only, JSON text", calls: 20_000) {
    let encoded = try PropertyEncoder.encodeObject("properties", properties)
    _ = try decodeJsonProperties(propertiesJson: encoded.json)
}
measure("boundary only, typed PropertyValue map", calls: 20_000) {
    _ = decodeTypedProperties(properties: toTyped(properties))
}

let client = try Client(
    token: "bench-token",
    config: ClientConfig(dataDir: dataDirectory.path, apiHost: arguments[1], flushIntervalSeconds: 3600)
)
try measure("track, JSON text (Client.track)", calls: 2_000) {
    try client.track(event: "Benchmark", properties: properties)
}
try measure("track, typed PropertyValue map", calls: 2_000) {
    _ = try client.trackTyped(event: "Benchmark", properties: toTyped(properties))
}
print("records enqueued: \(client.stats().enqueued)")
try client.optOut()
