// A page's parameters come from the URL's fragment, which anyone can edit, mistype or keep
// from an older viewer: each is checked before use, and a bad one is named on the page and
// left out, so the page shows its default instead of failing (an unparsable time used to
// leave it blank, saying only "Invalid time value").

import { el } from "./format.js";

const ISO_TIME = /^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d)(?::(\d\d)(?:\.\d+)?)?(?:Z|[+-](?:[01]\d|2[0-3]):?[0-5]\d)$/i;

/** ISO 8601 with its zone, as the API wants it (the page's own links write UTC). Date.parse
 * alone takes forms the API refuses, and rolls 30 February over into March: the fields must
 * come back as written. */
function isTime(value) {
  const fields = ISO_TIME.exec(value)?.slice(1).map((field) => Number(field ?? 0));
  if (!fields) return false;
  const [year, month, day, hour, minute, second] = fields;
  const at = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  const back = [at.getUTCFullYear(), at.getUTCMonth() + 1, at.getUTCDate(),
    at.getUTCHours(), at.getUTCMinutes(), at.getUTCSeconds()];
  return back.every((field, i) => field === fields[i]);
}

export const TIME = { test: isTime, wants: "a time with its zone, e.g. 2025-01-31T09:00:00Z" };
export const COUNT = { test: (value) => /^\d+$/.test(value), wants: "a whole number" };

export function oneOf(values) {
  return { test: (value) => values.includes(value), wants: `one of ${values.map((v) => v || "(empty)").join(", ")}` };
}

/** ``params`` without those its ``rules`` (name → {test, wants}) refuse, and a note naming
 * them (hidden when all pass). */
export function checked(params, rules) {
  const kept = new URLSearchParams(params);
  const bad = Object.keys(rules).filter((name) => kept.has(name) && !rules[name].test(kept.get(name)));
  const named = bad.map((name) => `${name}=${kept.get(name)} (wants ${rules[name].wants})`);
  for (const name of bad) kept.delete(name);
  const note = el("p", { class: "bad-params", role: "alert", hidden: !bad.length },
    `Left out of the URL: ${named.join("; ")}. Showing the defaults instead.`);
  return { params: kept, note };
}
