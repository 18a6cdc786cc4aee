// The sessions list (the filters of GET /v1/sessions, newest first, paged by the API's
// cursor) and the search results (GET /v1/search). Filters and cursors live in the URL's
// fragment, so a page of results can be bookmarked and the back button goes back a page.

import { getJson } from "./api.js";
import { el, fmtMs, fmtTime, freshness, fromLocalInput, timeField } from "./format.js";
import { COUNT, TIME, checked, oneOf } from "./params.js";

const STATES = ["", "open", "sealed", "sealed_with_holes", "abandoned"];
const FILTERS = [
  "bot_id", "since", "until", "has_interruption", "has_timeout",
  "min_turns", "max_turns", "language", "state",
];
const YES_NO = oneOf(["true", "false"]);
const RULES = {
  since: TIME, until: TIME, has_interruption: YES_NO, has_timeout: YES_NO,
  min_turns: COUNT, max_turns: COUNT, state: oneOf(STATES),
};
/** A bot's id and a cursor are the API's to judge: any text may be one. */
const SEARCH_RULES = { role: oneOf(["", "user", "assistant"]) };

export function sessionHref(sessionId, turnId) {
  const turn = turnId ? `?${new URLSearchParams({ turn: turnId })}` : "";
  return `#/session/${encodeURIComponent(sessionId)}${turn}`;
}

function choice(name, value, options, label) {
  return el("label", {}, label,
    el("select", { name },
      options.map(([v, text]) => el("option", { value: v, selected: v === value }, text))));
}

function filterForm(params) {
  const value = (name) => params.get(name) || "";
  const yesNo = [["", "any"], ["true", "yes"], ["false", "no"]];
  const form = el("form", { class: "filters" },
    el("label", {}, "Bot", el("input", { name: "bot_id", value: value("bot_id") })),
    timeField("From", "since", value("since")),
    timeField("Until", "until", value("until")),
    choice("has_interruption", value("has_interruption"), yesNo, "Interrupted"),
    choice("has_timeout", value("has_timeout"), yesNo, "Stop timeout"),
    el("label", {}, "Turns ≥", el("input", { name: "min_turns", type: "number", min: 0, value: value("min_turns") })),
    el("label", {}, "Turns ≤", el("input", { name: "max_turns", type: "number", min: 0, value: value("max_turns") })),
    el("label", {}, "Language", el("input", { name: "language", size: 5, value: value("language") })),
    choice("state", value("state"), STATES.map((s) => [s, s ? s.replaceAll("_", " ") : "any"]), "State"),
    el("button", { type: "submit" }, "Filter"),
    el("a", { href: "#/", class: "reset" }, "Clear"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = new URLSearchParams();
    for (const name of FILTERS) {
      let given = form.elements[name].value;
      if (name === "since" || name === "until") given = fromLocalInput(given);
      if (given) chosen.set(name, given);
    }
    location.hash = `#/?${chosen}`;
  });
  return form;
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
  if (nextCursor) next.set("cursor", nextCursor);
  return el("nav", { class: "pager" },
    params.get("cursor") ? el("a", { href: `#${route}?${first}` }, "← Newest") : null,
    nextCursor ? el("a", { href: `#${route}?${next}`, class: "next" }, "Older →") : null,
  );
}

export async function renderSessions(page, given) {
  const { params, note } = checked(given, RULES);
  const query = Object.fromEntries(FILTERS.map((n) => [n, params.get(n)]));
  page.append(el("h1", {}, "Sessions"), note, filterForm(params));
  const answer = await getJson("/v1/sessions", { ...query, cursor: params.get("cursor"), limit: 50 });
  const body = el("tbody", {}, answer.items.map(sessionRow));
  page.append(
    answer.items.length
      ? el("table", { class: "data sessions" },
          el("thead", {}, el("tr", {},
            ["Started", "Session", "Bot", "Turns user / assistant", "Interruptions",
             "Timeouts", "Median latency", "Languages", "State"].map((h) => el("th", {}, h)))),
          body)
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
  page.append(el("h1", {}, "Search: ", el("q", {}, q)), note);
  const answer = await getJson("/v1/search", {
    q, bot_id: params.get("bot_id"), role: params.get("role"), cursor: params.get("cursor"),
  });
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
