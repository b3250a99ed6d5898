// The groupscope web page: group keys → groups → a group's profile → an event's attribution,
// plus the unique-groups and funnel-by-group charts. Routes live in the URL hash, so every view
// can be bookmarked and the page needs nothing but the server's static files and its API.

import * as api from "./api.js";
import { barChart, funnelChart, formatNumber } from "./charts.js";

const view = document.getElementById("view");
const breadcrumbs = document.getElementById("breadcrumbs");

// Builds an element. Strings among `children` become text nodes, never markup.
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) {
      continue;
    }
    if (name.startsWith("on")) {
      element.addEventListener(name.slice(2), value);
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child !== undefined && child !== null && child !== false) {
      element.append(child instanceof Node ? child : String(child));
    }
  }
  return element;
}

function link(path, ...children) {
  return h("a", { href: `#${path}` }, ...children);
}

function keyPath(key) {
  return `/keys/${encodeURIComponent(key)}`;
}

function groupPath(key, id) {
  return `/groups/${encodeURIComponent(key)}/${encodeURIComponent(id)}`;
}

function eventPath(id) {
  return `/events/${encodeURIComponent(id)}`;
}

function formatTime(date) {
  if (!date) {
    return "never";
  }
  return date.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

function formatValue(value) {
  if (Array.isArray(value)) {
    return value.map((item) => (typeof item === "object" ? JSON.stringify(item) : String(item))).join(", ");
  }
  if (value !== null && typeof value === "object") {
    return JSON.stringify(value);
  }
  return String(value);
}

function propertyList(properties) {
  const names = Object.keys(properties).sort();
  if (names.length === 0) {
    return h("p", { class: "muted" }, "No properties.");
  }
  return h("dl", { class: "props" }, names.map((name) => [
    h("dt", {}, name),
    h("dd", { class: typeof properties[name] === "string" ? "" : "mono" }, formatValue(properties[name])),
  ]));
}

// Properties an SDK or the protocol adds to every event; the feed leaves them out.
const INTERNAL_PROPERTIES = new Set(["token", "$insert_id", "mp_lib", "$lib_version", "distinct_id", "time", "$device_id", "$user_id"]);

function propertyChips(properties) {
  const names = Object.keys(properties).filter((name) => !INTERNAL_PROPERTIES.has(name)).sort();
  return h("div", { class: "chips" }, names.map((name) =>
    h("span", { class: "chip", "data-property": name }, h("span", { class: "muted" }, `${name}: `), formatValue(properties[name]))));
}

function setBreadcrumbs(...items) {
  breadcrumbs.replaceChildren(...items.flatMap((item, index) => [
    index > 0 ? h("span", { class: "sep" }, "/") : null,
    item,
  ]).filter(Boolean));
}

function render(...children) {
  view.replaceChildren(...children);
}

function showError(error) {
  render(h("div", { class: "error", role: "alert" },
    h("strong", {}, "Could not load this page. "),
    error.message,
    h("p", {}, "Check that groupscope-server is running, then reload the page.")));
}

// View: every configured group key.
async function showGroupKeys() {
  setBreadcrumbs(h("span", {}, "Group keys"));
  const keys = await api.groupKeys();
  const counts = await Promise.all(keys.map((key) => api.groups(key.property).then((list) => list.length, () => null)));

  render(
    h("h1", {}, "Group keys"),
    h("p", { class: "subtitle" }, "Each key is an event property whose value names the group an event belongs to."),
    keys.length === 0
      ? h("p", { class: "panel muted" }, "No group keys are configured. Add one in project.toml or with POST /api/group-keys.")
      : h("div", { class: "grid" }, keys.map((key, index) => h("a", { class: "card-link", href: `#${keyPath(key.property)}` },
        h("div", { class: "panel card", "data-testid": "group-key" },
          h("div", { class: "name" }, key.displayName),
          h("div", { class: "mono muted" }, key.property),
          h("div", { class: "stat" }, counts[index] === null ? "–" : formatNumber(counts[index])),
          h("div", { class: "muted" }, "groups"),
          h("div", { class: "muted" }, `set up ${formatTime(key.setUpAt)}`))))),
  );
}

// Most groups whose profile name the groups table looks up; one request each.
const MAX_NAMED_GROUPS = 100;

// Looks up the `$name` of the groups that have a profile.
async function groupNames(key, list) {
  const named = list.filter((group) => group.hasProfile).slice(0, MAX_NAMED_GROUPS);
  const profiles = await Promise.all(named.map((group) => api.group(key, group.id, 1)));
  return new Map(profiles.filter((profile) => profile.properties?.$name !== undefined)
    .map((profile) => [profile.id, String(profile.properties.$name)]));
}

const SORTABLE_COLUMNS = [
  { field: "events", label: "Events", numeric: true },
  { field: "uniqueUsers", label: "Unique users", numeric: true },
  { field: "lastSeen", label: "Last seen", numeric: false },
];

// View: the groups of one key, sortable, with the two charts.
async function showGroups(key, sort) {
  const [keys, list, names] = await Promise.all([api.groupKeys(), api.groups(key), api.eventNames()]);
  const profileNames = await groupNames(key, list);
  const keyInfo = keys.find((item) => item.property === key) ?? { property: key, displayName: key };
  setBreadcrumbs(link("/", "Group keys"), h("span", {}, keyInfo.displayName));

  const sortField = SORTABLE_COLUMNS.some((column) => column.field === sort.field) ? sort.field : "events";
  const direction = sort.direction === "ascending" ? 1 : -1;
  const sorted = [...list].sort((a, b) => {
    const left = sortField === "lastSeen" ? (a.lastSeen?.getTime() ?? 0) : a[sortField];
    const right = sortField === "lastSeen" ? (b.lastSeen?.getTime() ?? 0) : b[sortField];
    return (left - right) * direction || a.id.localeCompare(b.id);
  });

  const header = h("tr", {},
    h("th", {}, "Group"),
    h("th", {}, "Name"),
    SORTABLE_COLUMNS.map((column) => {
      const active = column.field === sortField;
      const current = direction === 1 ? "ascending" : "descending";
      const next = active && direction === -1 ? "ascending" : "descending";
      return h("th", { class: column.numeric ? "num" : "", "aria-sort": active ? current : "none" },
        h("button", { type: "button", "data-sort": column.field, onclick: () => navigate(`${keyPath(key)}?sort=${column.field}&dir=${next}`) }, column.label));
    }));
  const rows = sorted.map((group) => h("tr", { "data-testid": "group-row" },
    h("td", {}, link(groupPath(key, group.id), group.id)),
    h("td", {}, profileNames.get(group.id) ?? ""),
    h("td", { class: "num" }, formatNumber(group.events)),
    h("td", { class: "num" }, formatNumber(group.uniqueUsers)),
    h("td", {}, formatTime(group.lastSeen))));

  const uniquesPanel = h("section", { class: "panel chart", "data-testid": "uniques-chart" });
  const funnelPanel = h("section", { class: "panel chart", "data-testid": "funnel-chart" });

  render(
    h("h1", {}, keyInfo.displayName),
    h("p", { class: "subtitle" }, h("span", { class: "mono" }, key), ` · ${list.length} groups`),
    h("div", { class: "grid-2" }, uniquesPanel, funnelPanel),
    h("section", { class: "panel" },
      h("h2", {}, "Groups"),
      list.length === 0 ? h("p", { class: "muted" }, "No event has been attributed to this key yet.")
        : h("table", { "data-testid": "groups-table" }, h("thead", {}, header), h("tbody", {}, rows))),
  );

  drawUniques(uniquesPanel, key, names);
  drawFunnel(funnelPanel, key, names);
}

// Most events the unique-groups chart shows, those with the most unique groups first.
const MAX_CHART_EVENTS = 12;

async function drawUniques(panel, key, names) {
  panel.replaceChildren(h("h2", {}, "Unique groups per event"));
  if (names.length === 0) {
    panel.append(h("p", { class: "muted" }, "No events yet."));
    return;
  }
  try {
    const reports = await Promise.all(names.map((name) => api.uniques(key, name)));
    const points = names.map((name, index) => ({ label: name, value: reports[index].uniqueGroups }))
      .sort((a, b) => b.value - a.value)
      .slice(0, MAX_CHART_EVENTS);
    panel.append(
      h("p", { class: "muted" }, `How many distinct ${key} values did each event, counting each group once.`),
      barChart(points, { title: `Unique ${key} values per event`, valueName: "groups" }));
  } catch (error) {
    panel.append(h("p", { class: "error" }, error.message));
  }
}

function drawFunnel(panel, key, names) {
  const stepsInput = h("input", { name: "steps", size: 34, value: names.slice(0, 3).join(", "), "aria-label": "Funnel steps" });
  const windowInput = h("input", { name: "window", type: "number", min: 1, value: 30, class: "narrow", "aria-label": "Window in days" });
  const target = h("div");
  const draw = async () => {
    const steps = stepsInput.value.split(",").map((step) => step.trim()).filter(Boolean);
    if (steps.length < 2) {
      target.replaceChildren(h("p", { class: "muted" }, "Enter at least two event names, separated by commas."));
      return;
    }
    try {
      const points = await api.funnel(key, steps, Number(windowInput.value));
      target.replaceChildren(funnelChart(points, { title: `Groups converting within ${windowInput.value} days` }));
    } catch (error) {
      target.replaceChildren(h("p", { class: "error" }, error.message));
    }
  };

  panel.replaceChildren(
    h("h2", {}, "Funnel by group"),
    h("form", { class: "inline", onsubmit: (event) => { event.preventDefault(); draw(); } },
      h("label", {}, "Steps", stepsInput),
      h("label", {}, "Window (days)", windowInput),
      h("button", { class: "primary", type: "submit" }, "Update")),
    target);
  draw();
}

// Most users of a group whose profiles the group page looks up; one request each.
const MAX_LISTED_USERS = 50;

// View: one group's profile, the users behind its events, and its activity feed.
async function showGroup(key, id) {
  const profile = await api.group(key, id);
  const title = profile.properties?.$name ?? id;
  setBreadcrumbs(link("/", "Group keys"), link(keyPath(key), key), h("span", {}, id));

  const eventsByUser = new Map();
  for (const item of profile.activity) {
    eventsByUser.set(item.distinctId, (eventsByUser.get(item.distinctId) ?? 0) + 1);
  }
  const userIds = [...eventsByUser.keys()].sort().slice(0, MAX_LISTED_USERS);
  const users = await Promise.all(userIds.map((distinctId) => api.user(distinctId)));

  const userItems = userIds.map((distinctId, index) => {
    const userProfile = users[index];
    const links = userProfile?.groups?.[key] ?? [];
    const count = eventsByUser.get(distinctId);
    return h("li", { "data-testid": "linked-user", "data-distinct-id": distinctId },
      h("span", { class: "mono" }, distinctId),
      userProfile?.properties?.$name ? ` · ${userProfile.properties.$name}` : "",
      h("span", { class: "muted" }, ` · ${count} ${count === 1 ? "event" : "events"} `),
      links.includes(id) ? h("span", { class: "pill ok" }, `profile: ${key} includes ${id}`)
        : h("span", { class: "pill" }, userProfile ? `profile does not list ${id}` : "no user profile"));
  });

  const feed = profile.activity.map((item) => h("li", { "data-testid": "feed-item" },
    h("div", {},
      link(eventPath(item.id), h("span", { class: "event-name" }, item.name)),
      " ",
      h("span", { class: "when" }, `${formatTime(item.time)} · ${item.distinctId || "no distinct_id"}`)),
    propertyChips(item.properties)));

  render(
    h("h1", {}, title),
    h("p", { class: "subtitle" }, h("span", { class: "mono" }, `${key} = ${id}`),
      ` · ${formatNumber(profile.eventCount)} events · ${formatNumber(profile.uniqueUsers)} unique users`),
    h("div", { class: "grid-2" },
      h("section", { class: "panel", "data-testid": "profile-properties" },
        h("h2", {}, "Profile properties"),
        profile.properties === null
          ? h("p", { class: "muted" }, "No group profile: only events name this group. Send a $set to /groups to create one.")
          : propertyList(profile.properties)),
      h("section", { class: "panel", "data-testid": "linked-users" },
        h("h2", {}, `Users (${eventsByUser.size})`),
        userItems.length === 0 ? h("p", { class: "muted" }, "No events are attributed to this group yet.")
          : h("ul", { class: "users" }, userItems),
        eventsByUser.size > MAX_LISTED_USERS ? h("p", { class: "muted" }, `Showing the first ${MAX_LISTED_USERS}.`) : null)),
    h("section", { class: "panel", "data-testid": "activity-feed" },
      h("h2", {}, `Activity (${profile.activity.length} events, newest first)`),
      feed.length === 0 ? h("p", { class: "muted" }, "No events are attributed to this group.") : h("ul", { class: "feed" }, feed)),
  );
}

// View: one event, its properties and its attribution with reasons.
async function showEvent(id) {
  const item = await api.event(id);
  setBreadcrumbs(link("/", "Group keys"), h("span", {}, "Event"), h("span", {}, item.name));
  const { groups, notAttributed, warnings } = item.attribution;

  render(
    h("h1", {}, item.name),
    h("p", { class: "subtitle" }, `${formatTime(item.time)} · distinct_id `, h("span", { class: "mono" }, item.distinctId || "none")),
    h("div", { class: "grid-2" },
      h("section", { class: "panel", "data-testid": "attribution" },
        h("h2", {}, "Attribution"),
        groups.length === 0 ? h("p", { class: "muted" }, "Not attributed to any group.") : groups.map((pair) =>
          h("div", { class: "attributed", "data-testid": "attributed" },
            "Attributed to ", h("span", { class: "mono" }, `${pair.key} = `), link(groupPath(pair.key, pair.id), pair.id))),
        notAttributed.map((note) => h("div", { class: "reason", "data-testid": "not-attributed", "data-code": note.code },
          h("strong", { class: "mono" }, note.key), " not attributed: ", note.message,
          h("div", { class: "muted" }, `reason: ${note.code} · value: ${JSON.stringify(note.value)}`))),
        warnings.map((note) => h("div", { class: "reason", "data-testid": "attribution-warning" },
          h("span", { class: "pill warn" }, "warning"), h("strong", { class: "mono" }, note.key), " ", note.message))),
      h("section", { class: "panel", "data-testid": "event-properties" }, h("h2", {}, "Properties"), propertyList(item.properties))),
  );
}

function navigate(path) {
  window.location.hash = path;
}

async function route() {
  const [path, query = ""] = window.location.hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query);
  window.scrollTo(0, 0);

  try {
    if (parts[0] === "keys" && parts.length === 2) {
      await showGroups(parts[1], { field: params.get("sort"), direction: params.get("dir") });
    } else if (parts[0] === "groups" && parts.length === 3) {
      await showGroup(parts[1], parts[2]);
    } else if (parts[0] === "events" && parts.length === 2) {
      await showEvent(parts[1]);
    } else {
      await showGroupKeys();
    }
    document.body.dataset.view = parts[0] ?? "keys";
  } catch (error) {
    showError(error);
    document.body.dataset.view = "error";
  }
}

window.addEventListener("hashchange", route);
route();
