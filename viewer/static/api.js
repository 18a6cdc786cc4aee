// Every call the page makes to the store's API: the bearer token the user entered (kept in
// localStorage) goes with each one, and a problem answer (RFC 9457) becomes an Error whose
// message is the problem's detail.

const TOKEN_KEY = "tstore.token";

export function token() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

export function headers(extra = {}) {
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

async function call(path, params, accept) {
  const response = await fetch(withQuery(path, params), { headers: headers({ Accept: accept }) });
  if (response.ok) return response;
  let detail = `${response.status} ${response.statusText}`;
  try {
    const problem = await response.json();
    if (problem.detail) detail = problem.detail;
  } catch {
    // not a problem document: the status line says enough
  }
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
