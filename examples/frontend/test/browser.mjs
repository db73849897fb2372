// browser.mjs drives a real Chromium (Debian's /usr/bin/chromium, never a
// downloaded one) through the chat page and hfgate. It runs a plan of
// scenarios in one browser, each in its own tab, and prints what each tab
// saw as one JSON line on stdout ({"scenario": NAME, ...}) as it finishes.
// e2e/browser_test.go runs it and asserts on those lines; it also works by
// hand:
//
//   node browser.mjs --api http://127.0.0.1:7860 --shots /tmp/shots --plan \
//     '[{"scenario":"stream","page":"http://127.0.0.2:8080/","messages":["hi","tell me more"]}]'
//
// The plan runs in order, or with --together all at once. An entry with
// "hold": true holds at "start" before it begins. Launching Chromium
// takes seconds (many on a busy machine), so one launch serves a whole plan.
//
// Holds: at agreed points a scenario prints {"event":"hold","scenario":S,
// "name":N} and waits for the line S on stdin (EOF releases every hold).
// That is how the Go test orders what it controls around the page: a cold
// scenario holds after loading, and the test starts the gateway only then;
// the crash scenario holds mid-stream while the test crashes the backend.
//
// Scenarios (messages are the plan entry's, in order):
//   cold        hold "loaded"; then send messages[0] with POST /chat (streaming
//               off) and wait for the reply: the page meets the cold gateway,
//               counts down its Retry-After and retries by itself.
//   statuspage  hold "loaded" (before any page); then open the gateway's "/"
//               and wait, without navigating again, until it has turned into
//               the backend's own page.
//   stream      send messages[0] with POST /chat, then stream messages[1];
//               screenshot <shots>/stream-midstream.png part-way through.
//   disallowed  from an origin the gateway does not allow, send with POST
//               /chat and with GET /chat/stream: the browser must refuse both.
//   crash       stream messages[0]; hold "streaming" after two tokens (the
//               test crashes the backend); wait for the page to report the
//               cut-off stream, then stream messages[1] through the restart.
//   eventsource hold "loaded"; then open an EventSource on /chat/stream for
//               messages[0] and wait for the backend's "done" event: the page
//               meets the cold gateway and only records what the EventSource
//               does (see listen); reconnecting is the browser's own. Then, as
//               a control, an EventSource on a path the backend answers 404,
//               which the browser must close for good.
//   eventsource_crash
//               open an EventSource on /chat/stream for messages[0]; hold
//               "streaming" after two tokens (the test kills the backend);
//               wait for a "done" event, which only a stream opened by the
//               browser's own reconnect can bring.
//
// Every scenario leaves <shots>/<scenario>.png, taken as it ends (also when it
// fails). Page-side timings come from a MutationObserver installed before
// the page's own script: every change of the status line and of the last bot
// reply, with performance.now() times.
//
// The exit status is 0 when every scenario ran to its end, 1 otherwise; the
// JSON lines say why.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const usage = "usage: node browser.mjs --api URL --plan JSON [--together] [--timeout MS] [--profile DIR] " +
  "[--chromium PATH] [--shots DIR]\n  plan: [{\"scenario\": " +
  "\"cold|statuspage|stream|disallowed|crash|eventsource|eventsource_crash\", " +
  "\"page\": URL, \"messages\": [TEXT, ...]}, ...]";

// Flags for a quiet, reproducible headless run that phones nobody: no
// component updates, no sync, no QUIC probing, a fresh profile every time.
const chromiumArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const scenarios = { cold, statuspage, stream, disallowed, crash, eventsource, eventsource_crash };

// observe runs in the page before its own scripts (addInitScript) and
// records, as they happen, the status line's texts and the last bot reply's
// growth. Each streamed token is appended in its own task, so each one shows
// up as its own record unless the browser delivered several at once.
function observe() {
  window.observed = { status: [], bot: [] };
  document.addEventListener("DOMContentLoaded", () => {
    const status = document.getElementById("status");
    const log = document.getElementById("log");
    if (!status || !log) return; // not the chat page
    let lastBot = "";
    new MutationObserver((records) => {
      const t = performance.now();
      // Every time the page sets the status line counts, even to the same
      // text: a countdown that ends at 1 s and starts again at 1 s is two.
      if (records.some((r) => status.contains(r.target))) {
        window.observed.status.push({ t, text: status.textContent });
      }
      const bots = log.querySelectorAll(".bot");
      const bot = bots[bots.length - 1];
      if (bot && `${bots.length}:${bot.textContent}` !== lastBot) {
        lastBot = `${bots.length}:${bot.textContent}`;
        window.observed.bot.push({ t, n: bots.length, len: bot.textContent.length, text: bot.textContent });
      }
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
}

let opts;
let failed = false;

async function main() {
  let plan;
  try {
    ({ values: opts } = parseArgs({
      options: {
        plan: { type: "string" },
        api: { type: "string" },
        together: { type: "boolean", default: false },
        timeout: { type: "string", default: "30000" },
        profile: { type: "string" },
        chromium: { type: "string", default: "/usr/bin/chromium" },
        shots: { type: "string" },
      },
    }));
    plan = JSON.parse(opts.plan ?? "null");
    const bad = (plan ?? []).find((step) => !Object.hasOwn(scenarios, step.scenario ?? "") ||
      (!step.page && step.scenario !== "statuspage"));
    if (!Array.isArray(plan) || plan.length === 0 || bad || !opts.api || !(Number(opts.timeout) > 0)) {
      throw new Error(bad ? `bad plan entry ${JSON.stringify(bad)}` : "missing or bad arguments");
    }
  } catch (err) {
    report({ scenario: null, ok: false, error: `${err.message}\n${usage}` });
    process.exitCode = 1;
    return;
  }
  const timeout = Number(opts.timeout);
  listenForReleases();

  // A profile directory given by the caller is the caller's to remove.
  const profile = opts.profile ?? await mkdtemp(join(tmpdir(), "hfgate-chromium-"));
  let context;
  try {
    const started = performance.now();
    context = await chromium.launchPersistentContext(profile, {
      executablePath: opts.chromium,
      headless: true,
      args: chromiumArgs,
      timeout,
      viewport: { width: 760, height: 460 },
    });
    const launch = Math.round(performance.now() - started);
    const run = (step) => runStep(context, step, launch);
    if (opts.together) await Promise.all(plan.map(run));
    else for (const step of plan) await run(step);
  } catch (err) {
    for (const step of plan) report({ scenario: step.scenario, ok: false, error: plain(err) });
  } finally {
    await context?.close().catch(() => {});
    if (!opts.profile) await rm(profile, { recursive: true, force: true });
    process.stdin.destroy();
  }
  process.exitCode = failed ? 1 : 0;
}

// runStep runs one plan entry in a new tab and reports it.
async function runStep(context, step, launch) {
  const seen = { console: [], pageErrors: [], failedRequests: [], screenshots: [], timings: { launch } };
  const page = await context.newPage();
  page.setDefaultTimeout(Number(opts.timeout));
  page.on("console", (m) => seen.console.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (err) => seen.pageErrors.push(String(err)));
  page.on("requestfailed", (r) => seen.failedRequests.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  await page.addInitScript(observe);
  const shot = (name) => screenshot(page, seen, name);
  if (step.hold) await hold(step.scenario, "start");
  const started = performance.now();
  let result;
  try {
    result = await scenarios[step.scenario]({
      page,
      step,
      messages: step.messages ?? ["hello from the browser", "and once more"],
      hold: (name) => hold(step.scenario, name),
      shot,
    });
  } catch (err) {
    result = { ok: false, error: plain(err) };
  }
  seen.timings.scenario = Math.round(performance.now() - started);
  result.browser = context.browser()?.version();
  result.observed ??= await page.evaluate(() => window.observed).catch(() => undefined);
  result.chatLog ??= await page.evaluate(() => window.chatLog).catch(() => undefined);
  result.eventSources ??= await page.evaluate(() => window.eventSources).catch(() => undefined);
  await shot(step.scenario);
  await page.close().catch(() => {});
  report({ scenario: step.scenario, ...result, ...seen });
}

// plain is an error's text without the colours Playwright puts in its call logs.
function plain(err) {
  return String(err).replace(/\u001b\[[0-9;]*m/g, "");
}

// screenshot saves the page as <shots>/<name>.png when --shots is given.
async function screenshot(page, seen, name) {
  if (!opts.shots) return;
  const path = join(opts.shots, `${name}.png`);
  try {
    await page.screenshot({ path });
    seen.screenshots.push(path);
  } catch (err) {
    seen.console.push(`driver: screenshot ${path}: ${err}`);
  }
}

// Releases: a stdin line names the scenario to release; one that arrives
// before its hold is kept for it. EOF releases every hold, now and later.
const waiting = new Map();
const early = new Set();
let stdinClosed = false;

function listenForReleases() {
  const lines = createInterface({ input: process.stdin });
  lines.on("line", (line) => {
    const name = line.trim();
    if (waiting.has(name)) {
      waiting.get(name)();
      waiting.delete(name);
    } else {
      early.add(name);
    }
  });
  lines.on("close", () => {
    stdinClosed = true;
    for (const release of waiting.values()) release();
    waiting.clear();
  });
}

// hold tells the test that scenario reached name and waits for its go.
async function hold(scenario, name) {
  process.stdout.write(JSON.stringify({ event: "hold", scenario, name }) + "\n");
  if (stdinClosed || early.delete(scenario)) return;
  await new Promise((resolve) => waiting.set(scenario, resolve));
}

async function openChat(page, step) {
  const url = new URL(step.page);
  url.searchParams.set("api", opts.api);
  await page.goto(url.href);
}

// chat sends one message the way a user does and waits until the page has
// finished with it: a reply, a completed stream or an error in chatLog.
async function chat(page, message, streamed) {
  const before = await page.evaluate(() => window.chatLog.length);
  await page.setChecked("#streaming", streamed);
  await page.fill("#message", message);
  await page.click("#send");
  await page.waitForFunction((n) => window.chatLog.slice(n).some((e) => ["reply", "done", "error"].includes(e.kind)), before);
  return page.evaluate((n) => window.chatLog.slice(n), before);
}

function outcome(entries) {
  return entries.find((e) => ["reply", "done", "error"].includes(e.kind));
}

// shown is what the conversation looks like on screen.
function shown(page) {
  return page.$$eval("#log p", (ps) => ps.map((p) => ({ who: p.className, text: p.textContent })));
}

async function cold({ page, step, messages, hold }) {
  await openChat(page, step);
  await hold("loaded");
  const entries = await chat(page, messages[0], false);
  return { ok: outcome(entries)?.kind === "reply", shown: await shown(page), status: await page.textContent("#status") };
}

async function statuspage({ page, hold }) {
  await hold("loaded");
  // Every document the tab loads, in order: the first is the gateway's
  // status page, the last must be the backend's, reached by the page's own
  // reloads (the driver navigates once).
  const documents = [];
  // Each document's own clock, kept in the tab's sessionStorage across its reloads: when it
  // finished loading and when the next navigation began. The meta refresh runs from the first
  // (the HTML standard: time seconds after the document has completely loaded), and measuring
  // it in the page leaves out how late Node hears of each response on a busy machine.
  await page.addInitScript(() => {
    addEventListener("load", () => {
      setTimeout(() => {
        const nav = performance.getEntriesByType("navigation")[0];
        const docs = JSON.parse(sessionStorage.getItem("hfgate-docs") || "[]");
        docs.push({ origin: performance.timeOrigin, loaded: performance.timeOrigin + (nav ? nav.loadEventEnd : performance.now()) });
        sessionStorage.setItem("hfgate-docs", JSON.stringify(docs));
      });
    });
  });
  page.on("response", (r) => {
    if (r.request().isNavigationRequest() && r.frame() === page.mainFrame()) {
      documents.push({ t: Date.now(), status: r.status(), contentType: r.headers()["content-type"] ?? "" });
    }
  });
  await page.goto(new URL("/", opts.api).href);
  const first = await page.evaluate(() => ({
    title: document.title,
    h1: document.querySelector("h1")?.textContent ?? "",
    refresh: document.querySelector('meta[http-equiv="refresh"]')?.content ?? null,
  }));
  await page.locator("#backend-page").waitFor();
  const last = await page.evaluate(() => ({ title: document.title, h1: document.querySelector("h1")?.textContent ?? "" }));
  await page.waitForFunction(() => JSON.parse(sessionStorage.getItem("hfgate-docs") || "[]").length >= 2);
  const clocks = await page.evaluate(() => JSON.parse(sessionStorage.getItem("hfgate-docs") || "[]"));
  return { ok: true, first, last, documents, clocks };
}

async function stream({ page, step, messages, shot }) {
  await openChat(page, step);
  const first = outcome(await chat(page, messages[0], false));
  if (first?.kind !== "reply") return { ok: false, shown: await shown(page) };
  // Screenshot the reply part-way: after a few tokens, long before the end.
  const midstream = page.waitForFunction(() => window.observed.bot.filter((b) => b.n === 2 && b.len > 0).length >= 4)
    .then(() => shot("stream-midstream"));
  const entries = await chat(page, messages[1], true);
  await midstream.catch(() => {});
  return { ok: outcome(entries)?.kind === "done", shown: await shown(page) };
}

async function disallowed({ page, step, messages }) {
  // Ask the gateway directly (no CORS outside a browser) whether it is
  // ready, so that a refusal cannot be mistaken for a gateway that is down.
  const ready = await fetch(new URL("/ready", opts.api)).then((r) => r.status, (err) => String(err));
  await openChat(page, step);
  const outcomes = [];
  for (const streamed of [false, true]) {
    outcomes.push(outcome(await chat(page, messages[0], streamed)));
  }
  return { ok: outcomes.every((o) => o.kind === "error"), ready, outcomes, shown: await shown(page) };
}

async function crash({ page, step, messages, hold }) {
  await openChat(page, step);
  await page.setChecked("#streaming", true);
  await page.fill("#message", messages[0]);
  await page.click("#send");
  await page.waitForFunction(() => window.observed.bot.filter((b) => b.n === 1 && b.len > 0).length >= 2);
  await hold("streaming");
  await page.waitForFunction(() => window.chatLog.some((e) => ["done", "error"].includes(e.kind)));
  const afterCrash = await page.evaluate(() => window.chatLog.find((e) => ["done", "error"].includes(e.kind)));
  if (afterCrash.kind !== "error") return { ok: false, shown: await shown(page) };
  const entries = await chat(page, messages[1], true);
  return { ok: outcome(entries)?.kind === "done", shown: await shown(page) };
}

// listen runs in the page: it opens an EventSource on url and records in
// window.eventSources[name] every event the EventSource fires (open, message,
// error and the named events the gateway and the backend send), with the
// readyState it has then and the page's clock (performance.now) and the wall
// clock (Date.now, to set beside the gateway's log). The page does nothing
// else with it but close it on the backend's last event, "done", as an app
// would: every reconnect is the browser's own.
function listen({ name, url }) {
  const log = [];
  (window.eventSources ??= {})[name] = log;
  const source = new EventSource(url);
  const record = (e) => {
    log.push({ type: e.type, t: performance.now(), wall: Date.now(), readyState: source.readyState, data: e.data });
    if (e.type === "done") source.close();
  };
  for (const type of ["open", "message", "error", "unavailable", "busy", "done"]) {
    source.addEventListener(type, record);
  }
}

// streamURL is the gateway's /chat/stream for message.
function streamURL(message) {
  const url = new URL("/chat/stream", opts.api);
  url.searchParams.set("message", message);
  return url.href;
}

// heard waits until the page's EventSource name has fired an event of type,
// with readyState state if given.
function heard(page, name, type, state) {
  return page.waitForFunction(({ name, type, state }) => (window.eventSources?.[name] ?? [])
    .some((e) => e.type === type && (state === undefined || e.readyState === state)), { name, type, state });
}

async function eventsource({ page, step, messages, hold }) {
  await openChat(page, step);
  await hold("loaded");
  await page.evaluate(listen, { name: "stream", url: streamURL(messages[0]) });
  await heard(page, "stream", "done");
  // The control: an answer that is not a 200 event stream. Nothing needs
  // waiting out to tell that it is closed for good: readyState CLOSED is
  // final (the test also counts its requests at its end).
  await page.evaluate(listen, { name: "control", url: new URL("/chat/nowhere", opts.api).href });
  await heard(page, "control", "error", 2);
  return { ok: true };
}

async function eventsource_crash({ page, step, messages, hold }) {
  await openChat(page, step);
  await page.evaluate(listen, { name: "stream", url: streamURL(messages[0]) });
  await page.waitForFunction(() => window.eventSources.stream.filter((e) => e.type === "message").length >= 2);
  await hold("streaming");
  await heard(page, "stream", "done");
  return { ok: true };
}

function report(result) {
  process.stdout.write(JSON.stringify(result) + "\n");
  if (!result.ok) failed = true;
}

await main();
