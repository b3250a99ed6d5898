package groupscope

import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue

class GroupsTest {
    private fun client(token: String = "kt-groups") = Client(token, serverConfig(newDataDir(), flushIntervalSeconds = 60.0))

    @Test
    fun setGroupDropsDuplicates() = client().use { client ->
        client.setGroup("company_id", listOf("acme", "globex", "acme"))

        assertEquals(mapOf("company_id" to listOf("acme", "globex")), client.groups())
    }

    @Test
    fun setGroupVarargSingleId() = client().use { client ->
        client.setGroup("company_id", "acme")

        assertEquals(mapOf("company_id" to listOf("acme")), client.groups())
    }

    @Test
    fun longIdsNormalised() = client().use { client ->
        client.setGroup("team_id", listOf(5L, 7))
        client.addGroup("team_id", "5")
        client.addGroup("team_id", 9L)

        assertEquals(mapOf("team_id" to listOf("5", "7", "9")), client.groups())
    }

    @Test
    fun addGroupDuplicateIgnored() = client().use { client ->
        client.addGroup("company_id", "acme")
        client.addGroup("company_id", "acme")

        assertEquals(mapOf("company_id" to listOf("acme")), client.groups())
    }

    @Test
    fun removeAbsentIdChangesNothing() = client().use { client ->
        client.setGroup("company_id", "acme", "globex")

        client.removeGroup("company_id", "initech")

        assertEquals(mapOf("company_id" to listOf("acme", "globex")), client.groups())
    }

    @Test
    fun removeLastIdRemovesKey() = client().use { client ->
        client.setGroup("company_id", "acme")
        client.setGroup("team_id", 3L)

        client.removeGroup("company_id", "acme")
        client.removeGroup("team_id", 3L)

        assertEquals(emptyMap(), client.groups())
    }

    @Test
    fun floatIdRejected() = client().use { client ->
        val error = assertFailsWith<GroupscopeException.InvalidGroupId> { client.addGroup("company_id", 1.5) }

        assertTrue(error.message!!.contains("1.5"), error.message)
        assertTrue(error.message!!.contains("company_id"), error.message)
        assertEquals(emptyMap(), client.groups())
    }

    @Test
    fun emptyKeyRejected() {
        client().use { client ->
            assertFailsWith<GroupscopeException.InvalidGroupKey> { client.setGroup("", "acme") }
        }
    }

    @Test
    fun stateSurvivesRestart() {
        val dataDir = newDataDir()

        Client("kt-restart", serverConfig(dataDir, flushIntervalSeconds = 60.0)).use { client ->
            client.identify("user-42")
            client.setGroup("company_id", listOf("acme", 7L))
            client.addGroup("team_id", "red")
            client.removeGroup("company_id", 7L)
        }

        Client("kt-restart", serverConfig(dataDir, flushIntervalSeconds = 60.0)).use { client ->
            assertEquals("user-42", client.distinctId())
            assertEquals(mapOf("company_id" to listOf("acme"), "team_id" to listOf("red")), client.groups())
        }
    }
}
