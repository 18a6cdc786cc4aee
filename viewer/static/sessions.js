// The sessions list (the filters of GET /v1/sessions, newest first, paged by the API's
// cursor) and the search results (GET /v1/search, with its filters: bot, role and time
// range). Filters and cursors live in the URL's
// fragment, so a page of results can be bookmarked and the back button goes back a page.

import { getJson } from "./api.js";
import { el, fmtMs, fmtTime, freshness, scrolling, timeField } from "./format.js";
import { COUNT, TEXT, TIME, checked, fromForm, oneOf } from "./params.js";

const STATES = ["", "open", "sealed", "sealed_with_holes", "abandoned"];
const ROLES = ["", "user", "assistant"];
const YES_NO = oneOf(["true", "false"]);
/** What each page takes from the URL: the filters of its API route, and its cursor. */
const RULES = {
  bot_id: TEXT, since: TIME, until: TIME, has_interruption: YES_NO, has_timeout: YES_NO,
  min_turns: COUNT, max_turns: COUNT, language: TEXT, state: oneOf(STATES), cursor: TEXT,
};
const SEARCH_RULES = { q: TEXT, bot_id: TEXT, role: oneOf(ROLES), since: TIME, until: TIME, cursor: TEXT };

/** A link to ``route`` with ``params``, when there are any. */
function hrefOf(route, params) {
  const query = params.toString();
  return query ? `#${route}?${query}` : `#${route}`;
}

export function sessionHref(sessionId, turnId) {
  const turn = turnId ? `?${new URLSearchParams({ turn: turnId })}` : "";
  return `#/session/${encodeURIComponent(sessionId)}${turn}`;
}

function textField(label, name, params, attributes = {}) {
  return el("label", {}, label, el("input", { name, value: params.get(name) || "", ...attributes }));
}

function choice(label, name, params, options) {
  const value = params.get(name) || "";
  return el("label", {}, label,
    el("select", { name },
      options.map(([v, text]) => el("option", { value: v, selected: v === value }, text))));
}

/** The fields the list and the search both filter by: the bot and the time range. */
function botAndRange(params) {
  return [
    textField("Bot", "bot_id", params),
    timeField("From", "since", params.get("since")),
    timeField("Until", "until", params.get("until")),
  ];
}

/** A form of ``fields`` that opens ``route`` with what they ask. Clear empties them and opens
 * ``route`` with the ``kept`` parameters alone: when the URL is that already, the page is not
 * drawn anew, and the values typed but not asked for stayed. */
function filterForm(route, fields, action, kept = new URLSearchParams()) {
  const form = el("form", { class: "filters" }, fields,
    el("button", { type: "submit" }, action),
    el("a", { href: hrefOf(route, kept), class: "reset", onclick: () => {
      for (const field of form.elements) if (field.name && !kept.has(field.name)) field.value = "";
    } }, "Clear"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = hrefOf(route, fromForm(form));
  });
  return form;
}

function listFilters(params) {
  const yesNo = [["", "any"], ["true", "yes"], ["false", "no"]];
  return filterForm("/", [
    ...botAndRange(params),
    choice("Interrupted", "has_interruption", params, yesNo),
    choice("Stop timeout", "has_timeout", params, yesNo),
    textField("Turns ≥", "min_turns", params, { type: "number", min: 0 }),
    textField("Turns ≤", "max_turns", params, { type: "number", min: 0 }),
    textField("Language", "language", params, { size: 5 }),
    choice("State", "state", params, STATES.map((s) => [s, s ? s.replaceAll("_", " ") : "any"])),
  ], "Filter");
}

function searchFilters(params) {
  return filterForm("/search", [
    textField("Words", "q", params, { type: "search", required: true }),
    ...botAndRange(params),
    choice("Role", "role", params, ROLES.map((r) => [r, r || "any"])),
  ], "Search", new URLSearchParams({ q: params.get("q") || "" }));
}

function stateBadge(state) {
  return el("span", { class: `badge state-${state}` }, state.replaceAll("_", " "));
}

function sessionRow(s) {
  return el("tr", { dataset: { sessionId: s.session_id } },
    el("td", {}, fmtTime(s.first_event_at)),
    el("td", {}, el("a", { href: sessionHref(s.session_id) }, s.session_id)),
    el("td", {}, s.bot_id),
    el("td", { class: "num" }, `${s.turns.user} / ${s.turns.assistant}`),
    el("td", { class: "num" }, s.interruptions),
    el("td", { class: "num" }, s.timeouts),
    el("td", { class: "num" }, fmtMs(s.median_response_latency_ms)),
    el("td", {}, s.languages.join(", ")),
    el("td", {}, stateBadge(s.completeness.state)),
  );
}

/** Links to the first page and to the next one (a page's cursor is in its fragment). */
function pager(route, params, nextCursor) {
  const first = new URLSearchParams(params);
  first.delete("cursor");
  const next = new URLSearchParams(params);
  next.set("cursor", nextCursor);
  return el("nav", { class: "pager" },
    params.get("cursor") ? el("a", { href: hrefOf(route, first) }, "← Newest") : null,
    nextCursor ? el("a", { href: hrefOf(route, next), class: "next" }, "Older →") : null,
  );
}

export async function renderSessions(page, given) {
  const { params, note } = checked(given, RULES);
  page.append(el("h1", {}, "Sessions"), note, listFilters(params));
  const answer = await getJson("/v1/sessions", { ...Object.fromEntries(params), limit: 50 });
  const body = el("tbody", {}, answer.items.map(sessionRow));
  page.append(
    answer.items.length
      ? scrolling(el("table", { class: "data sessions" },
          el("thead", {}, el("tr", {},
            ["Started", "Session", "Bot", "Turns user / assistant", "Interruptions",
             "Timeouts", "Median latency", "Languages", "State"].map((h) => el("th", {}, h)))),
          body))
      : el("p", { class: "empty" }, "No session matches these filters."),
    pager("/", params, answer.next_cursor),
    freshness(answer),
  );
}

function markedText(marked) {
  // The API escapes the text and adds only <mark> elements; rebuild it from those pieces
  // rather than trusting it as HTML.
  const holder = el("span", { class: "marked" });
  const parts = marked.split(/(<mark>.*?<\/mark>)/s);
  const decode = (text) => {
    const entities = document.createElement("textarea");  // decodes &amp; etc., keeps spaces
    entities.innerHTML = text;
    return entities.value;
  };
  for (const part of parts) {
    const inner = part.match(/^<mark>(.*)<\/mark>$/s);
    holder.append(inner ? el("mark", {}, decode(inner[1])) : decode(part));
  }
  return holder;
}

export async function renderSearch(page, given) {
  const { params, note } = checked(given, SEARCH_RULES);
  const q = params.get("q") || "";
  document.querySelector("#search input[name=q]").value = q;
  page.append(el("h1", {}, "Search: ", el("q", {}, q)), note, searchFilters(params));
  if (!q) {
    page.append(el("p", { class: "empty" }, "Type the words to search for."));
    return;
  }
  const answer = await getJson("/v1/search", Object.fromEntries(params));
  const hits = answer.items.map((hit) =>
    el("li", { class: `hit role-${hit.role}`, dataset: { sessionId: hit.session_id, turnId: hit.turn_id } },
      el("a", { href: sessionHref(hit.session_id, hit.turn_id) },
        el("span", { class: "who" }, hit.role),
        markedText(hit.marked)),
      el("p", { class: "meta" }, `${hit.session_id} · ${hit.bot_id} · ${fmtTime(hit.started_at)}`)));
  page.append(
    hits.length ? el("ol", { class: "hits" }, hits) : el("p", { class: "empty" }, "No turn matches."),
    pager("/search", params, answer.next_cursor),
    freshness(answer),
  );
}
