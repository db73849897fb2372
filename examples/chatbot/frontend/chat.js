// A minimal chat page for the example backend behind hfgate.
//
// The page and the gateway live on different origins (on Hugging Face the
// frontend is often a static Space and the API another one), so the gateway
// URL comes from the query string: index.html?api=https://your-api.hf.space.
// hfgate answers 503 with Retry-After while the backend is cold and exposes
// Retry-After and X-Request-ID to cross-origin scripts, which is what lets the
// retry loop below work from another origin.
"use strict";

// ---8<--- fetchWithRetry: copy this block into your own frontend ---
// fetchWithRetry is fetch that waits out a cold backend: while the answer is
// 503 it reads Retry-After (seconds) and the JSON body's state, calls
// onWait({attempt, retryAfter, state, response}) (the 503, its body already
// read), sleeps and tries again, at most maxAttempts times. It returns the
// first other answer, or the last 503. init is sent again on each attempt,
// so its body must be a string or similar, not a stream. Network and CORS
// failures reject with a TypeError, as fetch does.
async function fetchWithRetry(url, init = {}, { maxAttempts = 10, onWait = () => {} } = {}) {
  for (let attempt = 1; ; attempt++) {
    const res = await fetch(url, init);
    if (res.status !== 503 || attempt >= maxAttempts) return res;
    const body = await res.json().catch(() => ({}));
    const header = parseInt(res.headers.get("Retry-After"), 10);
    // Fall back to the body, then to 1 s; cap the wait so a bad header cannot park the page.
    const retryAfter = Math.min(header > 0 ? header : body.retry_after > 0 ? body.retry_after : 1, 30);
    onWait({ attempt, retryAfter, state: body.state, response: res });
    await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000));
  }
}
// ---8<--- end of fetchWithRetry ---

// readEvents reads a text/event-stream body and calls onEvent({event, data})
// once per event, as soon as its closing blank line arrives. EventSource would
// do this too, but it gives up for good on a 503 instead of retrying.
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = "message";
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    // Hold back a trailing "\r": it may be the first half of a "\r\n".
    const held = buffer.endsWith("\r") ? "\r" : "";
    const lines = buffer.slice(0, buffer.length - held.length).split(/\r\n|\r|\n/);
    buffer = lines.pop() + held;
    for (const line of lines) {
      if (line === "") {
        if (data.length > 0) onEvent({ event, data: data.join("\n") });
        event = "message";
        data = [];
        continue;
      }
      const colon = line.indexOf(":");
      if (colon === 0) continue; // a comment, e.g. a keep-alive
      const field = colon < 0 ? line : line.slice(0, colon);
      const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = val;
      else if (field === "data") data.push(val);
    }
  }
}

const api = (new URLSearchParams(location.search).get("api") || location.origin).replace(/\/+$/, "");
const statusLine = document.getElementById("status");
const log = document.getElementById("log");

// chatLog records what happened with page-side timestamps (ms since page
// load), so tests and curious humans can see the retries and token timing.
window.chatLog = [];
function record(kind, fields) {
  const entry = { kind, t: performance.now(), ...fields };
  window.chatLog.push(entry);
  return entry;
}

function say(who, text) {
  const p = document.createElement("p");
  p.className = who;
  p.textContent = text;
  log.append(p);
  return p;
}

function onWait({ attempt, retryAfter, state, response }) {
  // The raw headers are recorded too: a cross-origin script can read them
  // only because the gateway lists them in Access-Control-Expose-Headers.
  record("wait", {
    attempt, retryAfter, state, status: response.status,
    retryAfterHeader: response.headers.get("Retry-After"),
    requestId: response.headers.get("X-Request-ID"),
  });
  statusLine.textContent = `${state || "unavailable"}, retrying in ${retryAfter} s`;
}

// send posts one message to POST /chat. The JSON content type makes this a
// non-simple request, so the browser sends a CORS preflight first.
async function send(message) {
  const res = await fetchWithRetry(`${api}/chat`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ message }),
  }, { onWait });
  const requestId = res.headers.get("X-Request-ID");
  if (!res.ok) throw new Error(`POST /chat: HTTP ${res.status} (request ${requestId})`);
  const { reply } = await res.json();
  record("reply", { status: res.status, requestId, text: reply });
  return reply;
}

// stream asks GET /chat/stream for the reply as server-sent events and
// calls onToken for each token the moment it arrives.
async function stream(message, onToken) {
  const url = `${api}/chat/stream?message=${encodeURIComponent(message)}`;
  const res = await fetchWithRetry(url, { headers: { Accept: "text/event-stream" } }, { onWait });
  const requestId = res.headers.get("X-Request-ID");
  if (!res.ok) throw new Error(`GET /chat/stream: HTTP ${res.status} (request ${requestId})`);
  record("stream", { status: res.status, requestId });
  let tokens = 0;
  await readEvents(res.body, ({ event, data }) => {
    if (event === "done") return;
    const { token } = JSON.parse(data);
    tokens++;
    record("token", { text: token });
    onToken(token);
  });
  record("done", { tokens });
}

async function run(message, streaming) {
  say("you", message);
  statusLine.textContent = "";
  try {
    if (streaming) {
      const p = say("bot", "");
      await stream(message, (token) => { p.textContent += token; });
    } else {
      say("bot", await send(message));
    }
    statusLine.textContent = "";
  } catch (err) {
    // A CORS refusal surfaces here as "TypeError: Failed to fetch".
    record("error", { name: err.name, message: err.message });
    statusLine.textContent = "";
    say("error", `${err.name}: ${err.message}`);
  }
}

const form = document.getElementById("chat");
const input = document.getElementById("message");
form.addEventListener("submit", (e) => {
  e.preventDefault();
  run(input.value, false);
});
document.getElementById("stream").addEventListener("click", () => {
  if (form.reportValidity()) run(input.value, true);
});
window.chat = { api, fetchWithRetry, send, stream };
