// The recording under the timeline: GET /v1/sessions/{id}/audio?track=both (user left,
// assistant right) drawn by wavesurfer.js as two waveforms, each turn a region on its
// speaker's channel, a time axis from its timeline plugin. The API cuts at most 10 minutes
// at a time (38 MB of WAV, built in memory), so the waveform is one such window of the call,
// placed at its time on the timeline's scale to line up with the turns above it; the rest is
// hatched as not drawn, and buttons draw the 10 minutes before or after. Drawing an hour's
// call whole would fetch 230 MB.
//
// The page keeps the waveform's peaks, so a live call's waveform is drawn anew from the
// audio of what changed (the window from the earliest chunk heard since), not the whole
// recording again: a supervisor watching a 10-minute call fetches seconds of audio per
// refresh, not 38 MB. Playing needs the whole window: it is fetched when played.

import { apiPath, getAudio } from "./api.js";
import { el, fmtClock, fmtMinutes, onPress } from "./format.js";

export const MAX_WINDOW_MS = 600000;
const COLORS = { user: "#2f6db5", assistant: "#c2582b" };
const REGION = { user: "rgba(47, 109, 181, 0.12)", assistant: "rgba(194, 88, 43, 0.12)" };
const PEAKS_PER_S = 100;
const PEAK_MS = 1000 / PEAKS_PER_S;
const DECODE_RATE = 8000;

/** Where the window that ``ms`` of the call falls in starts: windows are the call's 10-minute
 * stretches from its start. */
export function windowStart(ms) {
  return Math.floor(Math.max(ms, 0) / MAX_WINDOW_MS) * MAX_WINDOW_MS;
}

function windowAudio(sessionId, fromMs, toMs) {
  return getAudio(apiPath("sessions", sessionId, "audio"), {
    from_ms: Math.floor(fromMs), to_ms: Math.max(Math.ceil(toMs), Math.floor(fromMs) + 1), track: "both",
  });
}

/** Per channel (user, assistant), the loudest sample of each 1/PEAKS_PER_S s of a WAV. */
async function peaksOf(blob) {
  const audio = await new OfflineAudioContext(1, 1, DECODE_RATE).decodeAudioData(await blob.arrayBuffer());
  const perPeak = audio.sampleRate / PEAKS_PER_S;
  return [0, 1].map((channel) => {
    const samples = audio.getChannelData(Math.min(channel, audio.numberOfChannels - 1));
    const peaks = new Float32Array(Math.ceil(samples.length / perPeak));
    for (let i = 0; i < samples.length; i++) {
      const at = Math.floor(i / perPeak);
      peaks[at] = Math.max(peaks[at], Math.abs(samples[i]));
    }
    return peaks;
  });
}

/** ``kept`` cut or stretched (with silence) to ``toMs``, ``fresh`` written over it from
 * ``fromMs`` on. */
function spliced(kept, fresh, fromMs, toMs) {
  const length = Math.ceil(toMs / PEAK_MS);
  const from = Math.floor(fromMs / PEAK_MS);
  return kept.map((old, channel) => {
    const peaks = new Float32Array(length);
    peaks.set(old.subarray(0, Math.min(from, length)));
    peaks.set(fresh[channel].subarray(0, Math.max(length - from, 0)), Math.min(from, length));
    return peaks;
  });
}

/** The window of the call from ``startMs`` drawn in ``container``, its cursor at ``atMs`` of
 * the call when the window holds it (a linked turn's start), else at the window's start;
 * ``onTime(ms)`` (of the call, to the millisecond) while it plays or the user moves its
 * cursor (not when the page does: a clip playing moves it), ``onPick(turn)`` when a turn's
 * region is clicked,
 * ``onPlay()`` and ``onPause()`` when it starts and stops playing, ``onShow(startMs)`` when
 * the window before or after is asked for.
 * Resolves to {startMs, redraw, pause, playing, seek, destroy}, or null when there is no
 * recording (the container then says why). ``redraw(call, changedFromMs)`` draws the window
 * as the call is now, fetching the audio from ``changedFromMs`` (and whatever it grew by). */
export async function mountWaveform(container, libs, call, startMs, { atMs, onTime, onPick, onPause, onPlay, onShow }) {
  const endOf = (next) => Math.min(next.durationMs, startMs + MAX_WINDOW_MS);
  let toMs = endOf(call);
  /** The window's length, as wavesurfer counts it. */
  const lengthS = () => (toMs - startMs) / 1000;
  if (!call.recorded) {
    container.replaceChildren(el("p", { class: "note" }, "No waveform: no audio of this call is stored (yet)."));
    return null;
  }
  let audio;
  let peaks;
  try {
    audio = await windowAudio(call.sessionId, startMs, toMs);
    peaks = await peaksOf(audio.blob);
  } catch (error) {
    container.replaceChildren(el("p", { class: "note" }, `No waveform: ${error.message}`));
    return null;
  }
  let origin = call.origin;
  /** Whether the player holds the audio of the window as drawn: drawn anew from peaks
   * alone, it holds none past what was last fetched whole. */
  let audible = false;
  /** Where the peaks begin to hold silence for audio not fetched: what the call grew by
   * with no chunk heard, or what was missing when asked. */
  let unfetchedFromMs = Infinity;
  // Hidden from screen readers, its regions taking no tab stop: the transcript is the
  // keyboard's way to the turns, and their clips (a click on a region still plays its turn's).
  const waves = el("div", { class: "waves", "aria-hidden": "true" });
  const drawn = el("div", { class: "wave-window" }, waves);
  const play = el("button", { type: "button", class: "play" });
  const clock = el("span", { class: "clock" }, fmtClock(startMs / 1000));
  const earlier = el("button", { type: "button", class: "earlier", onclick: () => onShow(startMs - MAX_WINDOW_MS) });
  const later = el("button", { type: "button", class: "later", onclick: () => onShow(startMs + MAX_WINDOW_MS) });
  const cut = el("span", { class: "note" });
  /** Why the call did not play, when it did not: a row of its own, the controls' room is
   * the buttons'. */
  const failed = el("p", { class: "note", role: "status", hidden: true });
  container.replaceChildren(
    el("div", { class: "wave-row" },
      el("div", { class: "wave-labels" }, el("span", {}, "User"), el("span", {}, "Assistant")),
      el("div", { class: "wave-body" },
        el("div", { class: "undrawn", title: "not drawn: the buttons below draw 10 minutes at a time" }), drawn)),
    el("div", { class: "wave-controls" }, play, clock, earlier, cut, later),
    failed,
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
    plugins: [regions, libs.TimelinePlugin.create({
      container: drawn, height: 18, formatTimeCallback: (s) => fmtMinutes(startMs / 1000 + s),
    })],
  });

  /** The turns of the window as regions, and where the window sits in the call. The regions
   * are made anew: the keyboard's focus goes back to the same turn's (they live in the
   * player's shadow root, whose activeElement says which has it). */
  function drawTurns() {
    const focused = regions.getRegions().find((r) => r.element?.getRootNode().activeElement === r.element)?.id;
    regions.clearRegions();
    for (const turn of call.turns) {
      if (!turn.stopped_at) continue;
      const from = Math.max(call.at(turn.started_at), startMs);
      const to = Math.min(call.at(turn.stopped_at), toMs);
      if (from >= to) continue;
      const { element } = regions.addRegion({
        id: turn.turn_id,
        start: (from - startMs) / 1000,
        end: (to - startMs) / 1000,
        channelIdx: turn.role === "user" ? 0 : 1,
        color: REGION[turn.role],
        drag: false,
        resize: false,
      });
      element.setAttribute("role", "button");
      element.setAttribute("tabindex", -1);
      element.setAttribute("aria-label", `Play the ${turn.role} turn at ${fmtClock(call.at(turn.started_at) / 1000)}`);
      element.addEventListener("keydown", onPress(() => onPick(turn)));
    }
    if (focused) {
      // The plugin puts a new region's element in the page in a timeout of its own, set
      // by addRegion: this one runs after it.
      setTimeout(() => regions.getRegions().find((r) => r.id === focused)?.element?.focus());
    }
    const whole = call.durationMs;
    drawn.style.marginLeft = `${(100 * startMs) / whole}%`;
    drawn.style.width = `${(100 * (toMs - startMs)) / whole}%`;
    const span = (from, to) => `${fmtMinutes(from / 1000)}–${fmtMinutes(to / 1000)}`;
    cut.textContent = toMs - startMs < whole ? `${span(startMs, toMs)} of ${fmtMinutes(whole / 1000)} drawn` : "";
    earlier.hidden = startMs === 0;
    earlier.textContent = `← ${span(startMs - MAX_WINDOW_MS, startMs)}`;
    later.hidden = toMs >= whole;
    later.textContent = `${span(toMs, Math.min(toMs + MAX_WINDOW_MS, whole))} →`;
  }

  ws.on("ready", drawTurns);
  regions.on("region-clicked", (region, event) => {
    event.stopPropagation();
    const turn = call.turns.find((t) => t.turn_id === region.id);
    if (turn) onPick(turn);
  });
  // Rounded: a cursor put at a turn's start comes back in seconds, maybe a hair before it.
  const callMs = (seconds) => Math.round(startMs + seconds * 1000);
  ws.on("timeupdate", (seconds) => {
    clock.textContent = fmtClock(startMs / 1000 + seconds);
    if (ws.isPlaying()) onTime(callMs(seconds));
  });
  ws.on("interaction", (seconds) => onTime(callMs(seconds)));
  /** The button's icon is drawn by the style sheet: ⏸ is missing from common fonts. */
  function showPlaying(playing) {
    play.textContent = playing ? "Pause" : "Play call";
    play.classList.toggle("playing", playing);
  }
  showPlaying(false);
  ws.on("play", () => {
    showPlaying(true);
    failed.hidden = true;
    onPlay();
  });
  ws.on("pause", () => {
    showPlaying(false);
    onPause();
  });

  /** Puts the window's audio (``given``, else fetched now) under the peaks as drawn, the
   * cursor at ``at`` s (else where it was). */
  async function loadAudio(given, at = ws.getCurrentTime()) {
    const whole = given ?? (await windowAudio(call.sessionId, startMs, toMs));
    await ws.loadBlob(whole.blob, peaks, lengthS());
    audible = true;
    ws.setTime(at);
  }

  /** Playing a waveform drawn from peaks fetches the window as drawn now, and goes on from
   * where the cursor is; a fetch that fails is said beside the button (a click handler's
   * error would reach no one). */
  async function playPause() {
    if (ws.isPlaying()) {
      ws.pause();
      return;
    }
    onPlay(); // asked for, the call stops a turn's clip now, not once its window is fetched
    try {
      if (!audible) await loadAudio();
      await ws.play();
    } catch (error) {
      failed.textContent = `Cannot play the call: ${error.message}`;
      failed.hidden = false;
    }
  }
  play.addEventListener("click", playPause);
  const held = atMs !== null && atMs !== undefined && startMs <= atMs && atMs <= toMs;
  await loadAudio(audio, held ? (atMs - startMs) / 1000 : 0);

  /** Splices into the peaks the redraw before it left: redraws run one after the other.
   * Audio is fetched only once a chunk is heard (no chunk, no new audio: asking would get
   * a 404 at each refresh), from the earliest of it and what the peaks lack. */
  async function redraw(next, changedFromMs) {
    call = next;
    const nextToMs = endOf(call);
    if (nextToMs > toMs) unfetchedFromMs = Math.min(unfetchedFromMs, toMs);
    const wanted = changedFromMs < Infinity ? Math.min(changedFromMs, unfetchedFromMs) : Infinity;
    const fromMs = call.origin === origin ? Math.max(Math.floor(wanted / PEAK_MS) * PEAK_MS, startMs) : startMs;
    if (fromMs >= nextToMs && nextToMs === toMs) {
      drawTurns();
      return;
    }
    let fresh = [new Float32Array(0), new Float32Array(0)];
    if (fromMs < nextToMs) {
      try {
        fresh = await peaksOf((await windowAudio(call.sessionId, fromMs, nextToMs)).blob);
        unfetchedFromMs = Infinity;
      } catch {
        unfetchedFromMs = fromMs; // not recorded yet, or not reachable: silence till then
      }
    }
    peaks = spliced(peaks, fresh, fromMs - startMs, nextToMs - startMs);
    origin = call.origin;
    toMs = nextToMs;
    audible = false;
    const at = ws.getCurrentTime();
    const media = ws.getMediaElement();
    media.removeAttribute("src");
    media.load(); // forgets the recording's duration: the call's is the peaks' now
    await ws.load("", peaks, lengthS());
    ws.setTime(Math.min(at, lengthS()));
  }

  return {
    startMs,
    redraw,
    pause: () => ws.pause(),
    playing: () => ws.isPlaying(),
    seek: (ms) => {
      if (!ws.isPlaying() && startMs <= ms && ms <= toMs) ws.setTime((ms - startMs) / 1000);
    },
    destroy: () => ws.destroy(),
  };
}
