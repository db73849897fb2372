// browser.mjs drives a real Chromium (Debian's /usr/bin/chromium, never a
// downloaded one) through the chat page and hfgate, and prints what the page
// saw as one JSON line on stdout. browser_test.go at the repository root runs
// it and asserts on that line; it also works by hand:
//
//   node browser.mjs --page http://127.0.0.1:8080/ --api http://127.0.0.1:7860 --scenario cold
//
// With --hold it loads the page, prints {"event":"loaded"} and waits for a
// line (or EOF) on stdin before acting. Launching Chromium takes seconds, so
// this is how a test makes sure the click happens while the backend is still
// cold: it starts the gateway only after "loaded", then releases the page.
//
// Scenarios:
//   cold        click Send while the backend is cold: the page must see a 503
//               whose Retry-After and X-Request-ID it can read cross-origin,
//               wait, retry and get the reply from POST /chat (preflighted).
//   stream      click Stream: every token of GET /chat/stream, with the
//               page-side time it arrived, so buffering shows up as one burst.
//   disallowed  the page is on an origin the gateway does not allow: both
//               POST /chat and GET /chat/stream must reject with a TypeError.
//
// The exit status is 0 when the scenario behaved as described, 1 otherwise
// (including on errors, which are reported in the JSON line too).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const usage = "usage: node browser.mjs --page URL --api URL --scenario cold|stream|disallowed " +
  "[--message TEXT] [--timeout MS] [--profile DIR] [--chromium PATH] [--hold]";

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

const scenarios = { cold, stream, disallowed };

async function main() {
  let opts;
  try {
    ({ values: opts } = parseArgs({
      options: {
        page: { type: "string" },
        api: { type: "string" },
        scenario: { type: "string" },
        message: { type: "string", default: "hello from the browser" },
        timeout: { type: "string", default: "30000" },
        profile: { type: "string" },
        chromium: { type: "string", default: "/usr/bin/chromium" },
        hold: { type: "boolean", default: false },
      },
    }));
  } catch (err) {
    return fail(null, `${err.message}\n${usage}`);
  }
  const run = Object.hasOwn(scenarios, opts.scenario ?? "") ? scenarios[opts.scenario] : undefined;
  const timeout = Number(opts.timeout);
  if (!opts.page || !opts.api || !run || !(timeout > 0)) return fail(opts.scenario, usage);

  // A profile directory given by the caller is the caller's to remove.
  const profile = opts.profile ?? await mkdtemp(join(tmpdir(), "hfgate-chromium-"));
  const seen = { console: [], pageErrors: [], failedRequests: [] };
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: opts.chromium,
      headless: true,
      args: chromiumArgs,
      timeout,
    });
    const page = context.pages()[0] ?? await context.newPage();
    page.setDefaultTimeout(timeout);
    page.on("console", (m) => seen.console.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (err) => seen.pageErrors.push(String(err)));
    page.on("requestfailed", (r) => seen.failedRequests.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`));

    const pageURL = new URL(opts.page);
    pageURL.searchParams.set("api", opts.api);
    await page.goto(pageURL.href);
    await page.fill("#message", opts.message);
    if (opts.hold) {
      process.stdout.write(JSON.stringify({ event: "loaded" }) + "\n");
      await stdinLine();
    }
    const result = await run(page, opts, seen);
    return report({ scenario: opts.scenario, ...result, browser: context.browser()?.version(), ...seen });
  } catch (err) {
    // Playwright colours its call logs; keep the JSON line plain.
    return report({ scenario: opts.scenario, ok: false, error: String(err).replace(/\u001b\[[0-9;]*m/g, ""), ...seen });
  } finally {
    await context?.close().catch(() => {});
    if (!opts.profile) await rm(profile, { recursive: true, force: true });
  }
}

// cold clicks Send and waits for the reply (or an error) after any retries.
async function cold(page) {
  await page.click("#send");
  // The status line is only visible during a wait, so read it at the first one.
  const firstWait = page.waitForFunction(() => window.chatLog.some((e) => e.kind === "wait"))
    .then(() => page.textContent("#status"), () => null);
  await page.waitForFunction(() => window.chatLog.some((e) => e.kind === "reply" || e.kind === "error"));
  const log = await page.evaluate(() => window.chatLog);
  const waits = log.filter((e) => e.kind === "wait");
  const reply = log.find((e) => e.kind === "reply");
  const error = log.find((e) => e.kind === "error");
  const statusShown = waits.length > 0 ? await firstWait : null;
  const ok = waits.length > 0 &&
    waits.every((w) => w.status === 503 && Number(w.retryAfterHeader) >= 1 && Boolean(w.requestId)) &&
    reply?.status === 200 && !error;
  return { ok, waits, statusShown, reply, error };
}

// stream clicks Stream and reports every token with its page-side time.
async function stream(page) {
  await page.click("#stream");
  await page.waitForFunction(() => window.chatLog.some((e) => e.kind === "done" || e.kind === "error"));
  const log = await page.evaluate(() => window.chatLog);
  const tokens = log.filter((e) => e.kind === "token").map(({ t, text }) => ({ t, text }));
  const done = log.find((e) => e.kind === "done");
  const error = log.find((e) => e.kind === "error");
  const spreadMs = tokens.length > 0 ? tokens.at(-1).t - tokens[0].t : 0;
  const text = tokens.map((tok) => tok.text).join("");
  const shown = await page.textContent("#log .bot");
  const ok = tokens.length > 0 && done?.tokens === tokens.length && shown === text && !error;
  return { ok, tokens, spreadMs, text, shown, waits: log.filter((e) => e.kind === "wait"), stream: log.find((e) => e.kind === "stream"), error };
}

// disallowed expects both kinds of request to be refused by the browser: the
// preflighted POST /chat and the simple GET /chat/stream. It first asks the
// gateway directly (no CORS outside a browser) whether it is ready, and
// checks Chromium's console, so a refusal cannot be mistaken for a gateway
// that is down.
async function disallowed(page, opts, seen) {
  const ready = await fetch(new URL("/ready", opts.api)).then((r) => r.status, (err) => String(err));
  const errors = [];
  for (const button of ["#send", "#stream"]) {
    const before = errors.length;
    await page.click(button);
    await page.waitForFunction((n) => window.chatLog.filter((e) => e.kind === "error").length > n ||
      window.chatLog.some((e) => e.kind === "reply" || e.kind === "done"), before);
    const log = await page.evaluate(() => window.chatLog);
    if (log.some((e) => e.kind === "reply" || e.kind === "done")) break;
    errors.push(log.filter((e) => e.kind === "error").at(-1));
  }
  const log = await page.evaluate(() => window.chatLog);
  const leaked = log.filter((e) => e.kind === "reply" || e.kind === "done" || e.kind === "token");
  // Chromium names the cause on the console; a refused connection reads differently.
  const corsBlocked = seen.console.filter((m) => m.includes("blocked by CORS policy"));
  const ok = ready === 200 && errors.length === 2 && errors.every((e) => e.name === "TypeError") &&
    corsBlocked.length === 2 && leaked.length === 0;
  return { ok, ready, errors, corsBlocked, leaked };
}

// stdinLine resolves at the first line on stdin, or when stdin ends.
async function stdinLine() {
  const lines = createInterface({ input: process.stdin });
  await new Promise((resolve) => {
    lines.once("line", resolve);
    lines.once("close", resolve);
  });
  lines.close();
  process.stdin.destroy();
}

function report(result) {
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exitCode = result.ok ? 0 : 1;
}

function fail(scenario, error) {
  report({ scenario, ok: false, error });
}

await main();
