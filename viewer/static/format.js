// How numbers, times and ids are shown, in one place so every page shows them alike.

const number = new Intl.NumberFormat("en", { maximumFractionDigits: 1 });

export function fmtNumber(value) {
  return value === null || value === undefined ? "–" : number.format(value);
}

export function fmtMs(value) {
  return value === null || value === undefined ? "–" : `${number.format(value)} ms`;
}

export function fmtSeconds(ms) {
  return ms === null || ms === undefined ? "–" : `${(ms / 1000).toFixed(1)} s`;
}

/** A span of time: tenths of a second below a minute (an overlap of 192 ms is 0.2 s, not
 * 0 s), whole seconds beyond. */
export function fmtDuration(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms < 59950) return `${number.format(ms / 1000)} s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}

/** How near its end (px) a box still counts as scrolled to it: a redraw or a zoom can leave a
 * fraction of a pixel. */
export const AT_END_PX = 4;

/** Whether ``box``, which scrolls sideways, shows its end. */
export function showsEnd(box) {
  return box.scrollWidth - box.scrollLeft - box.clientWidth < AT_END_PX;
}

/** The zones the pages show times in: the browser's, said beside each time and input, since
 * the API's times are UTC; and UTC itself where the API cuts time into buckets (the analytics
 * page), whose days begin at UTC's midnight. */
export const ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;
export const UTC = "UTC";

/** A time in ``zone``, to the second and with the zone's name: every page writes its times in
 * this one form. ``fields`` (Intl.DateTimeFormat's options, over its day, month, hour and
 * minute) ask for a part of it instead: a chart's ticks. */
export function fmtTime(at, zone = ZONE, fields = { year: "numeric", second: "2-digit", timeZoneName: "short" }) {
  if (at === null || at === undefined || at === "") return "–";
  return new Date(at).toLocaleString("en-GB", {
    month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", ...fields, timeZone: zone,
  });
}

/** ISO 8601 in UTC, as the API wants a time, without the milliseconds when they are none. */
export function isoUtc(at) {
  return new Date(at).toISOString().replace(".000Z", "Z");
}

/** A datetime-local input, labelled with the zone its value is in, showing ``at`` (an ISO
 * time or a Date) to the second. */
export function timeField(label, name, at, zone = ZONE) {
  return el("label", {}, `${label} (${zone})`,
    el("input", { name, type: "datetime-local", step: 1, value: toInput(at, zone) }));
}

/** ``at`` as a datetime-local input's value: its wall clock in ``zone``, the browser's or UTC
 * (the only two the pages show). */
export function toInput(at, zone = ZONE) {
  if (!at) return "";
  const when = new Date(at);
  const offsetMin = zone === UTC ? 0 : when.getTimezoneOffset();
  return new Date(when.getTime() - offsetMin * 60000).toISOString().slice(0, 19);
}

/** A datetime-local input's value, a wall clock in ``zone`` (the browser's or UTC), as the
 * API wants a time. */
export function fromInput(value, zone = ZONE) {
  return value ? isoUtc(zone === UTC ? `${value}Z` : value) : "";
}

/** Seconds into the call as m:ss.s, or h:mm:ss.s from an hour on. */
export function fmtClock(seconds) {
  const tenths = Math.round(seconds * 10); // rounded first: 59.96 s is 1:00.0, not 0:60.0
  const h = Math.floor(tenths / 36000);
  const m = Math.floor((tenths - h * 36000) / 600);
  const s = ((tenths - h * 36000 - m * 600) / 10).toFixed(1).padStart(4, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/** Seconds into the call as m:ss, for an axis or a span of minutes. */
export function fmtMinutes(seconds) {
  const whole = Math.round(seconds);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

/** An element with attributes and children: the pages build their DOM with this, never by
 * pasting strings into innerHTML (texts are the callers' words). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "style" && typeof value === "object") Object.assign(node.style, value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** A table in a box of its own that scrolls sideways when the table is wider than the page
 * (on a phone's): the page itself keeps to the screen's width. */
export function scrolling(table) {
  return el("div", { class: "table-scroll" }, table);
}

/** A keydown handler by which Enter or Space does ``act`` once however long it is held
 * (a held key repeats, and each repeat would ask for a clip again), and Space does not
 * scroll the page. It makes an element given role=button and a tabindex act as one, and
 * stands in for a <button>'s own keys, whose held Enter repeats its click. */
export function onPress(act) {
  return (event) => {
    if (event.key !== "Enter" && event.key !== " ") return;
    event.preventDefault();
    if (!event.repeat) act();
  };
}

/** The freshness line every API answer allows: when it was read and how far behind. */
export function freshness(answer, zone = ZONE) {
  const lag = answer.lag_ms === null || answer.lag_ms === undefined
    ? "lag unknown" : `lag ${fmtMs(answer.lag_ms)}`;
  return el("p", { class: "freshness" }, `As of ${fmtTime(answer.as_of, zone)} · ${lag}`);
}
