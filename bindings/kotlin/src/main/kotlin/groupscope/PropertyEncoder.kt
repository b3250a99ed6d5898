// Encodes Kotlin values into the JSON text that crosses into the Rust core.
//
// The mapping is the same in every groupscope binding:
// - `Instant`, `java.util.Date`, `OffsetDateTime` and `ZonedDateTime` become UTC ISO-8601 strings
//   `YYYY-MM-DDTHH:MM:SS.mmmZ` (milliseconds, sub-millisecond digits truncated). A
//   `LocalDateTime`, which has no zone, is read as UTC.
// - `LocalDate` becomes `YYYY-MM-DD`.
// - A `BigDecimal` becomes an integer when it is whole and fits in 64 bits, otherwise a number
//   when the shortest `Double` form has the same value, otherwise its `toString()` as a string.
// - Integers, `BigInteger` included, must fit in 64 bits (signed, or unsigned when positive).
// - NaN and infinite `Double`s and `Float`s become `null`, and are counted.
// - `UUID` and enum constants become strings, maps with string keys become objects, and lists,
//   sets, sequences and arrays become lists. A lone UTF-16 surrogate becomes U+FFFD.
// Any other value, or nesting deeper than 64 levels, is rejected with
// `GroupscopeException.InvalidProperty` naming the property path.
package groupscope

import java.math.BigDecimal
import java.math.BigInteger
import java.time.Instant
import java.time.LocalDate
import java.time.LocalDateTime
import java.time.OffsetDateTime
import java.time.ZoneOffset
import java.time.ZonedDateTime
import java.time.format.DateTimeFormatter
import java.util.Date
import java.util.UUID

/** JSON text plus the number of non-finite floats that were replaced by `null` in it. */
internal class EncodedJson(val json: String, val nonFiniteReplaced: Long)

internal object PropertyEncoder {
    /** Maximum nesting of lists and maps inside one property; it also stops a list that contains itself. */
    const val MAX_DEPTH = 64

    private val minLong = BigInteger.valueOf(Long.MIN_VALUE)
    private val maxULong = BigInteger.ONE.shiftLeft(64) - BigInteger.ONE

    private val instantFormat: DateTimeFormatter =
        DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC)

    /** Encodes `properties` as a JSON object. `argument` names it in errors. */
    fun encodeObject(argument: String, properties: Map<String, Any?>): EncodedJson {
        val writer = Writer()
        writer.writeMap(argument, properties, 0)
        return EncodedJson(writer.text.toString(), writer.nonFinite)
    }

    /**
     * Encodes a whole `track` call as one JSON object with `event`, `properties`, `groups` and
     * `distinct_id`, the form `Client.trackEncoded` takes.
     */
    fun encodeTrackCall(event: String, properties: Map<String, Any?>, groups: Map<String, Any?>, distinctId: String?): EncodedJson {
        val writer = Writer()
        writer.text.append("{\"event\":")
        writer.writeString(event)
        writer.text.append(",\"properties\":")
        writer.writeMap("properties", properties, 0)
        if (groups.isNotEmpty()) {
            writer.text.append(",\"groups\":")
            writer.writeMap("groups", groups, 0)
        }
        if (distinctId != null) {
            writer.text.append(",\"distinct_id\":")
            writer.writeString(distinctId)
        }
        writer.text.append('}')
        return EncodedJson(writer.text.toString(), writer.nonFinite)
    }

    /** Encodes one value of any supported type; `path` names it in errors. */
    fun encodeValue(path: String, value: Any?): EncodedJson {
        val writer = Writer()
        writer.writeValue(path, value, 0)
        return EncodedJson(writer.text.toString(), writer.nonFinite)
    }

    private class Writer {
        val text = StringBuilder(128)
        var nonFinite = 0L

        fun writeValue(path: String, value: Any?, depth: Int) {
            if (depth > MAX_DEPTH) {
                throw GroupscopeException.InvalidProperty(
                    "invalid property \"$path\": lists and maps are nested deeper than $MAX_DEPTH levels " +
                        "(is a list or map inside itself?); flatten the value",
                )
            }
            when (value) {
                null -> text.append("null")
                is String -> writeString(value)
                is Boolean -> text.append(if (value) "true" else "false")
                is Int, is Long, is Short, is Byte -> text.append(value.toString())
                is Double -> writeDouble(value)
                is Float -> writeFloat(value)
                is ULong -> text.append(value.toString())
                is BigDecimal -> writeDecimal(value)
                is BigInteger -> writeBigInteger(path, value)
                is Char -> writeString(value.toString())
                is Instant -> writeString(instantFormat.format(value))
                is Date -> writeString(instantFormat.format(value.toInstant()))
                is OffsetDateTime -> writeString(instantFormat.format(value.toInstant()))
                is ZonedDateTime -> writeString(instantFormat.format(value.toInstant()))
                is LocalDateTime -> writeString(instantFormat.format(value.toInstant(ZoneOffset.UTC)))
                is LocalDate -> writeString(value.toString())
                is UUID -> writeString(value.toString())
                is Enum<*> -> writeString(value.name)
                is Map<*, *> -> writeMap(path, value, depth + 1)
                is Iterable<*> -> writeList(path, value.iterator(), depth + 1)
                is Sequence<*> -> writeList(path, value.iterator(), depth + 1)
                is Array<*> -> writeList(path, value.iterator(), depth + 1)
                is IntArray -> writeList(path, value.iterator(), depth + 1)
                is LongArray -> writeList(path, value.iterator(), depth + 1)
                is DoubleArray -> writeList(path, value.iterator(), depth + 1)
                is BooleanArray -> writeList(path, value.iterator(), depth + 1)
                else -> throw GroupscopeException.InvalidProperty(
                    "invalid property \"$path\": a ${value.javaClass.name} cannot be sent; " +
                        "use a string, number, boolean, Instant, LocalDate, BigDecimal, map or list",
                )
            }
        }

        fun writeMap(path: String, map: Map<*, *>, depth: Int) {
            text.append('{')
            var first = true
            for ((key, value) in map) {
                if (key !is String) {
                    throw GroupscopeException.InvalidProperty(
                        "invalid property \"$path\": the key $key is a ${key?.javaClass?.name ?: "null"}; " +
                            "use string keys",
                    )
                }
                if (!first) text.append(',')
                first = false
                writeString(key)
                text.append(':')
                writeValue(if (path.isEmpty() || path == "properties") key else "$path.$key", value, depth)
            }
            text.append('}')
        }

        fun writeList(path: String, items: Iterator<*>, depth: Int) {
            text.append('[')
            var index = 0
            for (item in items) {
                if (index > 0) text.append(',')
                writeValue("$path[$index]", item, depth)
                index++
            }
            text.append(']')
        }

        /** Returns whether the surrogate at [index] is half of a valid high-low pair. */
        fun isPairedSurrogate(value: String, index: Int): Boolean {
            val char = value[index]
            return if (char.isHighSurrogate()) {
                index + 1 < value.length && value[index + 1].isLowSurrogate()
            } else {
                index > 0 && value[index - 1].isHighSurrogate()
            }
        }

        fun writeDouble(value: Double) {
            if (value.isFinite()) {
                text.append(value.toString())
            } else {
                nonFinite++
                text.append("null")
            }
        }

        fun writeFloat(value: Float) {
            if (value.isFinite()) {
                // Float.toString gives the shortest digits that read back as the same Float,
                // so 0.1f is sent as 0.1 and not as 0.10000000149011612.
                text.append(value.toString())
            } else {
                nonFinite++
                text.append("null")
            }
        }

        fun writeDecimal(value: BigDecimal) {
            val whole = value.signum() == 0 || value.stripTrailingZeros().scale() <= 0
            if (whole) {
                val integer = value.toBigIntegerExact()
                if (integer >= minLong && integer <= maxULong) {
                    text.append(integer.toString())
                    return
                }
            }

            val double = value.toDouble()
            if (double.isFinite() && BigDecimal(double.toString()).compareTo(value) == 0) {
                text.append(double.toString())
            } else {
                writeString(value.toString())
            }
        }

        fun writeBigInteger(path: String, value: BigInteger) {
            if (value < minLong || value > maxULong) {
                throw GroupscopeException.InvalidProperty(
                    "invalid property \"$path\": the integer $value does not fit in 64 bits; send it as a String or a BigDecimal",
                )
            }
            text.append(value.toString())
        }

        fun writeString(value: String) {
            text.append('"')
            for ((index, char) in value.withIndex()) {
                if (char.isSurrogate() && !isPairedSurrogate(value, index)) {
                    text.append('\uFFFD')
                    continue
                }
                when (char) {
                    '"' -> text.append("\\\"")
                    '\\' -> text.append("\\\\")
                    '\n' -> text.append("\\n")
                    '\r' -> text.append("\\r")
                    '\t' -> text.append("\\t")
                    '\b' -> text.append("\\b")
                    '\u000C' -> text.append("\\f")
                    else -> if (char < ' ') {
                        text.append("\\u").append(String.format("%04x", char.code))
                    } else {
                        text.append(char)
                    }
                }
            }
            text.append('"')
        }
    }
}
