// The analytics page: GET /v1/analytics per bucket and bot, drawn with uPlot as response
// latency p50/p90/p99 and interruptions per 100 assistant turns over time (a pair of charts
// per bot), the same numbers in a table, and the metric definitions the API returns beside
// them.

import { getJson } from "./api.js";
import { ZONE, el, fmtMs, fmtNumber, fmtTime, freshness, fromLocalInput, timeField, toLocalInput } from "./format.js";
import { libraries } from "./libraries.js";
import { TIME, checked, oneOf } from "./params.js";

/** Each bucket's seconds, and how many of them a range holds unless asked: an hour by the
 * minute, a day by the hour, a month by the day (the API takes up to 10,000). */
const BUCKETS = { minute: { s: 60, shown: 60 }, hour: { s: 3600, shown: 24 }, day: { s: 86400, shown: 30 } };
const GROUPS = ["bot", "role", "language", "framework", ""];
const LATENCY = [["p50", "#2f6db5"], ["p90", "#c2582b"], ["p99", "#7a3d9a"]];
const RULES = { since: TIME, until: TIME, bucket: oneOf(Object.keys(BUCKETS)), group_by: oneOf(GROUPS) };

/** The range shown by default for ``bucket``, ending at ``until`` (ms). */
function rangeStart(bucket, until) {
  return new Date(until - BUCKETS[bucket].s * BUCKETS[bucket].shown * 1000);
}

function defaults(params) {
  const bucket = params.get("bucket") || "hour";
  const step = BUCKETS[bucket].s * 1000;
  const until = params.get("until") || new Date(Math.ceil(Date.now() / step) * step).toISOString();
  const since = params.get("since") || rangeStart(bucket, Date.parse(until)).toISOString();
  const groupBy = params.has("group_by") ? params.get("group_by") : "bot";
  return { since, until, bucket, bot_id: params.get("bot_id") || "", group_by: groupBy };
}

function form(query) {
  const node = el("form", { class: "filters" },
    timeField("From", "since", query.since),
    timeField("Until", "until", query.until),
    el("label", {}, "Bucket", el("select", { name: "bucket", onchange: followBucket },
      Object.keys(BUCKETS).map((b) => el("option", { value: b, selected: b === query.bucket }, b)))),
    el("label", {}, "Bot", el("input", { name: "bot_id", value: query.bot_id })),
    el("label", {}, "Per", el("select", { name: "group_by" },
      GROUPS.map((g) => el("option", { value: g, selected: g === query.group_by }, g || "all together")))),
    el("button", { type: "submit" }, "Show"));
  /** A bucket chosen sets the range it reads well at, ending where it did. */
  function followBucket() {
    const until = node.elements.until.value ? new Date(node.elements.until.value).getTime() : Date.now();
    node.elements.since.value = toLocalInput(rangeStart(node.elements.bucket.value, until));
  }
  node.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = new URLSearchParams();
    for (const name of ["since", "until"]) {
      if (node.elements[name].value) chosen.set(name, fromLocalInput(node.elements[name].value));
    }
    for (const name of ["bucket", "bot_id", "group_by"]) chosen.set(name, node.elements[name].value);
    location.hash = `#/analytics?${chosen}`;
  });
  return node;
}

function definitions(answer) {
  return el("section", { class: "definitions" }, el("h2", {}, "Definitions"),
    el("dl", {}, answer.definitions.flatMap((d) => [
      el("dt", {}, el("code", {}, d.name), ` v${d.version}`, d.unit ? ` (${d.unit})` : ""),
      el("dd", {}, d.definition),
    ])));
}

function table(rows) {
  const head = ["Bucket", "Group", "Sessions", "Turns user / assistant", "Latency p50", "p90", "p99",
    "Interruptions", "per 100 assistant turns", "per call minute", "Stop timeouts"];
  return el("table", { class: "data figures" },
    el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((r) => {
      const latency = r.response_latency_ms;
      return el("tr", { dataset: { bucket: r.bucket_start, group: r.group ?? "" } },
        el("td", {}, fmtTime(r.bucket_start)),
        el("td", {}, groupName(r.group)),
        el("td", { class: "num", dataset: { metric: "sessions" } }, fmtNumber(r.sessions)),
        el("td", { class: "num" }, `${r.turns.user} / ${r.turns.assistant}`),
        ...["p50", "p90", "p99"].map((p) =>
          el("td", { class: "num", dataset: { metric: `latency-${p}` } }, fmtMs(latency ? latency[p] : null))),
        el("td", { class: "num", dataset: { metric: "interruptions" } }, fmtNumber(r.interruptions)),
        el("td", { class: "num", dataset: { metric: "interruptions-per-100" } }, fmtNumber(r.interruptions_per_100_assistant_turns)),
        el("td", { class: "num", dataset: { metric: "interruptions-per-minute" } }, fmtNumber(r.interruptions_per_call_minute)),
        el("td", { class: "num" }, fmtNumber(r.user_stop_timeouts)));
    })));
}

/** A row's group as a heading: "all" when not split, "(none)" for the turns or calls without
 * a language or framework, which the API groups under "". */
function groupName(group) {
  return group === null || group === undefined ? "all" : group || "(none)";
}

/** uPlot data for one group: x (seconds) and one series per figure, null where the bucket
 * had no value and in a bucket the API left out between two (uPlot leaves a gap there rather
 * than joining the two). */
function series(rows, pick, step) {
  const x = [];
  const values = pick.map(() => []);
  rows.forEach((r, i) => {
    const at = Date.parse(r.bucket_start) / 1000;
    if (i && at - x[x.length - 1] > step) {
      x.push(x[x.length - 1] + step);
      values.forEach((v) => v.push(null));
    }
    x.push(at);
    pick.forEach((f, n) => values[n].push(f(r) ?? null));
  });
  return [x, ...values];
}

/** A chart of ``data``, or a note when it holds no value (a role's charts of what only the
 * other role has: latency and interruptions are the assistant's). */
function chart(uPlot, title, data, lines, unit, { width, range }) {
  if (data.slice(1).flat().every((value) => value === null)) {
    return el("p", { class: "chart no-data", style: { width: `${width}px` } }, `${title}: no data`);
  }
  const holder = el("div", { class: "chart" });
  new uPlot({
    title, width, height: 200,
    scales: { x: { time: true, range: () => range } },
    series: [{}, ...lines.map(([label, stroke]) => ({ label, stroke, width: 2, spanGaps: false, points: { size: 5 } }))],
    axes: [{}, { label: unit, size: 60 }],
  }, data, holder);
  return holder;
}

/** A pair of charts per group, every x axis spanning the asked range so that groups line up. */
function charts(uPlot, rows, frame) {
  const groups = new Map();
  for (const row of rows) {
    const key = groupName(row.group);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(row);
  }
  return [...groups].map(([group, own]) => {
    own.sort((a, b) => Date.parse(a.bucket_start) - Date.parse(b.bucket_start));
    const latency = series(own, LATENCY.map(([p]) => (r) => r.response_latency_ms?.[p]), frame.step);
    const rate = series(own, [(r) => r.interruptions_per_100_assistant_turns], frame.step);
    return el("section", { class: "group", dataset: { group } }, el("h3", {}, group),
      el("div", { class: "pair" },
        chart(uPlot, "Response latency", latency, LATENCY, "ms", frame),
        chart(uPlot, "Interruptions per 100 assistant turns", rate, [["rate", "#b3261e"]], "per 100", frame)));
  });
}

export async function renderAnalytics(page, given) {
  const { params, note } = checked(given, RULES);
  const query = defaults(params);
  page.append(el("h1", {}, "Analytics"), note, form(query));
  const answer = await getJson("/v1/analytics", query);
  const libs = await libraries();
  const width = Math.max(Math.min((page.clientWidth - 48) / 2, 620), 320);
  const range = [Date.parse(query.since) / 1000, Date.parse(query.until) / 1000];
  const drawn = libs
    ? [el("p", { class: "note" }, `Time axes in ${ZONE}.`), ...charts(libs.uPlot, answer.rows, { width, range, step: BUCKETS[query.bucket].s })]
    : el("p", { class: "note" }, "Charts need uPlot: see the notice above.");
  page.append(
    ...(answer.rows.length
      ? [el("div", { class: "charts" }, drawn), table(answer.rows)]
      : [el("p", { class: "empty" }, "No turn in this range.")]),
    definitions(answer),
    freshness(answer));
}
