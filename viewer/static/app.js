// The viewer's router: the page's routes live in the URL's fragment (#/, #/search?q=,
// #/session/<id>, #/analytics), so the service serves one HTML file at / and nothing at the
// root can shadow the API. Each route renders into <main>; the one it replaces is told to
// stop (a live session page closes its stream).

import { setToken, token } from "./api.js";
import { renderAnalytics } from "./analytics.js";
import { renderSearch, renderSessions } from "./sessions.js";
import { renderSession } from "./session.js";

const page = document.getElementById("page");
const errorBox = document.getElementById("error");
let leave = null;

export function showError(error) {
  errorBox.textContent = error ? String(error.message || error) : "";
  errorBox.hidden = !error;
}

function parseRoute() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = hash.split("?");
  return { path, params: new URLSearchParams(query) };
}

async function route() {
  if (leave) leave();
  leave = null;
  showError(null);
  page.replaceChildren();
  const { path, params } = parseRoute();
  for (const link of document.querySelectorAll("[data-nav]")) {
    const active = link.dataset.nav === (path.startsWith("/analytics") ? "analytics" : "sessions");
    link.classList.toggle("active", active);
  }
  try {
    if (path.startsWith("/session/")) {
      leave = await renderSession(page, decodeURIComponent(path.slice("/session/".length)), params);
    } else if (path === "/search") {
      await renderSearch(page, params);
    } else if (path === "/analytics") {
      await renderAnalytics(page, params);
    } else {
      await renderSessions(page, params);
    }
  } catch (error) {
    showError(error);
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
