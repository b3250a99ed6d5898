// Browser tests of the web page in headless Chromium, against a groupscope-server loaded with
// the dataset of dataset.mjs. Navigates group keys → groups → a profile → an event as a person
// would, asserts what is on screen, and saves a screenshot of each page.
//
// Usage: node tests/web/page.test.mjs --server URL --page URL --screenshots DIR
// Prints one line per test and a final `N passed, N failed`; exits 1 when a test failed.

import assert from "node:assert/strict";
import { createRequire } from "node:module";
import path from "node:path";

import { ACME_FEED, EXPECTED_GROUPS, loadDataset } from "./dataset.mjs";

const require = createRequire(path.join(process.env.GROUPSCOPE_NODE_MODULES ?? ".", "noop.js"));
const { chromium } = require("playwright-core");

const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

function parseArguments(argv) {
  const options = {};
  for (let index = 0; index < argv.length; index += 2) {
    const name = argv[index].replace(/^--/, "");
    if (!["server", "page", "screenshots", "user-data-dir"].includes(name)) {
      throw new Error(`unknown argument ${JSON.stringify(argv[index])}; expected --server, --page, --screenshots, --user-data-dir`);
    }
    options[name] = argv[index + 1];
  }
  for (const required of ["server", "page", "screenshots", "user-data-dir"]) {
    if (!options[required]) {
      throw new Error(`missing --${required}`);
    }
  }
  return options;
}

const options = parseArguments(process.argv.slice(2));
const results = { passed: 0, failed: 0 };

async function test(name, body) {
  try {
    await body();
    results.passed += 1;
    console.log(`ok - ${name}`);
  } catch (error) {
    results.failed += 1;
    console.log(`not ok - ${name}\n  ${String(error.stack ?? error).split("\n").join("\n  ")}`);
  }
}

async function screenshot(page, name) {
  await page.screenshot({ path: path.join(options.screenshots, `${name}.png`), fullPage: true });
}

async function tableColumn(page, column) {
  return page.locator(`[data-testid=group-row] td:nth-child(${column})`).allInnerTexts();
}

let context;
try {
  await loadDataset(options.server);
  context = await chromium.launchPersistentContext(options["user-data-dir"], {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: CHROMIUM_ARGS,
    viewport: { width: 1200, height: 860 },
  });
} catch (error) {
  console.log(`not ok - setup\n  ${error.message}`);
  console.log("0 passed, 1 failed");
  process.exit(1);
}
const page = context.pages()[0] ?? await context.newPage();
const pageErrors = [];
page.on("pageerror", (error) => pageErrors.push(error.message));
page.on("requestfailed", (request) => pageErrors.push(`request failed: ${request.url()}`));
page.on("console", (message) => {
  if (message.text().includes("Content Security Policy")) {
    pageErrors.push(message.text());
  }
});
page.on("request", (request) => {
  const url = new URL(request.url());
  if (url.protocol !== "data:" && url.hostname !== "127.0.0.1") {
    pageErrors.push(`request to another host: ${request.url()}`);
  }
});
page.setDefaultTimeout(10_000);

try {
  await test("group keys page lists each key with its group count", async () => {
    await page.goto(options.page);
    await page.waitForSelector("body[data-view=keys]");

    const cards = page.locator("[data-testid=group-key]");
    assert.equal(await cards.count(), 2);
    const company = await cards.filter({ hasText: "company_id" }).innerText();
    assert.match(company, /Company/);
    assert.match(company, /\b3\b\s*groups/);
    await screenshot(page, "group-keys");
  });

  await test("groups table sorts by events, unique users and last seen", async () => {
    await page.getByRole("link", { name: /Company/ }).click();
    await page.waitForSelector("[data-testid=groups-table]");

    assert.deepEqual(await tableColumn(page, 1), EXPECTED_GROUPS.map((group) => group.id));
    assert.deepEqual(await tableColumn(page, 2), EXPECTED_GROUPS.map((group) => group.name));
    assert.deepEqual(await tableColumn(page, 3), EXPECTED_GROUPS.map((group) => String(group.events)));
    assert.deepEqual(await tableColumn(page, 4), EXPECTED_GROUPS.map((group) => String(group.users)));

    await page.getByRole("button", { name: "Last seen" }).click();
    await page.waitForSelector("th[aria-sort=descending] [data-sort=lastSeen]");
    assert.deepEqual(await tableColumn(page, 1), ["acme", "globex", "initech"]);
    await page.getByRole("button", { name: "Last seen" }).click();
    await page.waitForSelector("th[aria-sort=ascending] [data-sort=lastSeen]");
    assert.deepEqual(await tableColumn(page, 1), ["initech", "globex", "acme"]);

    await page.getByRole("button", { name: "Unique users" }).click();
    await page.waitForSelector("th[aria-sort=descending] [data-sort=uniqueUsers]");
    await page.getByRole("button", { name: "Unique users" }).click();
    await page.waitForSelector("th[aria-sort=ascending] [data-sort=uniqueUsers]");
    assert.deepEqual(await tableColumn(page, 4), ["1", "2", "3"]);
  });

  await test("funnel chart counts groups per step", async () => {
    await page.getByRole("button", { name: "Events" }).click();
    const funnel = page.locator("[data-testid=funnel-chart] svg");
    await funnel.waitFor();
    await page.getByLabel("Funnel steps").fill("Sign Up, Create Report, Export Report");
    await page.getByRole("button", { name: "Update" }).click();
    await page.waitForFunction(() => document.querySelector("[data-testid=funnel-chart] svg")?.getAttribute("aria-label")?.includes("Export Report"));

    assert.equal(await funnel.getAttribute("aria-label"), "Groups converting within 30 days: Sign Up 3, Create Report 2, Export Report 1");
    const labels = await funnel.locator("text").allTextContents();
    assert.ok(labels.includes("3 (100%)"), labels.join(" | "));
    assert.ok(labels.includes("2 (67%)"), labels.join(" | "));
    assert.ok(labels.includes("1 (33%)"), labels.join(" | "));
    assert.equal(await funnel.locator("rect.bar:not(.secondary)").count(), 3);
  });

  await test("uniques chart counts unique groups per event", async () => {
    const chart = page.locator("[data-testid=uniques-chart] svg");
    await chart.waitFor();

    assert.equal(await chart.getAttribute("aria-label"), "Unique company_id values per event: Sign Up 3, Create Report 2, Export Report 1");
    assert.equal(await chart.locator("rect.bar").count(), 3);
    await screenshot(page, "groups");
  });

  await test("group profile shows properties, users and the feed newest first", async () => {
    await page.getByRole("link", { name: "acme", exact: true }).click();
    await page.waitForSelector("body[data-view=groups]");

    assert.equal(await page.locator("h1").innerText(), "Acme Corp");
    const properties = await page.locator("[data-testid=profile-properties]").innerText();
    assert.match(properties, /plan\s+enterprise/);
    assert.match(properties, /seats\s+120/);
    assert.match(properties, /regions\s+eu, us/);

    const users = page.locator("[data-testid=linked-user]");
    assert.deepEqual(await users.evaluateAll((items) => items.map((item) => item.dataset.distinctId)), ["alice", "bob", "frank"]);
    assert.match(await users.nth(0).innerText(), /alice · Alice · 3 events profile: company_id includes acme/);
    assert.match(await users.nth(1).innerText(), /bob · Bob · 2 events profile: company_id includes acme/);
    assert.match(await users.nth(2).innerText(), /frank · 1 event no user profile/);

    const feed = page.locator("[data-testid=feed-item]");
    assert.deepEqual(await feed.locator(".event-name").allInnerTexts(), ACME_FEED);
    assert.match(await feed.first().innerText(), /frank/);
    assert.match(await feed.first().innerText(), /format: csv/);
    assert.match(await feed.nth(1).innerText(), /rows: 1200/);
    await screenshot(page, "group-profile");
  });

  await test("event page shows attribution and the reason for a key it is not attributed to", async () => {
    await page.locator("[data-testid=feed-item]").first().locator(".event-name").click();
    await page.waitForSelector("body[data-view=events]");

    assert.equal(await page.locator("h1").innerText(), "Create Report");
    const attributed = await page.locator("[data-testid=attributed]").allInnerTexts();
    assert.deepEqual(attributed, ["Attributed to company_id = acme"]);
    const reasons = await page.locator("[data-testid=not-attributed]").allInnerTexts();
    assert.equal(reasons.length, 1);
    assert.match(reasons[0], /^project_id not attributed: /);
    assert.match(reasons[0], /set up|before/i);
    assert.match(await page.locator("[data-testid=event-properties]").innerText(), /project_id\s+p-17/);
    await screenshot(page, "event");
  });

  await test("attribution link leads back to the group profile", async () => {
    await page.locator("[data-testid=attributed] a").click();
    await page.waitForSelector("body[data-view=groups]");
    assert.equal(await page.locator("h1").innerText(), "Acme Corp");
  });

  await test("event with an empty group id shows the empty-value reason", async () => {
    const response = await fetch(new URL("/api/events?distinct_id=eve", options.server));
    const [eve] = (await response.json()).events;
    await page.goto(`${options.page}#/events/${eve.id}`);
    await page.waitForSelector("body[data-view=events]");

    assert.equal(await page.locator("[data-testid=attributed]").count(), 0);
    assert.match(await page.locator("[data-testid=attribution]").innerText(), /Not attributed to any group\./);
    const reason = page.locator("[data-testid=not-attributed]");
    assert.equal(await reason.count(), 1);
    assert.equal(await reason.getAttribute("data-code"), "empty_value");
    assert.match(await reason.innerText(), /^company_id not attributed: /);
  });

  await test("unknown group shows an error a person can act on", async () => {
    await page.goto(`${options.page}#/groups/company_id/no-such-company`);
    await page.waitForSelector("body[data-view=error]");
    assert.match(await page.locator("[role=alert]").innerText(), /failed with HTTP 404/);
  });

  await test("page raised no script errors and loaded nothing from elsewhere", async () => {
    assert.deepEqual(pageErrors, []);
  });
} finally {
  await context.close();
}

console.log(`${results.passed} passed, ${results.failed} failed`);
process.exitCode = results.failed === 0 ? 0 : 1;
