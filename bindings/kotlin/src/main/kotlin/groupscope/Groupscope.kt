// The idiomatic Kotlin API of groupscope, over the generated `Client` and `GroupHandle`.
//
// The generated classes take properties and group ids as JSON text (`trackEncoded`,
// `setGroupJson`, ...). These extensions take native values instead, encode them with
// `PropertyEncoder`, and pass the count of replaced non-finite floats to the core:
//
//     Client("PROJECT_TOKEN", ClientConfig(dataDir = context.noBackupFilesDir.path)).use { client ->
//         client.identify("user-42")
//         client.setGroup("company_id", "acme")
//         client.track("Signup", mapOf("plan" to "pro", "seats" to 5L))
//         client.group("company_id", "acme").set(mapOf("plan" to "enterprise"))
//     }
//
// `Client` is `AutoCloseable`: `close()` shuts it down, waiting at most 2 s for delivery.
package groupscope

/**
 * Records an event and returns its `$insert_id`.
 *
 * `groups` maps group keys to one id, a list of ids, or `null` to leave that key off this event.
 * It wins over the group super properties set with [setGroup]. Ids are strings or integers.
 *
 * @throws GroupscopeException.InvalidEventName, GroupscopeException.InvalidProperty,
 *   GroupscopeException.InvalidGroupId and the other subclasses; nothing is recorded then.
 */
fun Client.track(
    event: String,
    properties: Map<String, Any?> = emptyMap(),
    groups: Map<String, Any?> = emptyMap(),
    distinctId: String? = null,
): String {
    val call = PropertyEncoder.encodeTrackCall(event, properties, groups, distinctId)
    return trackEncoded(call.json, call.nonFiniteReplaced.toULong())
}

/** Registers super properties added to every later event, and persists them. */
fun Client.register(properties: Map<String, Any?>) {
    registerJson(PropertyEncoder.encodeObject("properties", properties).json)
}

/**
 * Replaces the group super property [key] with [ids] (strings or integers) and persists it.
 * Duplicate ids are kept once.
 */
fun Client.setGroup(key: String, ids: Collection<Any>) {
    setGroupJson(key, PropertyEncoder.encodeValue(key, ids).json)
}

/** Replaces the group super property [key] with [ids] (strings or integers) and persists it. */
fun Client.setGroup(key: String, vararg ids: Any) {
    setGroup(key, ids.toList())
}

/** Adds [id] (a string or an integer) to the group super property [key] unless it is there. */
fun Client.addGroup(key: String, id: Any) {
    addGroupJson(key, PropertyEncoder.encodeValue(key, id).json)
}

/**
 * Removes [id] from the group super property [key]. Removing the last id removes the key, and
 * removing an absent id changes nothing.
 */
fun Client.removeGroup(key: String, id: Any) {
    removeGroupJson(key, PropertyEncoder.encodeValue(key, id).json)
}

/** Returns a handle on the group profile ([key], [id]); [id] is a string or an integer. */
fun Client.group(key: String, id: Any): GroupHandle =
    groupJson(key, PropertyEncoder.encodeValue(key, id).json)

/** Sets properties on the group profile, creating it if absent (`$set`). */
fun GroupHandle.set(properties: Map<String, Any?>) {
    setJson(PropertyEncoder.encodeObject("properties", properties).json)
}

/** Sets only the properties not yet present on the group profile (`$set_once`). */
fun GroupHandle.setOnce(properties: Map<String, Any?>) {
    setOnceJson(PropertyEncoder.encodeObject("properties", properties).json)
}

/** Deletes the named properties of the group profile (`$unset`). */
fun GroupHandle.unset(vararg names: String) {
    unset(names.toList())
}

/** Adds each value to the named list property, keeping every value once (`$union`). */
fun GroupHandle.union(values: Map<String, Collection<Any?>>) {
    unionJson(PropertyEncoder.encodeObject("values", values).json)
}

/** Removes one value from each named list property (`$remove`). */
fun GroupHandle.remove(values: Map<String, Any?>) {
    removeJson(PropertyEncoder.encodeObject("values", values).json)
}
