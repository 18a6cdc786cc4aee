// The call's timeline: a lane per speaker with one bar per turn, interruptions and stop
// timeouts marked at the turn's end, and between the lanes each response-latency gap (the
// user's stop to the assistant's start) labelled with its length. Plain DOM, positioned in
// percent of the call, so it lines up with the waveform drawn under it at the same width.
// On a call of minutes gaps sit pixels apart: a label is drawn over its neighbours' gaps,
// kept within the lane, and one that would overlap the one before it is hidden, its value
// kept in its gap's title. A long call's lanes keep at least MIN_PX_PER_S a second (its
// turns stay wide enough to tell apart and to click): they and the waveform under them are
// wider than the page then, and scroll sideways in a box of their own (session.js), whose
// labels are sorted out for what the box shows. The keyboard reaches the turns by the
// transcript, one tab stop each in the order they were said: the bars, the same turns
// again, take no tab stop and are hidden from screen readers.

import { el, fmtClock, fmtMs, onPress } from "./format.js";

const LANES = [["user", "User"], ["gaps", "Latency"], ["assistant", "Assistant"]];
const LABEL_SPACE_PX = 6;
const MIN_BAR_PX = 6;
/** The least width of a second of the call, in px: a turn of 3 s is 12 px. */
export const MIN_PX_PER_S = 4;
/** The timelines whose labels are sorted out again when their width changes. */
const watched = new WeakSet();

/** Where a bar lies, in percent of the lane: from its start, where the waveform's region
 * of the turn starts, at least ``MIN_BAR_PX`` wide to be seen and clicked, but never past
 * the lane's end (a short last turn's padding reached past it). */
function span(startMs, stopMs, totalMs) {
  const left = (100 * startMs) / totalMs;
  return { left: `${left}%`, width: `min(max(${(100 * (stopMs - startMs)) / totalMs}%, ${MIN_BAR_PX}px), ${100 - left}%)` };
}

function describe(turn, startMs, stopMs) {
  const when = `${fmtClock(startMs / 1000)}–${turn.stopped_at ? fmtClock(stopMs / 1000) : "…"}`;
  const marks = [
    turn.interrupted ? "interrupted by the user" : "",
    turn.timed_out ? "closed by the stop timeout" : "",
    turn.response_latency_ms !== null ? `response latency ${fmtMs(turn.response_latency_ms)}` : "",
  ].filter(Boolean);
  return [`${turn.role} ${when}`, ...marks, turn.text].join("\n");
}

/** The timeline of ``call`` (turns placed by session.js's clock) into ``container``;
 * ``onPick(turn)`` when a bar is clicked. */
export function renderTimeline(container, call, onPick) {
  const tracks = Object.fromEntries(LANES.map(([key]) => [key, el("div", { class: "track" })]));
  for (const turn of call.turns) {
    const startMs = call.at(turn.started_at);
    const stopMs = turn.stopped_at ? call.at(turn.stopped_at) : call.durationMs;
    const classes = ["turn", `role-${turn.role}`];
    if (turn.interrupted) classes.push("interrupted");
    if (turn.timed_out) classes.push("timed-out");
    if (!turn.stopped_at) classes.push("open");
    tracks[turn.role].append(
      el("button", {
        type: "button", class: classes.join(" "), title: describe(turn, startMs, stopMs),
        style: span(startMs, stopMs, call.durationMs), dataset: { turnId: turn.turn_id }, tabindex: -1,
        onclick: () => onPick(turn), onkeydown: onPress(() => onPick(turn)),
      }, el("span", { class: "text" }, turn.text || "…")),
    );
    const edge = { left: `${(100 * stopMs) / call.durationMs}%` };
    if (turn.interrupted) {
      tracks[turn.role].append(el("span", { class: "mark interrupted", style: edge, title: "interrupted by the user" }, "⚡"));
    }
    if (turn.timed_out) {
      tracks[turn.role].append(el("span", { class: "mark timed-out", style: edge, title: "closed by the stop timeout" }, "◷"));
    }
    if (turn.response_latency_ms !== null && turn.response_latency_ms !== undefined) {
      const gapStart = startMs - turn.response_latency_ms;
      tracks.gaps.append(el("span", {
        class: "gap", style: span(gapStart, startMs, call.durationMs),
        title: `response latency ${fmtMs(turn.response_latency_ms)}, of the turn at ${fmtClock(startMs / 1000)}`,
        dataset: { turnId: turn.turn_id },
      }, el("span", { class: "label" }, fmtMs(turn.response_latency_ms))));
    }
  }
  container.setAttribute("aria-hidden", "true");
  container.replaceChildren(...LANES.map(([key, label]) =>
    el("div", { class: `lane lane-${key}`, dataset: { role: key } },
      el("span", { class: "lane-label" }, label), tracks[key])));
  declutter(container);
  if (!watched.has(container)) {
    watched.add(container);
    new ResizeObserver(() => declutter(container)).observe(container);
    let pending = false;
    boxOf(container).addEventListener("scroll", () => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        declutter(container);
      });
    });
  }
}

/** The box the timeline scrolls sideways in (session.js's), else the timeline itself. */
function boxOf(container) {
  return container.closest(".call-scroll") ?? container;
}

/** What of ``container``'s lanes its box shows, in the window's px: from the lanes' names
 * (kept in view over the lanes) to the box's right edge. */
function shownPart(container) {
  const box = boxOf(container).getBoundingClientRect();
  const name = container.querySelector(".lane-label").getBoundingClientRect();
  return { left: Math.max(name.right, box.left), right: box.right };
}

/** Scrolls the timeline's box sideways, when ``node`` (a turn's bar) is out of its sight, to
 * show it a third of the way in. */
export function reveal(container, node) {
  const shown = shownPart(container);
  const { left, right } = node.getBoundingClientRect();
  if (left >= shown.left && right <= shown.right) return;
  boxOf(container).scrollBy({ left: left - shown.left - (shown.right - shown.left) / 3, behavior: "smooth" });
}

/** Places each latency label over its gap but within the part of the lane in sight, and
 * hides each one that would overlap the last one shown, from the left, that the lane cannot
 * hold or whose gap is out of sight: on a call of minutes a label is wider than its gap, and
 * the first and last reached past the lane. */
function declutter(container) {
  const track = container.querySelector(".lane-gaps .track");
  if (!track) return;
  const lane = track.getBoundingClientRect();
  const shown = shownPart(container);
  const from = Math.max(lane.left, shown.left);
  const to = Math.min(lane.right, shown.right);
  // Every size is read before any label moves: a read after each move would lay the page
  // out again for each of a long call's hundreds of labels.
  const placed = [...track.querySelectorAll(".gap .label")].map((label) => {
    const gap = label.parentElement.getBoundingClientRect();
    const { width } = label.getBoundingClientRect();
    const centred = (gap.left + gap.right - width) / 2;
    const left = Math.min(Math.max(centred, from), to - width);
    const fits = width <= to - from && gap.right >= from && gap.left <= to;
    return { label, left, right: left + width, shift: left - centred, fits };
  });
  let clearFrom = -Infinity;
  for (const { label, left, right, shift, fits } of placed) {
    const shown = fits && left >= clearFrom;
    label.classList.toggle("crowded", !shown);
    label.style.marginLeft = `${shift}px`;
    if (shown) clearFrom = right + LABEL_SPACE_PX;
  }
}
