// Measures the cost of one call across the Kotlin→Rust boundary, with properties as JSON text
// and as typed uniffi values. Run by bindings/bench/run.sh against a release build of
// libgroupscope_ffi with the representation-benchmark feature.
package groupscope

import java.nio.file.Files

private const val ROUNDS = 5

/** A typical event: strings, integers, a float, a boolean and a short list. */
private val properties: Map<String, Any?> = mapOf(
    "plan" to "enterprise",
    "seats" to 40L,
    "price" to 129.5,
    "trial" to false,
    "source" to "onboarding-email",
    "step" to 3L,
    "tags" to listOf("beta", "eu"),
    "screen" to "settings/billing",
)

private fun toPropertyValue(value: Any?): PropertyValue = when (value) {
    null -> PropertyValue.NullValue
    is String -> PropertyValue.TextValue(value)
    is Boolean -> PropertyValue.BoolValue(value)
    is Long -> PropertyValue.IntValue(value)
    is Int -> PropertyValue.IntValue(value.toLong())
    is Double -> PropertyValue.DoubleValue(value)
    is List<*> -> PropertyValue.ListValue(value.map(::toPropertyValue))
    is Map<*, *> -> PropertyValue.ObjectValue(value.entries.associate { (key, item) -> key as String to toPropertyValue(item) })
    else -> error("no typed form for ${value.javaClass.name}")
}

private fun toTyped(map: Map<String, Any?>): Map<String, PropertyValue> = map.mapValues { toPropertyValue(it.value) }

/** Runs [body] [calls] times per round and prints the median nanoseconds per call. */
private fun measure(name: String, calls: Int, body: (Int) -> Unit) {
    repeat(calls) { body(it) }
    val perCall = (1..ROUNDS).map {
        val start = System.nanoTime()
        for (index in 0 until calls) body(index)
        (System.nanoTime() - start).toDouble() / calls
    }.sorted()
    println("%-44s %9.0f ns/call (median of %d rounds of %d calls, min %.0f, max %.0f)".format(name, perCall[ROUNDS / 2], ROUNDS, calls, perCall.first(), perCall.last()))
}

fun main(args: Array<String>) {
    val apiHost = args.getOrNull(0) ?: error("usage: TrackBenchmark <loopback api host>")
    val dataDir = Files.createTempDirectory("groupscope-kotlin-bench")

    measure("boundary only, no properties (libraryVersion)", 20_000) { libraryVersion() }
    measure("boundary only, JSON text", 20_000) {
        val encoded = PropertyEncoder.encodeObject("properties", properties)
        decodeJsonProperties(encoded.json)
    }
    measure("boundary only, typed PropertyValue map", 20_000) {
        decodeTypedProperties(toTyped(properties))
    }

    Client("bench-token", ClientConfig(dataDir = dataDir.toString(), apiHost = apiHost, flushIntervalSeconds = 3600.0, batchSize = 50u)).use { client ->
        measure("track, JSON text (Client.track)", 2_000) { client.track("Benchmark", properties) }
        measure("track, typed PropertyValue map", 2_000) { client.trackTyped("Benchmark", toTyped(properties)) }
        println("records enqueued: ${client.stats().enqueued}")
        client.optOut()
    }
}
