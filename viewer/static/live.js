// A call in progress, as it happens: GET /v1/sessions/{id}/stream (server-sent events) read
// with fetch() and a stream reader rather than EventSource, which cannot send the bearer
// token. Events: `turn` (a turn, sent again when it changes), `chunk` (a chunk index entry),
// `end` (the session is sealed); `: ping` comments keep the connection alive. A dropped
// stream is opened again, waiting longer each time, and the page is told meanwhile that its
// updates are lost (a page that silently stops moving reads as a quiet call); a 401 or 403
// stops it, said too, as trying again cannot help until the token changes (which renders the
// page anew); a 404 (a store without the stream) or an `end` stops it quietly.

import { apiPath, openStream } from "./api.js";

const RETRY_MS = [1000, 2000, 5000, 10000];
/** What retrying cannot mend: the stream refused the page's token. */
const REFUSED = new Set([401, 403]);
/** What a stream that is cut off reads as: its end, so that the next connection says why. */
const CUT = { done: true };

function parse(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  return data.length ? { event, data: data.join("\n") } : null;
}

/** Reads one connection; true when the stream said it is over. ``status(null)`` once it
 * is open. */
async function readOnce(sessionId, handlers, signal) {
  const response = await openStream(apiPath("sessions", sessionId, "stream"), signal);
  handlers.status(null);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read().catch(() => CUT);
    if (done) return false;
    buffer = (buffer + value).replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const message = parse(buffer.slice(0, cut));
      buffer = buffer.slice(cut + 2);
      if (!message) continue;
      if (message.event === "end") {
        await handlers.end(); // failing, it is read again from a new connection
        return true;
      }
      handlers[message.event]?.(JSON.parse(message.data));
    }
  }
}

/** Follows the session's stream until it ends or the returned function is called;
 * ``handlers.status(text)`` says when its updates are lost and why (text null: they come
 * again). */
export function followLive(sessionId, handlers) {
  const control = new AbortController();
  (async () => {
    let failures = 0;
    while (!control.signal.aborted) {
      try {
        if (await readOnce(sessionId, handlers, control.signal)) return;
        failures = 0;
      } catch (error) {
        if (control.signal.aborted || error.status === 404) return; // a store without the stream
        if (REFUSED.has(error.status)) {
          handlers.status(`Live updates stopped: ${error.message}`);
          return;
        }
        failures += 1;
        handlers.status(`Live updates lost: ${error.message}; retrying…`);
      }
      const wait = RETRY_MS[Math.min(failures, RETRY_MS.length - 1)];
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  })();
  return () => control.abort();
}
