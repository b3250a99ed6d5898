// Encodes Swift values into the JSON text that crosses into the Rust core.
//
// The mapping is the same in every groupscope binding:
// - `Date` becomes a UTC ISO-8601 string `YYYY-MM-DDTHH:MM:SS.mmmZ` (milliseconds, truncated).
// - `DateComponents` with only a year, month and day becomes `YYYY-MM-DD`.
// - A `Decimal` becomes an integer when it is whole and fits in 64 bits, otherwise a number when
//   the shortest `Double` form has the same value, otherwise its `description` as a string.
// - NaN and infinite `Double`s and `Float`s, and a NaN `Decimal`, become `null` and are counted.
// - `UUID` (lowercase) and `URL` become strings, dictionaries with `String` keys become objects,
//   arrays and sets become lists, and `nil` and `NSNull` become `null`.
// Any other value, or nesting deeper than 64 levels, is rejected with
// `GroupscopeError.InvalidProperty` naming the property path.
import Foundation

/// JSON text plus the number of non-finite floats that were replaced by `null` in it.
struct EncodedJSON {
    let json: String
    let nonFiniteReplaced: UInt64
}

enum PropertyEncoder {
    /// Maximum nesting of arrays and dictionaries inside one property.
    static let maxDepth = 64

    /// Encodes `properties` as a JSON object; `argument` names it in errors.
    static func encodeObject(_ argument: String, _ properties: [String: Any]) throws -> EncodedJSON {
        var writer = Writer()
        try writer.writeObject(argument, properties, depth: 0)
        return EncodedJSON(json: writer.text, nonFiniteReplaced: writer.nonFinite)
    }

    /// Encodes a whole `track` call as one JSON object with `event`, `properties`, `groups` and
    /// `distinct_id`, the form `Client.trackEncoded` takes.
    static func encodeTrackCall(
        event: String,
        properties: [String: Any],
        groups: [String: Any?],
        distinctId: String?
    ) throws -> EncodedJSON {
        var writer = Writer()
        writer.text += "{\"event\":"
        writer.writeString(event)
        writer.text += ",\"properties\":"
        try writer.writeObject("properties", properties, depth: 0)
        if !groups.isEmpty {
            writer.text += ",\"groups\":"
            try writer.writeObject("groups", groups.mapValues { $0 as Any }, depth: 0)
        }
        if let distinctId {
            writer.text += ",\"distinct_id\":"
            writer.writeString(distinctId)
        }
        writer.text += "}"
        return EncodedJSON(json: writer.text, nonFiniteReplaced: writer.nonFinite)
    }

    /// Encodes a string as a JSON string literal.
    static func encodeString(_ value: String) -> String {
        var writer = Writer()
        writer.writeString(value)
        return writer.text
    }

    /// Encodes one value of any supported type; `path` names it in errors.
    static func encodeValue(_ path: String, _ value: Any?) throws -> EncodedJSON {
        var writer = Writer()
        try writer.writeValue(path, value, depth: 0)
        return EncodedJSON(json: writer.text, nonFiniteReplaced: writer.nonFinite)
    }

    private struct Writer {
        var text = ""
        var nonFinite: UInt64 = 0

        init() {
            text.reserveCapacity(128)
        }

        mutating func writeValue(_ path: String, _ value: Any?, depth: Int) throws {
            guard let value else {
                text += "null"
                return
            }
            if depth > PropertyEncoder.maxDepth {
                throw GroupscopeError.InvalidProperty(
                    message: "invalid property \"\(path)\": arrays and dictionaries are nested deeper than \(PropertyEncoder.maxDepth) levels; flatten the value"
                )
            }

            // The common types come first, because each failed `as?` cast costs time.
            // NOTE: on Apple platforms an NSNumber 0 or 1 (as JSONSerialization returns) also
            // casts to `Bool` and is sent as a boolean. Linux has no such bridging, so the tests
            // here do not cover it.
            switch value {
            case let string as String: writeString(string)
            case let bool as Bool: text += bool ? "true" : "false"
            case let int as Int: text += String(int)
            case let int as Int64: text += String(int)
            case let int as Int32: text += String(int)
            case let int as Int16: text += String(int)
            case let int as Int8: text += String(int)
            case let int as UInt: text += String(int)
            case let int as UInt64: text += String(int)
            case let int as UInt32: text += String(int)
            case let int as UInt16: text += String(int)
            case let int as UInt8: text += String(int)
            case let double as Double: writeDouble(double)
            case let float as Float: writeFloat(float)
            case let decimal as Decimal: writeDecimal(decimal)
            case let date as Date: writeString(formatInstant(date))
            case let components as DateComponents: try writeCalendarDate(path, components)
            case let uuid as UUID: writeString(uuid.uuidString.lowercased())
            case let url as URL: writeString(url.absoluteString)
            case is NSNull: text += "null"
            case let character as Character: writeString(String(character))
            case let object as [String: Any]: try writeObject(path, object, depth: depth + 1)
            case let list as [Any]: try writeList(path, list, depth: depth + 1)
            case let set as Set<AnyHashable>: try writeList(path, set.map { $0.base }, depth: depth + 1)
            case let optional as AnyOptional: try writeValue(path, optional.wrappedValue, depth: depth)
            case let dictionary as [AnyHashable: Any]:
                let key = dictionary.keys.first { !($0.base is String) }?.base
                throw GroupscopeError.InvalidProperty(
                    message: "invalid property \"\(path)\": the key \(key.map { "\($0)" } ?? "?") is a \(key.map { "\(type(of: $0))" } ?? "?"); use String keys"
                )
            default:
                throw GroupscopeError.InvalidProperty(
                    message: "invalid property \"\(path)\": a \(type(of: value)) cannot be sent; use a String, number, Bool, Date, Decimal, dictionary or array"
                )
            }
        }

        mutating func writeObject(_ path: String, _ object: [String: Any], depth: Int) throws {
            text += "{"
            var first = true
            for (key, value) in object {
                if !first {
                    text += ","
                }
                first = false
                writeString(key)
                text += ":"
                try writeValue(path == "properties" ? key : "\(path).\(key)", value, depth: depth)
            }
            text += "}"
        }

        mutating func writeList(_ path: String, _ list: [Any], depth: Int) throws {
            text += "["
            for (index, item) in list.enumerated() {
                if index > 0 {
                    text += ","
                }
                try writeValue("\(path)[\(index)]", item, depth: depth)
            }
            text += "]"
        }

        mutating func writeDouble(_ value: Double) {
            if value.isFinite {
                // `description` is the shortest form that reads back as the same Double.
                text += value.description
            } else {
                nonFinite += 1
                text += "null"
            }
        }

        mutating func writeFloat(_ value: Float) {
            if value.isFinite {
                text += value.description
            } else {
                nonFinite += 1
                text += "null"
            }
        }

        mutating func writeDecimal(_ value: Decimal) {
            if value.isNaN {
                nonFinite += 1
                text += "null"
                return
            }

            // `Decimal.description` writes plain digits with a `.` in every locale.
            let digits = value.description
            var rounded = Decimal()
            var original = value
            NSDecimalRound(&rounded, &original, 0, .plain)
            if rounded == value, Int64(digits) != nil || UInt64(digits) != nil {
                text += digits
                return
            }

            if let double = Double(digits), double.isFinite, Decimal(string: double.description) == value {
                text += double.description
            } else {
                writeString(digits)
            }
        }

        mutating func writeCalendarDate(_ path: String, _ components: DateComponents) throws {
            guard let year = components.year, let month = components.month, let day = components.day,
                components.hour == nil, components.minute == nil, components.second == nil
            else {
                throw GroupscopeError.InvalidProperty(
                    message: "invalid property \"\(path)\": DateComponents must hold only a year, month and day; use a Date for a moment in time"
                )
            }
            writeString(String(format: "%04ld-%02ld-%02ld", year, month, day))
        }

        mutating func writeString(_ value: String) {
            let needsEscaping = value.utf8.contains { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }
            guard needsEscaping else {
                text += "\""
                text += value
                text += "\""
                return
            }

            text += "\""
            for scalar in value.unicodeScalars {
                switch scalar {
                case "\"": text += "\\\""
                case "\\": text += "\\\\"
                case "\n": text += "\\n"
                case "\r": text += "\\r"
                case "\t": text += "\\t"
                case "\u{08}": text += "\\b"
                case "\u{0C}": text += "\\f"
                case let control where control.value < 0x20:
                    text += String(format: "\\u%04x", control.value)
                default:
                    text.unicodeScalars.append(scalar)
                }
            }
            text += "\""
        }
    }
}

/// An `Optional` of any wrapped type, so that an optional boxed in `Any` can be unwrapped.
private protocol AnyOptional {
    var wrappedValue: Any? { get }
}

extension Optional: AnyOptional {
    var wrappedValue: Any? {
        switch self {
        case .some(let wrapped): wrapped
        case .none: nil
        }
    }
}

/// Formats `date` as `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC, truncating to the millisecond.
func formatInstant(_ date: Date) -> String {
    // Rounding to whole microseconds first keeps a Date made from 0.123 s from printing .122.
    let microseconds = (date.timeIntervalSince1970 * 1_000_000).rounded()
    let milliseconds = (microseconds / 1000).rounded(.down)
    let seconds = (milliseconds / 1000).rounded(.down)
    let fraction = Int(milliseconds - seconds * 1000)

    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC")!
    let parts = calendar.dateComponents(
        [.year, .month, .day, .hour, .minute, .second],
        from: Date(timeIntervalSince1970: seconds)
    )
    return String(
        format: "%04ld-%02ld-%02ldT%02ld:%02ld:%02ld.%03ldZ",
        parts.year!, parts.month!, parts.day!, parts.hour!, parts.minute!, parts.second!, fraction
    )
}
