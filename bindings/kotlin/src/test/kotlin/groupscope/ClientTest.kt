package groupscope

import java.math.BigDecimal
import java.time.Instant
import java.time.LocalDate
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNull
import kotlin.test.assertTrue

class ClientTest {
    @Test
    fun trackMergesSuperPropertiesAndGroups() {
        val token = uniqueToken("track")

        Client(token, serverConfig(newDataDir())).use { client ->
            client.identify("user-1")
            client.register(mapOf("app_version" to "2.1", "plan" to "free"))
            client.setGroup("company_id", "acme")
            client.setGroup("team_id", 5L)

            client.track("Signup", mapOf("plan" to "pro", "seats" to 5L))
            client.track("Invite", groups = mapOf("company_id" to listOf("globex", 7L), "team_id" to null))

            assertTrue(client.flush(FIVE_SECONDS))
        }

        val events = ReferenceServer.events(token).associateBy { ReferenceServer.name(it) }
        val signup = ReferenceServer.properties(events.getValue("Signup"))
        assertEquals("user-1", signup["distinct_id"])
        assertEquals("2.1", signup["app_version"])
        assertEquals("pro", signup["plan"])
        assertEquals(5L, signup["seats"])
        assertEquals(listOf("acme"), signup["company_id"])
        assertEquals(listOf("5"), signup["team_id"])

        val invite = ReferenceServer.properties(events.getValue("Invite"))
        assertEquals(listOf("globex", "7"), invite["company_id"])
        assertFalse(invite.containsKey("team_id"), "team_id should be left off: $invite")
        assertEquals("free", invite["plan"])
    }

    @Test
    fun trackMapsValueTypes() {
        val token = uniqueToken("values")

        Client(token, serverConfig(newDataDir())).use { client ->
            client.track(
                "Typed",
                linkedMapOf(
                    "text" to "héllo \"quoted\"",
                    "count" to 3,
                    "big" to 9_007_199_254_740_993L,
                    "ratio" to 0.25,
                    "flag" to false,
                    "none" to null,
                    "at" to Instant.parse("2026-12-04T20:15:30.123Z"),
                    "day" to LocalDate.of(2026, 12, 4),
                    "price" to BigDecimal("19.90"),
                    "seats" to BigDecimal("40.0"),
                    "bad" to Double.NaN,
                    "list" to listOf("a", 1L, Double.POSITIVE_INFINITY),
                    "nested" to mapOf("k" to "v"),
                ),
            )

            assertTrue(client.flush(FIVE_SECONDS))
            assertEquals(2UL, client.stats().nonFiniteReplaced)
        }

        val properties = ReferenceServer.properties(ReferenceServer.events(token).single())
        assertEquals("héllo \"quoted\"", properties["text"])
        assertEquals(3L, properties["count"])
        assertEquals(9_007_199_254_740_993L, properties["big"])
        assertEquals(0.25, properties["ratio"])
        assertEquals(false, properties["flag"])
        assertTrue(properties.containsKey("none"))
        assertNull(properties["none"])
        assertEquals("2026-12-04T20:15:30.123Z", properties["at"])
        assertEquals("2026-12-04", properties["day"])
        assertEquals(19.9, properties["price"])
        assertEquals(40L, properties["seats"])
        assertNull(properties["bad"])
        assertEquals(listOf("a", 1L, null), properties["list"])
        assertEquals(mapOf("k" to "v"), properties["nested"])
    }

    @Test
    fun flushDeliversEverything() {
        val token = uniqueToken("flush")

        Client(token, serverConfig(newDataDir(), flushIntervalSeconds = 60.0)).use { client ->
            repeat(120) { client.track("Tick", mapOf("n" to it)) }

            assertTrue(client.flush(FIVE_SECONDS))

            val stats = client.stats()
            assertEquals(120UL, stats.enqueued)
            assertEquals(120UL, stats.delivered)
            assertEquals(0UL, stats.queued)
        }

        val numbers = ReferenceServer.events(token).map { ReferenceServer.properties(it)["n"] }.toSet()
        assertEquals((0L until 120L).toSet(), numbers)
    }

    @Test
    fun shutdownDeliversAndRejectsLaterCalls() {
        val token = uniqueToken("shutdown")
        val client = Client(token, serverConfig(newDataDir(), flushIntervalSeconds = 60.0))

        client.track("Before Shutdown")
        assertTrue(client.shutdown(FIVE_SECONDS))
        assertTrue(client.shutdown(FIVE_SECONDS), "a second shutdown should be a no-op")

        assertFailsWith<GroupscopeException.ShutDown> { client.track("After Shutdown") }
        client.close()

        assertEquals(listOf("Before Shutdown"), ReferenceServer.events(token).map { ReferenceServer.name(it) })
    }

    @Test
    fun backgroundFlushDelivers() {
        val token = uniqueToken("background")

        Client(token, serverConfig(newDataDir(), flushIntervalSeconds = 60.0)).use { client ->
            client.track("Backgrounded")

            client.flushOnBackground(FIVE_SECONDS)

            val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5)
            while (client.stats().delivered < 1UL && System.nanoTime() < deadline) Thread.sleep(20)
            assertEquals(1UL, client.stats().delivered)
        }
    }

    @Test
    fun queuedEventsSurviveRestart() {
        val token = uniqueToken("requeue")
        val dataDir = newDataDir()

        Client(token, serverConfig(dataDir, flushIntervalSeconds = 60.0)).use { client ->
            client.optOut()
            client.track("Ignored While Opted Out")
            assertTrue(client.isOptedOut())
        }

        Client(token, serverConfig(dataDir)).use { client ->
            assertTrue(client.isOptedOut(), "the opt-out flag should persist")
            client.optIn()
            client.track("After Opt In")
            assertTrue(client.flush(FIVE_SECONDS))
        }

        assertEquals(listOf("After Opt In"), ReferenceServer.events(token).map { ReferenceServer.name(it) })
    }

    @Test
    fun groupProfileOperations() {
        val token = uniqueToken("profiles")
        val acmeId = "acme-$token"
        val numericId = System.nanoTime()

        Client(token, serverConfig(newDataDir())).use { client ->
            val acme = client.group("company_id", acmeId)
            val numeric = client.group("company_id", numericId)
            assertEquals("company_id", acme.key())
            assertEquals(acmeId, acme.id())
            assertEquals(numericId.toString(), numeric.id())

            acme.set(mapOf("plan" to "enterprise", "seats" to 40L))
            acme.setOnce(mapOf("plan" to "ignored", "created" to LocalDate.of(2026, 1, 2)))
            acme.unset("seats")
            acme.union(mapOf("tags" to listOf("beta", "eu")))
            acme.remove(mapOf("tags" to "eu"))
            numeric.set(mapOf("plan" to "free"))
            numeric.delete()

            assertTrue(client.flush(FIVE_SECONDS))
            val stats = client.stats()
            assertEquals(7UL, stats.enqueued)
            assertEquals(7UL, stats.delivered)
        }

        val group = TestJson.parse(ReferenceServer.get("/api/groups/company_id/$acmeId")) as Map<*, *>
        val profile = (group["profile"] as Map<*, *>)["properties"]
        assertEquals(mapOf("plan" to "enterprise", "created" to "2026-01-02", "tags" to listOf("beta")), profile)

        val deleted = assertFailsWith<IllegalStateException> { ReferenceServer.get("/api/groups/company_id/$numericId") }
        assertTrue(deleted.message!!.contains("HTTP 404"), deleted.message)
    }

    @Test
    fun errorsAreTypedExceptions() {
        Client(uniqueToken("errors"), serverConfig(newDataDir(), flushIntervalSeconds = 60.0)).use { client ->
            val name = assertFailsWith<GroupscopeException.InvalidEventName> { client.track("") }
            assertTrue(name.message!!.contains("event name"), name.message)

            val property = assertFailsWith<GroupscopeException.InvalidProperty> { client.track("E", mapOf("when" to Thread.currentThread())) }
            assertTrue(property.message!!.contains("\"when\""), property.message)

            val json = assertFailsWith<GroupscopeException.InvalidProperty> { client.trackEncoded("""{"event":"E","properties":[1]}""", 0UL) }
            assertTrue(json.message!!.contains("must be a JSON object"), json.message)

            assertFailsWith<GroupscopeException.InvalidDistinctId> { client.identify("") }
            assertFailsWith<GroupscopeException.InvalidProperty> { client.group("company_id", "acme").unset(emptyList()) }

            assertEquals(0UL, client.stats().enqueued, "rejected calls must enqueue nothing")
        }
    }

    @Test
    fun invalidConfigRejected() {
        val emptyDir = assertFailsWith<GroupscopeException.InvalidConfig> {
            Client("kt-config", ClientConfig(dataDir = "", apiHost = ReferenceServer.url))
        }
        assertTrue(emptyDir.message!!.contains("data_dir"), emptyDir.message)

        val interval = assertFailsWith<GroupscopeException.InvalidConfig> {
            Client("kt-config", ClientConfig(dataDir = newDataDir().toString(), apiHost = ReferenceServer.url, flushIntervalSeconds = -1.0))
        }
        assertTrue(interval.message!!.contains("flush_interval_seconds"), interval.message)
    }

    @Test
    fun throwingDropListenerContained() {
        val reports = CopyOnWriteArrayList<DropReport>()
        val called = CountDownLatch(1)
        val listener = object : DropListener {
            override fun onDrop(report: DropReport) {
                reports.add(report)
                called.countDown()
                throw IllegalStateException("listener failure must not reach the core")
            }
        }
        val token = uniqueToken("listener")

        Client(token, serverConfig(newDataDir(), flushIntervalSeconds = 60.0), listener).use { client ->
            client.track("Cleared")
            client.optOut()
            assertTrue(called.await(5, TimeUnit.SECONDS), "the listener was not called for the opt-out drop")

            client.optIn()
            client.track("Delivered")
            assertTrue(client.flush(FIVE_SECONDS))
        }

        assertEquals(DropReason.OptedOut, reports.first().reason)
        assertEquals(1UL, reports.first().count)
        assertEquals(listOf("Delivered"), ReferenceServer.events(token).map { ReferenceServer.name(it) })
    }
}
