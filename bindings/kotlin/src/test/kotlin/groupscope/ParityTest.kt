package groupscope

import java.math.BigDecimal
import java.time.Instant
import java.time.LocalDate
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertTrue

/** The parity listings compared across languages. */
private val parityEndpoints = listOf("events", "engage", "groups-records")

private val ignoredFields = setOf("time", "\$time", "\$insert_id", "token", "\$token", "\$anon_distinct_id", "\$device_id")

/** Returns the environment variable [name], which `scripts/test-kotlin.sh` sets. */
private fun requiredEnv(name: String): String =
    System.getenv(name) ?: error("$name is not set; run the tests with scripts/test-kotlin.sh")

/**
 * Runs the scenario of `bindings/examples/parity.rs` from Kotlin and compares the records the
 * server received with the Rust run's, whose token is in `GROUPSCOPE_PARITY_TOKEN`.
 */
class ParityTest {
    @Test
    fun recordsMatchRust() {
        val rustToken = requiredEnv("GROUPSCOPE_PARITY_TOKEN")
        val token = uniqueToken("parity")

        Client(token, serverConfig(newDataDir())).use { client ->
            runScenario(client)
            assertTrue(client.shutdown(java.time.Duration.ofSeconds(10)))
        }

        assertSameRecords(rustToken, token, "Kotlin")
    }

    private fun runScenario(client: Client) {
        client.identify("parity-user")
        client.setGroup("company_id", listOf("acme", 7L))
        client.addGroup("team_id", "red")
        client.addGroup("team_id", 5L)
        client.addGroup("team_id", "red")
        client.removeGroup("company_id", 7L)
        client.removeGroup("company_id", "absent")
        client.register(mapOf("app" to "parity"))

        client.track(
            "Parity Typed",
            mapOf(
                "text" to "héllo \"quoted\" ✓",
                "count" to 3,
                "negative" to -42L,
                "ratio" to 0.25,
                "flag" to false,
                "none" to null,
                "at" to Instant.parse("2026-12-04T20:15:30.123456Z"),
                "day" to LocalDate.of(2026, 12, 4),
                "price" to BigDecimal("19.90"),
                "seats" to BigDecimal("40.0"),
                "precise" to BigDecimal("3.14159265358979323846264"),
                "bad" to Double.NaN,
                "list" to listOf("a", 1L, null),
                "nested" to mapOf("k" to "v", "n" to listOf(1, 2)),
            ),
        )
        client.track("Parity Groups", groups = mapOf("company_id" to listOf("globex", 9L), "team_id" to null))

        val acme = client.group("company_id", "acme")
        acme.set(mapOf("plan" to "enterprise", "seats" to 40L))
        acme.setOnce(mapOf("founded" to LocalDate.of(2026, 1, 2)))
        acme.unset("seats")
        acme.union(mapOf("tags" to listOf("beta", "eu")))
        acme.remove(mapOf("tags" to "eu"))
        client.group("company_id", 9L).delete()
    }
}

/**
 * Compares the records of the Python run of `bindings/examples/parity.py`, whose token is in
 * `GROUPSCOPE_PARITY_PYTHON_TOKEN`, with the Rust run's. `scripts/test-kotlin.sh` runs this
 * class only when `GROUPSCOPE_PYTHON` names an interpreter with groupscope installed.
 */
class PythonParityTest {
    @Test
    fun pythonRecordsMatchRust() {
        assertSameRecords(requiredEnv("GROUPSCOPE_PARITY_TOKEN"), requiredEnv("GROUPSCOPE_PARITY_PYTHON_TOKEN"), "Python")
    }
}

/** Asserts that the run of [token] left the same records as the Rust run of [rustToken]. */
private fun assertSameRecords(rustToken: String, token: String, language: String) {
    for (endpoint in parityEndpoints) {
        val expected = records(endpoint, rustToken)
        val actual = records(endpoint, token)
        assertTrue(expected.isNotEmpty(), "the Rust run left no $endpoint records")
        assertEquals(expected, actual, "$language $endpoint records differ from the Rust run's")
    }
}

/** Returns the normalised records of [token] at one `/api` listing, in a stable order. */
private fun records(endpoint: String, token: String): List<Any?> {
    val body = TestJson.parse(ReferenceServer.get("/api/$endpoint?limit=10000")) as Map<*, *>
    val listed = (body["events"] ?: body["records"]) as List<*>
    return listed
        .map { it as Map<*, *> }
        .filter { entry -> tokenOf(entry) == token }
        .map { entry ->
            if (endpoint == "events") {
                mapOf("event" to entry["event"], "distinct_id" to entry["distinct_id"], "properties" to normalise(entry["properties"]))
            } else {
                mapOf("record" to normalise(entry["record"]), "error" to entry["error"])
            }
        }
        .sortedBy { it.toString() }
}

private fun tokenOf(entry: Map<*, *>): Any? =
    (entry["properties"] as? Map<*, *>)?.get("token") ?: (entry["record"] as? Map<*, *>)?.get("\$token")

private fun normalise(value: Any?): Any? = when (value) {
    is Map<*, *> -> value.filterKeys { it !in ignoredFields }.mapValues { normalise(it.value) }
    is List<*> -> value.map(::normalise)
    else -> value
}
