// The analytics page: GET /v1/analytics per bucket and bot, drawn with uPlot as response
// latency p50/p90/p99 and interruptions per 100 assistant turns over time (a pair of charts
// per bot), the same numbers in a table, and the metric definitions the API returns beside
// them. Its times are UTC's, whatever the browser's zone: the API's buckets begin at UTC's
// minutes, hours and days, and a day's bucket read in New York began at 7 pm.

import { getJson } from "./api.js";
import { UTC, el, fmtMs, fmtNumber, fmtTime, freshness, fromInput, isoUtc, scrolling, timeField, toInput } from "./format.js";
import { libraries } from "./libraries.js";
import { TEXT, TIME, checked, fromForm, oneOf } from "./params.js";

/** Each bucket's seconds, and how many of them a range holds unless asked: an hour by the
 * minute, a day by the hour, a month by the day (the API takes up to 10,000). */
const BUCKETS = { minute: { s: 60, shown: 60 }, hour: { s: 3600, shown: 24 }, day: { s: 86400, shown: 30 } };
const GROUPS = ["bot", "role", "language", "framework", ""];
const LATENCY = [["p50", "#2f6db5"], ["p90", "#c2582b"], ["p99", "#7a3d9a"]];
const RULES = { since: TIME, until: TIME, bucket: oneOf(Object.keys(BUCKETS)), bot_id: TEXT, group_by: oneOf(GROUPS) };

/** The range ``bucket`` reads well at, ending with the bucket that holds ``endMs`` or, when
 * that is yet to come, now's: from a day's range, which ends at the coming midnight, the
 * minute's is the last hour, not the hour before that midnight. */
function rangeFor(bucket, endMs) {
  const step = BUCKETS[bucket].s * 1000;
  const until = Math.ceil(Math.min(endMs, Date.now()) / step) * step;
  return { since: until - BUCKETS[bucket].shown * step, until };
}

function defaults(params) {
  const bucket = params.get("bucket") || "hour";
  const range = rangeFor(bucket, params.has("until") ? Date.parse(params.get("until")) : Date.now());
  return {
    since: params.get("since") || isoUtc(range.since),
    until: params.get("until") || isoUtc(range.until),
    bucket,
    bot_id: params.get("bot_id") || "",
    group_by: params.has("group_by") ? params.get("group_by") : "bot",
  };
}

function form(query) {
  const node = el("form", { class: "filters" },
    timeField("From", "since", query.since, UTC),
    timeField("Until", "until", query.until, UTC),
    el("label", {}, "Bucket", el("select", { name: "bucket", onchange: followBucket },
      Object.keys(BUCKETS).map((b) => el("option", { value: b, selected: b === query.bucket }, b)))),
    el("label", {}, "Bot", el("input", { name: "bot_id", value: query.bot_id })),
    el("label", {}, "Per", el("select", { name: "group_by" },
      GROUPS.map((g) => el("option", { value: g, selected: g === query.group_by }, g || "all together")))),
    el("button", { type: "submit" }, "Show"));
  /** A bucket chosen sets the range it reads well at. */
  function followBucket() {
    const until = node.elements.until.value ? Date.parse(fromInput(node.elements.until.value, UTC)) : Date.now();
    const range = rangeFor(node.elements.bucket.value, until);
    node.elements.since.value = toInput(range.since, UTC);
    node.elements.until.value = toInput(range.until, UTC);
  }
  node.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = fromForm(node, UTC);
    // Not given, the page groups per bot: "all together" is said by an empty value.
    chosen.set("group_by", node.elements.group_by.value);
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
  return scrolling(el("table", { class: "data figures" },
    el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((r) => {
      const latency = r.response_latency_ms;
      return el("tr", { dataset: { bucket: r.bucket_start, group: r.group ?? "" } },
        el("td", {}, fmtTime(r.bucket_start, UTC)),
        el("td", {}, groupName(r.group)),
        el("td", { class: "num", dataset: { metric: "sessions" } }, fmtNumber(r.sessions)),
        el("td", { class: "num" }, `${r.turns.user} / ${r.turns.assistant}`),
        ...["p50", "p90", "p99"].map((p) =>
          el("td", { class: "num", dataset: { metric: `latency-${p}` } }, fmtMs(latency ? latency[p] : null))),
        el("td", { class: "num", dataset: { metric: "interruptions" } }, fmtNumber(r.interruptions)),
        el("td", { class: "num", dataset: { metric: "interruptions-per-100" } }, fmtNumber(r.interruptions_per_100_assistant_turns)),
        el("td", { class: "num", dataset: { metric: "interruptions-per-minute" } }, fmtNumber(r.interruptions_per_call_minute)),
        el("td", { class: "num" }, fmtNumber(r.user_stop_timeouts)));
    }))));
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
    tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), UTC), // ticks at UTC's hours and days
    scales: { x: { time: true, range: () => range } },
    series: [
      { label: "Bucket", value: (u, seconds) => (seconds === null ? "--" : fmtTime(seconds * 1000, UTC)) },
      ...lines.map(([label, stroke]) => ({ label, stroke, width: 2, spanGaps: false, points: { size: 5 } })),
    ],
    axes: [{ values: ticks, space: 60 }, { label: unit, size: 60 }],
  }, data, holder);
  return holder;
}

/** The x axis's ticks as the table writes its buckets, in short: the day, under the time of
 * day when they are less than a day apart (on two lines, narrow enough for a tick at the
 * axis's end). */
function ticks(u, splits, axis, space, apart) {
  const day = (ms) => fmtTime(ms, UTC, { hour: undefined, minute: undefined });
  const time = (ms) => fmtTime(ms, UTC, { month: undefined, day: undefined });
  return splits.map((seconds) => (apart < BUCKETS.day.s
    ? `${time(seconds * 1000)}\n${day(seconds * 1000)}` : day(seconds * 1000)));
}

/** Each chart's width: two side by side up to 620 px each, or one a row where two would be
 * narrower than 320 px (a phone's screen); 200 px at least, on a page out of sight (one the
 * user left while it loaded) as well, which has no width. */
function chartWidth(page) {
  const inner = page.clientWidth - 72; // the page's and a group's padding and borders
  const half = (inner - 16) / 2;
  return Math.max(Math.min(half >= 320 ? half : inner, 620), 200);
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
  const range = [Date.parse(query.since) / 1000, Date.parse(query.until) / 1000];
  const frame = { width: chartWidth(page), range, step: BUCKETS[query.bucket].s };
  const drawn = libs
    ? [el("p", { class: "note" }, "Times in UTC, as the API cuts its buckets: a day is a day in UTC."),
        ...charts(libs.uPlot, answer.rows, frame)]
    : el("p", { class: "note" }, "Charts need uPlot: see the notice above.");
  page.append(
    ...(answer.rows.length
      ? [el("div", { class: "charts" }, drawn), table(answer.rows)]
      : [el("p", { class: "empty" }, "No turn in this range.")]),
    definitions(answer),
    freshness(answer, UTC));
}
