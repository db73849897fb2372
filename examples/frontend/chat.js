// A minimal chat page for the example backend behind hfgate. One static file
// and index.html: no build step, no dependencies.
//
// The page and the gateway live on different origins (on Hugging Face the
// frontend is often a static Space and the API another one), so the gateway
// URL comes from the page's ?api= query parameter or the Gateway field.
// hfgate answers 503 with Retry-After while the backend is cold and exposes
// Retry-After and X-Request-ID to cross-origin scripts (its CORS
// Access-Control-Expose-Headers), which is what lets the countdown below work
// from another origin and lets errors name the request.
"use strict";

// ---8<--- README snippet: fetchWithRetry and readEvents (README.md shows this block verbatim) ---
// fetchWithRetry is fetch that waits out a cold backend. While the answer is
// a 503 it reads Retry-After (whole seconds; the JSON body's retry_after as a
// fallback), counts it down calling onWait({attempt, retryAfter, left, state,
// response}) once a second, then tries again, at most maxAttempts times. It
// returns the first other answer, or the last 503. init is sent again on each
// attempt, so its body must be a string, not a stream. Network and CORS
// failures reject with a TypeError, as fetch does.
async function fetchWithRetry(url, init = {}, { maxAttempts = 10, onWait = () => {} } = {}) {
  for (let attempt = 1; ; attempt++) {
    const res = await fetch(url, init);
    if (res.status !== 503 || attempt >= maxAttempts) return res;
    const body = await res.json().catch(() => ({}));
    const header = parseInt(res.headers.get("Retry-After"), 10);
    // Cap the wait so that a bad header cannot park the page.
    const retryAfter = Math.min(header > 0 ? header : body.retry_after > 0 ? body.retry_after : 1, 30);
    for (let left = retryAfter; left > 0; left--) {
      onWait({ attempt, retryAfter, left, state: body.state, response: res });
      await new Promise((resolve) => setTimeout(resolve, 1000));
      init.signal?.throwIfAborted();
    }
  }
}

// readEvents reads a text/event-stream body and calls onEvent({event, data})
// for each event as soon as its closing blank line arrives.
//
// Why not EventSource: it can only GET, cannot set headers, and hides the
// status, Retry-After and X-Request-ID from script (while the backend is cold,
// hfgate answers it with an event stream it reconnects from; a fetch like the
// one below gets the 503). fetch gives all of those, and its body reader hands
// over bytes as they arrive, so tokens render one by one.
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
// ---8<--- end of README snippet ---

const apiField = document.getElementById("api");
const statusLine = document.getElementById("status");
const log = document.getElementById("log");
const form = document.getElementById("chat");
const input = document.getElementById("message");
const streaming = document.getElementById("streaming");

apiField.value = new URLSearchParams(location.search).get("api") || location.origin;
const api = () => apiField.value.trim().replace(/\/+$/, "");

// chatLog records what happened with page-side timestamps (ms since page
// load), so tests and curious humans can follow the retries and the tokens.
window.chatLog = [];
function record(kind, fields) {
  window.chatLog.push({ kind, t: performance.now(), ...fields });
}

// RequestError is a failed exchange; requestId is the gateway's X-Request-ID
// for it, the handle to find it in the gateway's and the backend's logs.
class RequestError extends Error {
  constructor(message, requestId) {
    super(message);
    this.name = "RequestError";
    this.requestId = requestId;
  }
}

function say(who, text) {
  const p = document.createElement("p");
  p.className = who;
  p.textContent = text;
  log.append(p);
  p.scrollIntoView({ block: "nearest" });
  return p;
}

function onWait({ attempt, retryAfter, left, state, response }) {
  if (left === retryAfter) {
    // The raw headers are recorded too: a cross-origin script can read them
    // only because the gateway lists them in Access-Control-Expose-Headers.
    record("wait", {
      attempt, retryAfter, state, status: response.status,
      retryAfterHeader: response.headers.get("Retry-After"),
      requestId: response.headers.get("X-Request-ID"),
    });
  }
  statusLine.textContent = `${state || "unavailable"}, retrying in ${left} s`;
}

// failed turns a non-2xx answer into a RequestError naming the gateway's
// error text and the request id.
async function failed(what, res) {
  const requestId = res.headers.get("X-Request-ID");
  const body = await res.json().catch(() => ({}));
  return new RequestError(`${what}: HTTP ${res.status}${body.error ? ` (${body.error})` : ""}`, requestId);
}

// send posts one message to POST /chat. The JSON content type makes this a
// non-simple request, so the browser sends a CORS preflight first.
async function send(message) {
  const res = await fetchWithRetry(`${api()}/chat`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ message }),
  }, { onWait });
  if (!res.ok) throw await failed("POST /chat", res);
  const requestId = res.headers.get("X-Request-ID");
  const { reply } = await res.json();
  record("reply", { status: res.status, requestId, text: reply });
  return reply;
}

// stream asks GET /chat/stream for the reply as server-sent events and calls
// onToken for each token the moment it arrives. A stream that ends without
// the backend's closing "done" event was cut short (the backend died), and
// that is an error too.
async function stream(message, onToken) {
  const url = `${api()}/chat/stream?message=${encodeURIComponent(message)}`;
  const res = await fetchWithRetry(url, { headers: { Accept: "text/event-stream" } }, { onWait });
  if (!res.ok) throw await failed("GET /chat/stream", res);
  const requestId = res.headers.get("X-Request-ID");
  record("stream", { status: res.status, requestId });
  statusLine.textContent = "";
  let tokens = 0;
  let finished = false;
  try {
    await readEvents(res.body, ({ event, data }) => {
      if (event === "done") {
        finished = true;
        return;
      }
      const { token } = JSON.parse(data);
      tokens++;
      record("token", { text: token });
      onToken(token);
    });
  } catch (err) {
    throw new RequestError(`the reply broke off after ${tokens} tokens: ${err.message}`, requestId);
  }
  if (!finished) throw new RequestError(`the reply was cut off after ${tokens} tokens`, requestId);
  record("done", { tokens });
}

async function run(message, streamed) {
  say("you", message);
  statusLine.textContent = "";
  try {
    if (streamed) {
      const p = say("bot", "");
      p.classList.add("streaming");
      try {
        await stream(message, (token) => { p.textContent += token; });
      } finally {
        p.classList.remove("streaming");
      }
    } else {
      say("bot", await send(message));
    }
  } catch (err) {
    // A CORS refusal or a network failure surfaces as "TypeError: Failed to
    // fetch", with no answer and so no request id.
    const requestId = err.requestId ?? null;
    record("error", { name: err.name, message: err.message, requestId });
    say("error", `${err.message} (${requestId ? `request ${requestId}` : "no request id: the request got no answer"})`);
  } finally {
    statusLine.textContent = "";
  }
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  const message = input.value;
  input.value = "";
  run(message, streaming.checked);
});
