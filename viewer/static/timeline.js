// The call's timeline: a lane per speaker with one bar per turn, interruptions and stop
// timeouts marked at the turn's end, and between the lanes each response-latency gap (the
// user's stop to the assistant's start) labelled with its length. Plain DOM, positioned in
// percent of the call, so it lines up with the waveform drawn under it at the same width.
// On a call of minutes gaps sit pixels apart: a label is drawn over its neighbours' gaps,
// kept within the lane, and one that would overlap the one before it is hidden, its value
// kept in its gap's title.

import { el, fmtClock, fmtMs, onPress } from "./format.js";

const LANES = [["user", "User"], ["gaps", "Latency"], ["assistant", "Assistant"]];
const LABEL_SPACE_PX = 6;
const MIN_BAR_PX = 6;
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
        style: span(startMs, stopMs, call.durationMs), dataset: { turnId: turn.turn_id },
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
  container.replaceChildren(...LANES.map(([key, label]) =>
    el("div", { class: `lane lane-${key}`, dataset: { role: key } },
      el("span", { class: "lane-label" }, label), tracks[key])));
  declutter(container);
  if (!watched.has(container)) {
    watched.add(container);
    new ResizeObserver(() => declutter(container)).observe(container);
  }
}

/** Places each latency label over its gap but within the lane, and hides each one that would
 * overlap the last one shown, from the left, or that the lane cannot hold: on a call of
 * minutes a label is wider than its gap, and the first and last reached past the lane. */
function declutter(container) {
  const track = container.querySelector(".lane-gaps .track");
  if (!track) return;
  const lane = track.getBoundingClientRect();
  // Every size is read before any label moves: a read after each move would lay the page
  // out again for each of a long call's hundreds of labels.
  const placed = [...track.querySelectorAll(".gap .label")].map((label) => {
    const gap = label.parentElement.getBoundingClientRect();
    const { width } = label.getBoundingClientRect();
    const centred = (gap.left + gap.right - width) / 2;
    const left = Math.min(Math.max(centred, lane.left), lane.right - width);
    return { label, left, right: left + width, shift: left - centred, fits: width <= lane.width };
  });
  let clearFrom = -Infinity;
  for (const { label, left, right, shift, fits } of placed) {
    const shown = fits && left >= clearFrom;
    label.classList.toggle("crowded", !shown);
    label.style.marginLeft = `${shift}px`;
    if (shown) clearFrom = right + LABEL_SPACE_PX;
  }
}
