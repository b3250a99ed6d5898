// The idiomatic Swift API of groupscope, over the generated `Client` and `GroupHandle`.
//
// The generated classes take properties and group ids as JSON text (`trackEncoded`,
// `setGroupJson`, ...). These extensions take Swift values instead, encode them with
// `PropertyEncoder`, and pass the count of replaced non-finite floats to the core:
//
//     let client = try Client(token: "PROJECT_TOKEN", config: ClientConfig(dataDir: supportDirectory.path))
//     try client.identify(distinctId: "user-42")
//     try client.setGroup(key: "company_id", ids: ["acme"])
//     try client.track(event: "Signup", properties: ["plan": "pro", "seats": 5])
//     try client.group(key: "company_id", id: "acme").set(["plan": "enterprise"])
//
// Releasing the last reference to a `Client` shuts it down, waiting at most 2 s for delivery.
import Foundation

/// A value that can name a group id: a `String` or an integer. Integers are sent as their
/// decimal string, so `5` and `"5"` are the same id.
public protocol GroupIdentifier {
    /// The id as JSON text: a string or an integer.
    var groupIdentifierJSON: String { get }
}

extension String: GroupIdentifier {
    public var groupIdentifierJSON: String { PropertyEncoder.encodeString(self) }
}

extension Int: GroupIdentifier {
    public var groupIdentifierJSON: String { String(self) }
}

extension Int64: GroupIdentifier {
    public var groupIdentifierJSON: String { String(self) }
}

extension Int32: GroupIdentifier {
    public var groupIdentifierJSON: String { String(self) }
}

extension UInt64: GroupIdentifier {
    public var groupIdentifierJSON: String { String(self) }
}

extension UInt32: GroupIdentifier {
    public var groupIdentifierJSON: String { String(self) }
}

extension Client {
    /// Records an event and returns its `$insert_id`.
    ///
    /// `groups` maps group keys to one id, an array of ids, or `nil` to leave that key off
    /// this event. It wins over the group super properties set with `setGroup`.
    ///
    /// - Throws: `GroupscopeError.InvalidEventName`, `.InvalidProperty`, `.InvalidGroupId` or
    ///   another case naming the rejected value; nothing is recorded then.
    @discardableResult
    public func track(
        event: String,
        properties: [String: Any] = [:],
        groups: [String: Any?] = [:],
        distinctId: String? = nil
    ) throws -> String {
        let call = try PropertyEncoder.encodeTrackCall(
            event: event,
            properties: properties,
            groups: groups,
            distinctId: distinctId
        )
        return try trackEncoded(callJson: call.json, nonFiniteReplaced: call.nonFiniteReplaced)
    }

    /// Registers super properties added to every later event, and persists them.
    public func register(properties: [String: Any]) throws {
        try registerJson(propertiesJson: PropertyEncoder.encodeObject("properties", properties).json)
    }

    /// Replaces the group super property `key` with `ids` and persists it. Duplicate ids are
    /// kept once.
    public func setGroup(key: String, ids: [any GroupIdentifier]) throws {
        let json = "[" + ids.map(\.groupIdentifierJSON).joined(separator: ",") + "]"
        try setGroupJson(key: key, idsJson: json)
    }

    /// Replaces the group super property `key` with the single id `id` and persists it.
    public func setGroup(key: String, id: any GroupIdentifier) throws {
        try setGroup(key: key, ids: [id])
    }

    /// Adds `id` to the group super property `key` unless it is there, and persists it.
    public func addGroup(key: String, id: any GroupIdentifier) throws {
        try addGroupJson(key: key, idJson: id.groupIdentifierJSON)
    }

    /// Removes `id` from the group super property `key`. Removing the last id removes the key,
    /// and removing an absent id changes nothing.
    public func removeGroup(key: String, id: any GroupIdentifier) throws {
        try removeGroupJson(key: key, idJson: id.groupIdentifierJSON)
    }

    /// Returns a handle on the group profile `(key, id)`.
    public func group(key: String, id: any GroupIdentifier) throws -> GroupHandle {
        try groupJson(key: key, idJson: id.groupIdentifierJSON)
    }
}

extension GroupHandle {
    /// Sets properties on the group profile, creating it if absent (`$set`).
    public func set(_ properties: [String: Any]) throws {
        try setJson(propertiesJson: PropertyEncoder.encodeObject("properties", properties).json)
    }

    /// Sets only the properties not yet present on the group profile (`$set_once`).
    public func setOnce(_ properties: [String: Any]) throws {
        try setOnceJson(propertiesJson: PropertyEncoder.encodeObject("properties", properties).json)
    }

    /// Deletes the named properties of the group profile (`$unset`).
    public func unset(_ names: String...) throws {
        try unset(names: names)
    }

    /// Adds each value to the named list property, keeping every value once (`$union`).
    public func union(_ values: [String: [Any]]) throws {
        try unionJson(valuesJson: PropertyEncoder.encodeObject("values", values).json)
    }

    /// Removes one value from each named list property (`$remove`).
    public func remove(_ values: [String: Any]) throws {
        try removeJson(valuesJson: PropertyEncoder.encodeObject("values", values).json)
    }
}
