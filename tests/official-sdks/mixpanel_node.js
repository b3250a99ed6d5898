// Sends events, user-profile and group-profile updates with the official `mixpanel` npm
// package to a groupscope-server, then checks through the server's JSON API that they
// arrived and were attributed to the right groups.
//
// Usage: node mixpanel_node.js PORT TOKEN

"use strict";

const assert = require("node:assert/strict");
const http = require("node:http");
const { promisify } = require("node:util");
const Mixpanel = require("mixpanel");

const [port, token] = process.argv.slice(2);
const base = `http://127.0.0.1:${port}`;

function api(path) {
  return new Promise((resolve, reject) => {
    http
      .get(base + path, (response) => {
        let body = "";
        response.on("data", (chunk) => (body += chunk));
        response.on("end", () => resolve(JSON.parse(body)));
      })
      .on("error", reject);
  });
}

async function main() {
  const mixpanel = Mixpanel.init(token, { host: "127.0.0.1", port: Number(port), protocol: "http", keepAlive: false });
  const track = promisify(mixpanel.track);
  const trackBatch = promisify(mixpanel.track_batch);
  const groups = mixpanel.groups;
  const call = (fn, ...args) => new Promise((resolve, reject) => fn.call(groups, ...args, (error) => (error ? reject(error) : resolve())));

  await track("Report Exported", { distinct_id: "node-user-1", company_id: "node-acme" });
  await track("Report Exported", { distinct_id: "node-user-2", company_id: ["node-acme", "node-globex"] });
  await trackBatch([
    { event: "Dashboard Viewed", properties: { distinct_id: "node-user-3", company_id: 5, time: Date.now() } },
    { event: "Dashboard Viewed", properties: { distinct_id: "node-user-4", company_id: true, time: Date.now() } },
  ]);
  await new Promise((resolve, reject) =>
    mixpanel.people.set("node-user-1", { company_id: ["node-acme"] }, (error) => (error ? reject(error) : resolve())),
  );

  await call(groups.set, "company_id", "node-acme", { $name: "Node Acme", plan: "team", legacy: 1 });
  await call(groups.set_once, "company_id", "node-acme", { plan: "free", founded: 2010 });
  await call(groups.union, "company_id", "node-acme", { regions: ["eu", "apac"] });
  await call(groups.remove, "company_id", "node-acme", { regions: "apac" });
  await call(groups.unset, "company_id", "node-acme", "legacy");
  await call(groups.set, "company_id", "node-globex", { $name: "Node Globex" });
  await call(groups.delete_group, "company_id", "node-globex");

  const events = (await api("/api/events?limit=1000")).events.filter((e) => e.distinct_id.startsWith("node-"));
  const byUser = Object.fromEntries(events.map((e) => [e.distinct_id, e]));
  assert.equal(events.length, 4, `expected 4 events from mixpanel-node, got ${events.length}`);
  const ids = (user) => byUser[user].attribution.groups.map((g) => g.id);
  assert.deepEqual(ids("node-user-1"), ["node-acme"]);
  assert.deepEqual(ids("node-user-2"), ["node-acme", "node-globex"]);
  assert.deepEqual(ids("node-user-3"), ["5"]);
  assert.equal(byUser["node-user-3"].attribution.warnings[0].code, "integer_id");
  assert.deepEqual(ids("node-user-4"), []);
  assert.equal(byUser["node-user-4"].attribution.not_attributed[0].code, "wrong_type");
  assert.equal(byUser["node-user-1"].properties.mp_lib, "node");

  const acme = await api("/api/groups/company_id/node-acme");
  assert.deepEqual(acme.profile.properties, { $name: "Node Acme", plan: "team", founded: 2010, regions: ["eu"] });
  assert.equal(acme.event_count, 2);
  const globex = await api("/api/groups/company_id/node-globex");
  assert.equal(globex.profile, null, "delete_group removed the node-globex profile");

  const user = await api("/api/users/node-user-1");
  assert.deepEqual(user.groups, { company_id: ["node-acme"] });

  const requests = (await api("/api/requests")).requests;
  assert.ok(requests.some((r) => r.endpoint === "track" && r.method === "GET"), "single events are sent with GET ?data=");
  assert.ok(requests.some((r) => r.endpoint === "track" && r.method === "POST"), "batches are sent with POST");
  console.log(`mixpanel (npm): 4 events, 1 user update and 7 group updates arrived and were attributed`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
