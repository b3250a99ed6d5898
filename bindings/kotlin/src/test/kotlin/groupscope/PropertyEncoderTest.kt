package groupscope

import java.math.BigDecimal
import java.math.BigInteger
import java.time.Instant
import java.time.LocalDate
import java.time.LocalDateTime
import java.time.OffsetDateTime
import java.time.ZoneOffset
import java.util.UUID
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue

class PropertyEncoderTest {
    private fun encode(properties: Map<String, Any?>) = PropertyEncoder.encodeObject("properties", properties)

    @Test
    fun trackCallEncoded() {
        val call = PropertyEncoder.encodeTrackCall(
            "Signup \"beta\"",
            mapOf("ratio" to Double.NaN),
            linkedMapOf("company_id" to listOf("acme", 5L), "team_id" to null),
            "user-1",
        )

        assertEquals(
            """{"event":"Signup \"beta\"","properties":{"ratio":null},"groups":{"company_id":["acme",5],"team_id":null},"distinct_id":"user-1"}""",
            call.json,
        )
        assertEquals(1L, call.nonFiniteReplaced)
    }

    @Test
    fun trackCallWithoutOptions() {
        val call = PropertyEncoder.encodeTrackCall("Opened", emptyMap(), emptyMap(), null)

        assertEquals("""{"event":"Opened","properties":{}}""", call.json)
    }

    @Test
    fun scalarsEncoded() {
        val encoded = encode(linkedMapOf("s" to "pro", "i" to 5, "l" to 5_000_000_000L, "b" to true, "d" to 1.5, "n" to null))

        assertEquals("""{"s":"pro","i":5,"l":5000000000,"b":true,"d":1.5,"n":null}""", encoded.json)
        assertEquals(0L, encoded.nonFiniteReplaced)
    }

    @Test
    fun datesEncodedAsUtcIso() {
        val instant = Instant.parse("2026-12-04T20:15:30.123456Z")
        val offset = OffsetDateTime.of(2026, 12, 4, 21, 15, 30, 0, ZoneOffset.ofHours(1))

        val encoded = encode(linkedMapOf("at" to instant, "offset" to offset, "day" to LocalDate.of(2026, 1, 2)))

        assertEquals("""{"at":"2026-12-04T20:15:30.123Z","offset":"2026-12-04T20:15:30.000Z","day":"2026-01-02"}""", encoded.json)
    }

    @Test
    fun decimalsMappedByValue() {
        val encoded = encode(
            linkedMapOf(
                "price" to BigDecimal("19.90"),
                "whole" to BigDecimal("40.00"),
                "unsigned" to BigDecimal("18446744073709551615"),
                "precise" to BigDecimal("3.14159265358979323846264"),
                "huge" to BigDecimal("1E+30"),
                "big" to BigInteger("-9223372036854775808"),
            ),
        )

        assertEquals(
            """{"price":19.9,"whole":40,"unsigned":18446744073709551615,"precise":"3.14159265358979323846264","huge":1.0E30,"big":-9223372036854775808}""",
            encoded.json,
        )
    }

    @Test
    fun bigIntegerOverflowRejected() {
        val error = assertFailsWith<GroupscopeException.InvalidProperty> {
            encode(mapOf("count" to BigInteger("18446744073709551616")))
        }

        assertTrue(error.message!!.contains("\"count\""), error.message)
        assertTrue(error.message!!.contains("18446744073709551616 does not fit in 64 bits"), error.message)
    }

    @Test
    fun localDateTimeReadAsUtc() {
        val encoded = encode(mapOf("at" to LocalDateTime.of(2026, 12, 4, 20, 15, 30, 123_456_789)))

        assertEquals("""{"at":"2026-12-04T20:15:30.123Z"}""", encoded.json)
    }

    @Test
    fun loneSurrogateReplaced() {
        val encoded = encode(mapOf("text" to "a\uD800b\uDC00c"))

        assertEquals("{\"text\":\"a\uFFFDb\uFFFDc\"}", encoded.json)
    }

    @Test
    fun selfContainingListRejected() {
        val list = mutableListOf<Any?>()
        list.add(list)

        val error = assertFailsWith<GroupscopeException.InvalidProperty> { encode(mapOf("loop" to list)) }

        assertTrue(error.message!!.contains("nested deeper than 64 levels"), error.message)
    }

    @Test
    fun nonFiniteReplacedAndCounted() {
        val encoded = encode(
            linkedMapOf("nan" to Double.NaN, "list" to listOf(1.0, Double.POSITIVE_INFINITY), "nested" to mapOf("f" to Float.NEGATIVE_INFINITY)),
        )

        assertEquals("""{"nan":null,"list":[1.0,null],"nested":{"f":null}}""", encoded.json)
        assertEquals(3L, encoded.nonFiniteReplaced)
    }

    @Test
    fun stringsEscaped() {
        val encoded = encode(mapOf("text" to "quote \" backslash \\ newline \n bell \u0007 emoji \uD83D\uDE00"))

        assertEquals("{\"text\":\"quote \\\" backslash \\\\ newline \\n bell \\u0007 emoji \uD83D\uDE00\"}", encoded.json)
    }

    @Test
    fun collectionsEncoded() {
        val id = UUID.fromString("123e4567-e89b-12d3-a456-426614174000")

        val encoded = encode(linkedMapOf("set" to linkedSetOf("a", "b"), "array" to arrayOf(1, 2), "ints" to intArrayOf(3), "uuid" to id))

        assertEquals("""{"set":["a","b"],"array":[1,2],"ints":[3],"uuid":"123e4567-e89b-12d3-a456-426614174000"}""", encoded.json)
    }

    @Test
    fun unsupportedTypeNamesPath() {
        val error = assertFailsWith<GroupscopeException.InvalidProperty> {
            encode(mapOf("order" to mapOf("payload" to Thread.currentThread())))
        }

        assertTrue(error.message!!.contains("\"order.payload\""), error.message)
        assertTrue(error.message!!.contains("java.lang.Thread"), error.message)
    }

    @Test
    fun nonStringKeyRejected() {
        val error = assertFailsWith<GroupscopeException.InvalidProperty> {
            encode(mapOf("counts" to mapOf(1 to "one")))
        }

        assertTrue(error.message!!.contains("the key 1 is a java.lang.Integer"), error.message)
    }
}
