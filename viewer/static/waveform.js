// The recording under the timeline: GET /v1/sessions/{id}/audio?track=both (user left,
// assistant right) drawn by wavesurfer.js as two waveforms, each turn a region on its
// speaker's channel, a time axis from its timeline plugin. The window is the whole call from
// session time 0, so it lines up with the timeline above it (at most the API's 10 minutes).

import { apiPath, getAudio } from "./api.js";
import { el, fmtClock } from "./format.js";

export const MAX_WINDOW_MS = 600000;
const COLORS = { user: "#2f6db5", assistant: "#c2582b" };
const REGION = { user: "rgba(47, 109, 181, 0.12)", assistant: "rgba(194, 88, 43, 0.12)" };

/** A waveform of the call in ``container``; ``onTime(ms)`` while it plays or is sought,
 * ``onPick(turn)`` when a turn's region is clicked, ``onPause()`` when it stops playing.
 * Resolves to {pause, playing, seek, destroy}, or null when there is no recording (the
 * container then says why). */
export async function mountWaveform(container, libs, call, { onTime, onPick, onPause }) {
  const toMs = Math.min(call.durationMs, MAX_WINDOW_MS);
  let audio;
  try {
    audio = await getAudio(apiPath("sessions", call.sessionId, "audio"), {
      from_ms: 0, to_ms: Math.max(Math.round(toMs), 1), track: "both",
    });
  } catch (error) {
    container.replaceChildren(el("p", { class: "note" }, `No waveform: ${error.message}`));
    return null;
  }
  const waves = el("div", { class: "waves" });
  const axis = el("div", { class: "axis" });
  const play = el("button", { type: "button", class: "play" }, "▶ Play call");
  const clock = el("span", { class: "clock" }, fmtClock(0));
  container.replaceChildren(
    el("div", { class: "wave-labels" }, el("span", {}, "User"), el("span", {}, "Assistant")),
    el("div", { class: "wave-body" }, waves, axis),
    el("div", { class: "wave-controls" }, play, clock,
      call.durationMs > MAX_WINDOW_MS ? el("span", { class: "note" }, "first 10 minutes") : null),
  );
  const regions = libs.RegionsPlugin.create();
  const ws = libs.WaveSurfer.create({
    container: waves,
    height: 56,
    normalize: true,
    cursorColor: "#222",
    splitChannels: [
      { waveColor: COLORS.user, progressColor: "#1b426f" },
      { waveColor: COLORS.assistant, progressColor: "#7a3417" },
    ],
    plugins: [regions, libs.TimelinePlugin.create({ container: axis, height: 18 })],
  });
  ws.on("ready", () => {
    for (const turn of call.turns) {
      if (!turn.stopped_at) continue;
      regions.addRegion({
        id: turn.turn_id,
        start: call.at(turn.started_at) / 1000,
        end: call.at(turn.stopped_at) / 1000,
        channelIdx: turn.role === "user" ? 0 : 1,
        color: REGION[turn.role],
        drag: false,
        resize: false,
      });
    }
  });
  regions.on("region-clicked", (region, event) => {
    event.stopPropagation();
    const turn = call.turns.find((t) => t.turn_id === region.id);
    if (turn) onPick(turn);
  });
  ws.on("timeupdate", (seconds) => {
    clock.textContent = fmtClock(seconds);
    onTime(seconds * 1000);
  });
  ws.on("play", () => { play.textContent = "⏸ Pause"; });
  ws.on("pause", () => {
    play.textContent = "▶ Play call";
    onPause();
  });
  play.addEventListener("click", () => ws.playPause());
  await ws.loadBlob(audio.blob);
  return {
    pause: () => ws.pause(),
    playing: () => ws.isPlaying(),
    seek: (ms) => {
      if (!ws.isPlaying()) ws.setTime(Math.min(ms, toMs) / 1000);
    },
    destroy: () => ws.destroy(),
  };
}
