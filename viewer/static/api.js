// Every call the page makes to the store's API: the bearer token the user entered (kept in
// localStorage) goes with each one, and a problem answer (RFC 9457) becomes an Error whose
// message is the problem's detail. A store that does not answer at all is said so here, for
// every page: the browser's own words for it are "Failed to fetch".

const TOKEN_KEY = "tstore.token";

export function token() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

function headers(extra = {}) {
  const given = token();
  return given ? { ...extra, Authorization: `Bearer ${given}` } : extra;
}

/** A path of the API from its segments, each id encoded whole (ids may hold "/"). A browser
 * takes a segment "." or ".." for a step in the path, however it is encoded (%2E too), and
 * removes it before the request leaves: such an id is refused here, by name, rather than
 * another path asked for. */
export function apiPath(...segments) {
  const dots = segments.find((s) => s === "." || s === "..");
  if (dots !== undefined) {
    throw new Error(`a browser cannot ask for the id "${dots}": it takes it for a step in the path ` +
      "and removes it. A client that sends it as %2E can (service.client does).");
  }
  return "/v1/" + segments.map((s) => encodeURIComponent(s)).join("/");
}

/** ``path`` with the parameters that have a value, as a query string. */
export function withQuery(path, params = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(name, value);
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

/** What a request that got no answer at all says: the store is down, or not at this address. */
function unanswered() {
  return new Error(`the store at ${location.origin} does not answer (is \`tstore serve\` running?)`);
}

/** A 401 says where the token goes: the header's field, easy to miss. */
function tokenAdvice() {
  return token()
    ? "The one in the “API token” field at the top right of the page is not the store's: enter its TSTORE_API_TOKEN there."
    : "Enter it in the “API token” field at the top right of the page.";
}

async function call(path, params, accept, init = {}) {
  let response;
  try {
    response = await fetch(withQuery(path, params), { ...init, headers: headers({ Accept: accept }) });
  } catch (error) {
    if (init.signal?.aborted) throw error;
    throw unanswered();
  }
  if (response.ok) return response;
  let detail = `${response.status} ${response.statusText}`;
  try {
    const problem = await response.json();
    if (problem.detail) detail = problem.detail;
  } catch {
    // not a problem document: the status line says enough
  }
  if (response.status === 401) detail = `${detail}. ${tokenAdvice()}`;
  throw new ApiError(response.status, detail);
}

export async function getJson(path, params = {}) {
  return (await call(path, params, "application/json")).json();
}

/** A WAV answer as a Blob, with the response's headers (X-Audio-Start, X-Audio-Holes). */
export async function getAudio(path, params = {}) {
  const response = await call(path, params, "audio/wav");
  return { blob: await response.blob(), headers: response.headers };
}

/** A stream of server-sent events, its response unread, until ``signal`` aborts it. */
export function openStream(path, signal) {
  return call(path, {}, "text/event-stream", { signal, cache: "no-store" });
}
