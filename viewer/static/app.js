// The viewer's router: the page's routes live in the URL's fragment (#/, #/search?q=,
// #/session/<id>, #/analytics), so the service serves one HTML file at / and nothing at the
// root can shadow the API. Each route renders into a <main> of its own, put in the place of
// the one before: a route the user left while it loaded fills the old one, out of sight,
// and is told to stop once ready, as the one it replaces is (a live session page closes its
// stream).

import { setToken, token } from "./api.js";
import { renderAnalytics } from "./analytics.js";
import { skipLink } from "./keyboard.js";
import { renderSearch, renderSessions } from "./sessions.js";
import { renderSession } from "./session.js";

const NAME = "transcript-store";
let page = document.getElementById("page");
const errorBox = document.getElementById("error");
const skip = document.getElementById("skip");
skipLink(skip, () => page);
let leave = null;
/** Counts the routes rendered, to tell the one on screen. */
let routes = 0;

export function showError(error) {
  errorBox.textContent = error ? String(error.message || error) : "";
  errorBox.hidden = !error;
}

function parseRoute() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = hash.split("?");
  return { path, params: new URLSearchParams(query) };
}

/** The session id of a ``#/session/<id>`` path, said wrong by name rather than left to fail
 * as a JavaScript error further on ("URI malformed", or the list read as a session). */
function sessionIdOf(path) {
  const encoded = path.slice("/session/".length);
  if (!encoded) throw new Error("No session id in the URL: a session's page is #/session/<its id>.");
  try {
    return decodeURIComponent(encoded);
  } catch {
    throw new Error(`The session id in the URL, "${encoded}", is malformed percent-encoding: each "%" ` +
      'must be followed by two hex digits (as in "%2F"), and the bytes they give must form UTF-8 text.');
  }
}

/** What a route shows in ``view``: the tab's title, how to draw it (resolving to how to
 * leave it) and, when the page has one, what its skip link skips to. */
function pageOf(path, params, view) {
  if (path.startsWith("/session/")) {
    const sessionId = sessionIdOf(path);
    return { title: sessionId, skip: "Skip to transcript", render: () => renderSession(view, sessionId, params, showError) };
  }
  if (path === "/search") {
    return { title: `Search: ${params.get("q") ?? ""}`, render: () => renderSearch(view, params) };
  }
  if (path === "/analytics") return { title: "Analytics", render: () => renderAnalytics(view, params) };
  return { title: "Sessions", render: () => renderSessions(view, params) };
}

/** An empty <main> in the place of the one on screen. */
function freshPage() {
  const next = page.cloneNode(false);
  page.replaceWith(next);
  page = next;
  return next;
}

async function route() {
  const current = ++routes;
  if (leave) leave();
  leave = null;
  showError(null);
  const view = freshPage();
  document.title = NAME;
  skip.textContent = "Skip to content";
  const { path, params } = parseRoute();
  // The header's box holds the words searched on the search page only: elsewhere they would
  // read as a filter of what is shown.
  searchForm.elements.q.value = path === "/search" ? params.get("q") ?? "" : "";
  for (const link of document.querySelectorAll("[data-nav]")) {
    const active = link.dataset.nav === (path.startsWith("/analytics") ? "analytics" : "sessions");
    link.classList.toggle("active", active);
  }
  try {
    const shown = pageOf(path, params, view);
    document.title = `${shown.title} · ${NAME}`;
    if (shown.skip) skip.textContent = shown.skip;
    const leaving = await shown.render();
    if (current === routes) leave = leaving;
    else leaving?.();
  } catch (error) {
    if (current === routes) showError(error);
  }
}

const tokenInput = document.getElementById("token");
tokenInput.value = token();
tokenInput.addEventListener("change", () => {
  setToken(tokenInput.value.trim());
  route();
});

const searchForm = document.getElementById("search");
searchForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const q = searchForm.elements.q.value.trim();
  if (q) location.hash = `#/search?${new URLSearchParams({ q })}`;
});

window.addEventListener("hashchange", route);
route();
