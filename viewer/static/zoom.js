// The zoom of a session's timeline and waveform: how wide a second of the call is drawn. At
// the least width (MIN_PX_PER_S, or the box's width when the call is shorter) a 2 s turn
// can be a bar of 8 px, which shows no word of its text; zoomed in, the bars read and the
// waveform's shape shows each word. The second in the middle of the lanes stays there as the
// zoom changes, so zooming in on a turn keeps it in sight; a box that showed the call's end
// (a live call's page following its newest turn) shows it still. The zoom chosen is kept in
// the page's address (?zoom=), so a reload or a link shows the call as wide.

import { el, showsEnd } from "./format.js";
import { MIN_PX_PER_S } from "./timeline.js";

/** The widths offered, in px a second of the call; the first is the least (MIN_PX_PER_S). */
export const ZOOMS = [MIN_PX_PER_S, 10, 25, 50, 100];

/** A zoom control for ``scroller``, the box the timeline and the waveform scroll sideways in
 * (its --call-px their least width, the lanes' names of ``labelPx`` beside them): ``control``
 * to put on the page, ``apply`` to size the box for a call of ``durationMs`` (again whenever
 * the call grows). A width no wider than the call fitted to the box would change nothing,
 * and is offered disabled. ``chosen``: the width the address asks for, if any. */
export function zoomOf(scroller, labelPx, chosen = null) {
  let pxPerS = ZOOMS.includes(Number(chosen)) ? Number(chosen) : ZOOMS[0];
  let durationMs = 0;
  const options = ZOOMS.map((px, i) => el("option", { value: String(px) }, i === 0 ? "Fit the box" : `${px} px a second`));
  const select = el("select", { name: "zoom" }, ...options);
  select.value = String(pxPerS);
  if (chosen !== null && pxPerS !== Number(chosen)) remember(pxPerS); // not a width offered

  /** Half the width of the lanes in sight, and the width of them all (px): the lanes'
   * names beside them do not scale with the zoom. */
  const halfInSight = () => (scroller.clientWidth - labelPx()) / 2;
  const lanesWidth = () => scroller.scrollWidth - labelPx();

  function offer() {
    const fitted = (2 * halfInSight()) / Math.max(durationMs / 1000, 1e-3);
    options.forEach((option, i) => { option.disabled = i > 0 && ZOOMS[i] <= fitted; });
  }

  function apply(ms) {
    durationMs = ms;
    scroller.style.setProperty("--call-px", `${Math.ceil((durationMs / 1000) * pxPerS)}px`);
    offer();
  }

  select.addEventListener("change", () => {
    const atEnd = showsEnd(scroller);
    const middle = (scroller.scrollLeft + halfInSight()) / lanesWidth(); // a fraction of the call
    pxPerS = Number(select.value);
    apply(durationMs);
    scroller.scrollLeft = atEnd ? scroller.scrollWidth : middle * lanesWidth() - halfInSight();
    remember(pxPerS);
  });
  new ResizeObserver(offer).observe(scroller);
  const control = el("label", { class: "zoom" }, "Zoom ", select);
  return { control, apply };
}

/** Puts the zoom in the page's address in place: a history entry per zoom would make Back
 * step through them, and a changed hash would draw the page anew. */
function remember(pxPerS) {
  const [path, query = ""] = location.hash.split("?");
  const params = new URLSearchParams(query);
  if (pxPerS === ZOOMS[0]) params.delete("zoom");
  else params.set("zoom", String(pxPerS));
  const kept = params.toString();
  history.replaceState(history.state, "", kept ? `${path}?${kept}` : path);
}
