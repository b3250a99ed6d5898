// Helpers of the Kotlin tests: temporary data directories, the reference server on loopback,
// and a small JSON reader for its responses.
package groupscope

import java.net.HttpURLConnection
import java.net.URI
import java.nio.file.Files
import java.nio.file.Path
import java.time.Duration
import java.util.UUID

/** The reference server started by `scripts/test-kotlin.sh`, on a loopback address. */
object ReferenceServer {
    val url: String = System.getenv("GROUPSCOPE_SERVER_URL")
        ?: error("GROUPSCOPE_SERVER_URL is not set; run the tests with scripts/test-kotlin.sh")

    init {
        val host = URI(url).host
        require(host == "127.0.0.1" || host == "localhost" || host == "[::1]") {
            "GROUPSCOPE_SERVER_URL must be a loopback address, got $url"
        }
    }

    /** Returns every event the server stored whose `token` property is [token]. */
    fun events(token: String): List<Map<String, Any?>> {
        val body = get("/api/events?limit=10000")
        val parsed = TestJson.parse(body)
        @Suppress("UNCHECKED_CAST")
        val all = when (parsed) {
            is List<*> -> parsed
            is Map<*, *> -> parsed["events"] as? List<*> ?: error("no \"events\" list in $body")
            else -> error("unexpected /api/events response: $body")
        } as List<Map<String, Any?>>
        return all.filter { properties(it)["token"] == token }
    }

    /** Returns the properties of a stored event, whichever envelope the server wraps it in. */
    @Suppress("UNCHECKED_CAST")
    fun properties(event: Map<String, Any?>): Map<String, Any?> =
        (event["properties"] ?: (event["event"] as? Map<*, *>)?.get("properties")) as? Map<String, Any?>
            ?: error("no properties in $event")

    /** Returns the name of a stored event. */
    fun name(event: Map<String, Any?>): String =
        (event["event"] as? String ?: (event["event"] as? Map<*, *>)?.get("event") as? String ?: event["name"] as? String)
            ?: error("no event name in $event")

    fun get(path: String): String {
        val connection = URI(url + path).toURL().openConnection() as HttpURLConnection
        connection.connectTimeout = 5_000
        connection.readTimeout = 5_000
        try {
            val status = connection.responseCode
            val text = (if (status < 400) connection.inputStream else connection.errorStream)
                ?.readBytes()?.toString(Charsets.UTF_8) ?: ""
            check(status == 200) { "GET $path returned HTTP $status: $text" }
            return text
        } finally {
            connection.disconnect()
        }
    }
}

/** Returns a new empty data directory under the system temporary folder. */
fun newDataDir(): Path = Files.createTempDirectory("groupscope-kotlin-test")

/** Returns a token no other test uses, so each test finds its own events at the server. */
fun uniqueToken(test: String): String = "kt-$test-${UUID.randomUUID().toString().take(8)}"

/** Returns a configuration that sends to the reference server; 0 s sends at once. */
fun serverConfig(dataDir: Path, flushIntervalSeconds: Double = 0.0): ClientConfig =
    ClientConfig(
        dataDir = dataDir.toString(),
        apiHost = ReferenceServer.url,
        flushIntervalSeconds = flushIntervalSeconds,
        gzip = true,
    )

val FIVE_SECONDS: Duration = Duration.ofSeconds(5)

/** A minimal JSON reader, enough for the server's responses in assertions. */
object TestJson {
    fun parse(text: String): Any? {
        val reader = Reader(text)
        val value = reader.value()
        reader.skipSpace()
        check(reader.index == text.length) { "trailing text at ${reader.index} in $text" }
        return value
    }

    private class Reader(val text: String) {
        var index = 0

        fun skipSpace() {
            while (index < text.length && text[index].isWhitespace()) index++
        }

        fun value(): Any? {
            skipSpace()
            return when (val char = text[index]) {
                '{' -> obj()
                '[' -> list()
                '"' -> string()
                't' -> literal("true", true)
                'f' -> literal("false", false)
                'n' -> literal("null", null)
                else -> if (char == '-' || char.isDigit()) number() else error("unexpected '$char' at $index")
            }
        }

        fun literal(word: String, result: Any?): Any? {
            check(text.startsWith(word, index)) { "expected $word at $index" }
            index += word.length
            return result
        }

        fun number(): Any {
            val start = index
            while (index < text.length && text[index] in "+-0123456789.eE") index++
            val digits = text.substring(start, index)
            return if (digits.any { it in ".eE" }) digits.toDouble() else digits.toLong()
        }

        fun string(): String {
            val out = StringBuilder()
            index++
            while (text[index] != '"') {
                val char = text[index++]
                if (char != '\\') {
                    out.append(char)
                    continue
                }
                when (val escaped = text[index++]) {
                    'n' -> out.append('\n')
                    't' -> out.append('\t')
                    'r' -> out.append('\r')
                    'b' -> out.append('\b')
                    'f' -> out.append('\u000C')
                    'u' -> {
                        out.append(text.substring(index, index + 4).toInt(16).toChar())
                        index += 4
                    }
                    else -> out.append(escaped)
                }
            }
            index++
            return out.toString()
        }

        fun list(): List<Any?> {
            val out = mutableListOf<Any?>()
            index++
            skipSpace()
            if (text[index] == ']') {
                index++
                return out
            }
            while (true) {
                out.add(value())
                skipSpace()
                if (text[index++] == ']') return out
            }
        }

        fun obj(): Map<String, Any?> {
            val out = linkedMapOf<String, Any?>()
            index++
            skipSpace()
            if (text[index] == '}') {
                index++
                return out
            }
            while (true) {
                skipSpace()
                val key = string()
                skipSpace()
                check(text[index++] == ':') { "expected ':' at ${index - 1}" }
                out[key] = value()
                skipSpace()
                if (text[index++] == '}') return out
            }
        }
    }
}
