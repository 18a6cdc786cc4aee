// The zoom of a session's timeline and waveform: how wide a second of the call is drawn. At
// the least width (MIN_PX_PER_S, "Fit": the call fills the box, or scrolls at 4 px a
// second) a 2 s turn is a bar of 8 px, which shows no word of its text; zoomed in, the
// bars read and the waveform's shape shows each word. The second in the middle of the box
// stays there as the zoom changes, so zooming in on a turn keeps it in sight.

import { el } from "./format.js";
import { MIN_PX_PER_S } from "./timeline.js";

/** The widths offered, in px a second of the call; the first is the least (MIN_PX_PER_S). */
export const ZOOMS = [MIN_PX_PER_S, 10, 25, 50, 100];

/** A zoom control for ``scroller``, the box the timeline and the waveform scroll sideways in
 * (its --call-px their least width): ``control`` to put on the page, ``apply`` to size the
 * box for a call of ``durationMs`` (again whenever the call grows). */
export function zoomOf(scroller) {
  let pxPerS = ZOOMS[0];
  let durationMs = 0;
  const select = el("select", { name: "zoom", "aria-label": "Zoom of the timeline and waveform" },
    ...ZOOMS.map((px, i) => el("option", { value: String(px) }, i === 0 ? "Fit" : `${px} px/s`)));

  function apply(ms) {
    durationMs = ms;
    scroller.style.setProperty("--call-px", `${Math.ceil((durationMs / 1000) * pxPerS)}px`);
  }

  select.addEventListener("change", () => {
    const middle = (scroller.scrollLeft + scroller.clientWidth / 2) / scroller.scrollWidth;
    pxPerS = Number(select.value);
    apply(durationMs);
    scroller.scrollLeft = middle * scroller.scrollWidth - scroller.clientWidth / 2;
  });
  const control = el("label", { class: "zoom" }, "Zoom ", select);
  return { control, apply };
}
