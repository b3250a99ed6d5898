// The known dataset of the browser tests, sent to groupscope-server through its ingestion
// endpoints exactly as an SDK sends it: `data=` form fields on /track, /engage and /groups.
//
// Expected results, used by page.test.mjs:
// - company_id groups by events: acme 6 events / 3 users, globex 3 / 2, initech 1 / 1.
// - last seen, oldest first: initech, globex, acme.
// - funnel Sign Up → Create Report → Export Report by company_id: 3, 2, 1 groups.
// - frank's "Create Report" carries project_id, a key set up in 2099, so it is not attributed
//   to project_id ("before set-up"); eve's "Sign Up" has an empty company_id.

export const TOKEN = "web-test-token";

export const PROJECT_TOML = `token = "${TOKEN}"

[[group_keys]]
property = "company_id"
display_name = "Company"
set_up_at = "2020-01-01T00:00:00Z"

[[group_keys]]
property = "project_id"
display_name = "Project"
set_up_at = "2099-01-01T00:00:00Z"
`;

export const GROUP_PROFILES = [
  { id: "acme", properties: { $name: "Acme Corp", plan: "enterprise", seats: 120, regions: ["eu", "us"] } },
  { id: "globex", properties: { $name: "Globex", plan: "free", seats: 8 } },
  { id: "initech", properties: { $name: "Initech", plan: "pro", seats: 40 } },
];

export const USER_GROUPS = { alice: ["acme"], bob: ["acme", "globex"], carol: ["globex"], dave: ["initech"] };

// [minutes before now, event name, distinct_id, extra properties]; times are relative to the
// moment the dataset is loaded because /track accepts only recent events.
const EVENTS = [
  [120, "Sign Up", "dave", { company_id: "initech" }],
  [110, "Sign Up", "carol", { company_id: "globex" }],
  [100, "Create Report", "carol", { company_id: "globex", format: "pdf" }],
  [90, "Sign Up", "alice", { company_id: "acme", plan: "trial" }],
  [80, "Sign Up", "bob", { company_id: "acme" }],
  [70, "Create Report", "bob", { company_id: ["acme", "globex"], format: "csv" }],
  [60, "Create Report", "alice", { company_id: "acme", format: "xlsx" }],
  [50, "Sign Up", "eve", { company_id: "" }],
  [40, "Export Report", "alice", { company_id: "acme", rows: 1200 }],
  [30, "Create Report", "frank", { company_id: "acme", project_id: "p-17", format: "csv" }],
];

export const EXPECTED_GROUPS = [
  { id: "acme", name: "Acme Corp", events: 6, users: 3 },
  { id: "globex", name: "Globex", events: 3, users: 2 },
  { id: "initech", name: "Initech", events: 1, users: 1 },
];

export const ACME_FEED = ["Create Report", "Export Report", "Create Report", "Create Report", "Sign Up", "Sign Up"];

async function post(serverUrl, endpoint, records) {
  const body = new URLSearchParams({ data: JSON.stringify(records) });
  const response = await fetch(new URL(`${endpoint}?verbose=1`, serverUrl), {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body,
  });
  const text = await response.text();
  if (!response.ok || !text.includes('"status":1')) {
    throw new Error(`POST ${endpoint} failed with HTTP ${response.status}: ${text}`);
  }
}

export async function loadDataset(serverUrl) {
  const now = Date.now();
  const events = EVENTS.map(([minutesAgo, event, distinctId, properties], index) => ({
    event,
    properties: {
      token: TOKEN,
      distinct_id: distinctId,
      time: now - minutesAgo * 60_000,
      $insert_id: `web-test-${index}`,
      ...properties,
    },
  }));
  await post(serverUrl, "/track", events);

  await post(serverUrl, "/groups", GROUP_PROFILES.map((profile) => ({
    $token: TOKEN,
    $group_key: "company_id",
    $group_id: profile.id,
    $set: profile.properties,
  })));

  await post(serverUrl, "/engage", Object.entries(USER_GROUPS).map(([distinctId, companies]) => ({
    $token: TOKEN,
    $distinct_id: distinctId,
    $set: { company_id: companies, $name: distinctId[0].toUpperCase() + distinctId.slice(1) },
  })));
}
