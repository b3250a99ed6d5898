// Reads groupscope-server's JSON API (documented in docs/server-api.md) and returns plain
// objects in the shape the views use. Times arrive in milliseconds since the epoch.

const API_BASE = new URL("api/", document.baseURI);

export class ApiError extends Error {
  constructor(path, status, message) {
    super(`GET /api/${path} failed with HTTP ${status}: ${message}`);
    this.status = status;
  }
}

async function getJson(path) {
  const response = await fetch(new URL(path, API_BASE), { headers: { Accept: "application/json" } });
  if (!response.ok) {
    const body = await response.text();
    let message = body.slice(0, 300) || response.statusText;
    try {
      message = JSON.parse(body).error ?? message;
    } catch {
      // The body is not JSON; show it as text.
    }
    throw new ApiError(path, response.status, message);
  }
  return response.json();
}

function segment(value) {
  return encodeURIComponent(String(value));
}

function toDate(milliseconds) {
  return typeof milliseconds === "number" ? new Date(milliseconds) : null;
}

export async function groupKeys() {
  const body = await getJson("group-keys");
  return body.group_keys.map((key) => ({
    property: key.property,
    displayName: key.display_name,
    setUpAt: toDate(key.set_up_at),
  }));
}

export async function groups(key) {
  const body = await getJson(`groups/${segment(key)}`);
  return body.groups.map((group) => ({
    id: group.id,
    events: group.event_count,
    uniqueUsers: group.unique_users,
    lastSeen: toDate(group.last_seen),
    hasProfile: group.has_profile,
  }));
}

function toEvent(event) {
  return {
    id: event.id,
    name: event.event,
    time: toDate(event.time),
    distinctId: event.distinct_id,
    properties: event.properties ?? {},
    attribution: {
      groups: event.attribution.groups,
      notAttributed: event.attribution.not_attributed,
      warnings: event.attribution.warnings,
    },
  };
}

// Returns the group profile (null when only events name the group) and its activity feed,
// newest first, with up to `limit` events.
export async function group(key, id, limit = 500) {
  const body = await getJson(`groups/${segment(key)}/${segment(id)}?limit=${limit}`);
  return {
    key: body.key,
    id: body.id,
    properties: body.profile?.properties ?? null,
    eventCount: body.event_count,
    uniqueUsers: body.unique_users,
    activity: body.activity.map(toEvent),
  };
}

// Returns a user profile's properties and group links, or null when the user has no profile.
export async function user(distinctId) {
  try {
    const body = await getJson(`users/${segment(distinctId)}`);
    return { distinctId: body.distinct_id, properties: body.profile.properties, groups: body.groups };
  } catch (error) {
    if (error.status === 404) {
      return null;
    }
    throw error;
  }
}

export async function event(id) {
  return toEvent(await getJson(`events/${segment(id)}`));
}

// Returns the event names among the latest `limit` events, in the order of their first
// occurrence, so the default funnel follows the order people did things in.
export async function eventNames(limit = 10000) {
  const body = await getJson(`events?limit=${limit}`);
  const events = body.events.map(toEvent).sort((a, b) => a.time - b.time);
  return [...new Set(events.map((item) => item.name))];
}

export async function uniques(key, eventName) {
  const query = new URLSearchParams({ key, event: eventName });
  const body = await getJson(`reports/uniques?${query}`);
  return { uniqueGroups: body.unique_groups, groups: body.groups };
}

export async function funnel(key, steps, windowDays) {
  const query = new URLSearchParams({ key, steps: steps.join(","), window: `${windowDays}d` });
  const body = await getJson(`reports/funnel?${query}`);
  return body.steps.map((step) => ({ label: step.event, value: step.groups }));
}
