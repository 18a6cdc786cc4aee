// A page's parameters come from the URL's fragment, which anyone can edit, mistype or keep
// from an older viewer: each is checked as the API would check it before use, and one the
// API would refuse is named on the page and ignored, so the page shows its default instead
// of failing (an unparsable time used to leave it blank, saying only "Invalid time value").

import { ZONE, el, fromInput, isoUtc } from "./format.js";

const ISO_TIME = /^(\d{4})-(\d\d)-(\d\d)(?:[T _](\d\d):(\d\d)(?::(\d\d)(\.\d+)?)?(?:Z|([+-])([01]\d|2[0-3]):?([0-5]\d))?)?$/i;

/** ``value`` as ISO 8601 in UTC, when the API takes it as a time: a date, or a date and a
 * time, in UTC when it names no zone (a date alone is its midnight). Date.parse alone takes
 * forms the API refuses and reads a time without a zone in the browser's. */
function readTime(value) {
  const found = ISO_TIME.exec(value);
  if (!found) return undefined;
  const [fraction, sign, offsetHours, offsetMinutes] = found.slice(7);
  const wall = wallClock(found.slice(1, 7).map((field) => Number(field ?? 0)));
  if (wall === undefined) return undefined;
  const offsetMs = (sign === "-" ? -1 : 1) * (Number(offsetHours ?? 0) * 60 + Number(offsetMinutes ?? 0)) * 60000;
  const ms = wall + Math.floor(Number(`0${fraction ?? ""}`) * 1000) - offsetMs;
  const year = new Date(ms).getUTCFullYear();
  return year >= 1 && year <= 9999 ? isoUtc(ms) : undefined; // the years UTC holds, as the API checks
}

/** The date and time ``fields`` (year to second) as milliseconds since the epoch, read as
 * UTC, or undefined when they do not come back as written: 30 February rolls over into
 * March, 24:00 into the next day. */
function wallClock(fields) {
  const [year, month, day, hour, minute, second] = fields;
  const at = new Date(0);
  at.setUTCFullYear(year, month - 1, day); // not Date.UTC, which takes 0099 for 1999
  at.setUTCHours(hour, minute, second);
  const back = [at.getUTCFullYear(), at.getUTCMonth() + 1, at.getUTCDate(),
    at.getUTCHours(), at.getUTCMinutes(), at.getUTCSeconds()];
  return back.every((field, i) => field === fields[i]) ? at.getTime() : undefined;
}

/** A Unix time as people paste it: seconds since 1970, maybe with a fraction, from 9 digits
 * (1973) on; 12 digits or more are milliseconds (as seconds they would be past the year
 * 5138, as milliseconds they are 1973 on). Fewer digits are more likely a year or a
 * compact date than a time. */
const UNIX_TIME = /^(\d{9,})(\.\d+)?$/;

/** What unit ``value`` is in, as a Unix time, else undefined. */
function unixUnit(value) {
  const found = UNIX_TIME.exec(value);
  if (!found) return undefined;
  return found[1].length >= 12 ? "Unix milliseconds" : "Unix seconds";
}

/** A Unix time ``value`` as ISO 8601 in UTC, or undefined when it is none (or past 9999). */
function readUnix(value) {
  const unit = unixUnit(value);
  if (!unit) return undefined;
  const ms = Math.floor(unit === "Unix seconds" ? Number(value) * 1000 : Number(value));
  return new Date(ms).getUTCFullYear() <= 9999 ? isoUtc(ms) : undefined;
}

/** A rule: ``read(value)`` gives the value to use (a time as ISO 8601 in UTC), or undefined
 * for one the API refuses; ``wants`` says what the API takes; ``how(value)``, when given,
 * says how a value the API would not take as given was read (a Unix time). */
export const TIME = {
  read: (value) => readTime(value) ?? readUnix(value),
  how: unixUnit,
  wants: "a date or a time, ISO 8601, in UTC unless it names a zone, e.g. 2025-01-31 or 2025-01-31T09:00:00+01:00, " +
    "or a Unix time in seconds (e.g. 1764547200) or milliseconds (e.g. 1764547200000)",
};
export const COUNT = { read: (value) => (/^\d+$/.test(value) ? value : undefined), wants: "a whole number" };
/** What the API alone can judge (a bot's id, a cursor, words to search for). */
export const TEXT = { read: (value) => value, wants: "text" };

export function oneOf(values) {
  return {
    read: (value) => (values.includes(value) ? value : undefined),
    wants: `one of ${values.map((v) => v || "(empty)").join(", ")}`,
  };
}

/** Why the API would refuse ``name`` as given in ``params``, else nothing. */
function fault(params, name, rule) {
  const given = params.getAll(name);
  if (!rule) return `${name}=${given[0]} (not a parameter of this page)`;
  if (given.length > 1) return `${name}=${given.join(", ")} (given ${given.length} times: the API takes one)`;
  return rule.read(given[0]) === undefined ? `${name}=${given[0]} (wants ${rule.wants})` : null;
}

/** The ``params`` its ``rules`` (name → rule, one for each parameter the page takes) accept,
 * as the page uses them, and a note naming the others (hidden when there are none): they stay
 * in the URL, and the page does as if they were not there. The note also says how a value
 * was read that the API would not take as given (a Unix time, sent as ISO 8601). */
export function checked(params, rules) {
  const kept = new URLSearchParams();
  const faults = [];
  const converted = [];
  for (const name of new Set(params.keys())) {
    const wrong = fault(params, name, rules[name]);
    if (wrong) {
      faults.push(wrong);
      continue;
    }
    const given = params.get(name);
    kept.set(name, rules[name].read(given));
    const how = rules[name].how?.(given);
    if (how) converted.push(`${name}=${given} (${how}) as ${kept.get(name)}`);
  }
  const note = el("div", { class: "params-notes" },
    el("p", { class: "read-params", role: "status", hidden: !converted.length },
      `Read from the URL: ${converted.join("; ")}.`),
    el("p", { class: "bad-params", role: "alert", hidden: !faults.length },
      `Ignored, though still in the URL: ${faults.join("; ")}. The page shows what it would without them.`));
  return { params: kept, note };
}

/** What a filter form asks, as parameters for the URL: its texts trimmed (a bot's id typed
 * with a space after it found nothing), its datetime-local inputs, wall clocks in ``zone``,
 * as the API wants a time, and its empty fields left out. */
export function fromForm(form, zone = ZONE) {
  const chosen = new URLSearchParams();
  for (const field of form.elements) {
    const value = field.type === "datetime-local" ? fromInput(field.value, zone) : field.value.trim();
    if (field.name && value) chosen.set(field.name, value);
  }
  return chosen;
}
