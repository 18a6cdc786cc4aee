// A session's page: its summary, the timeline (a lane per speaker), the waveform of both
// tracks, and the transcript beside them. Clicking a turn (its bar, its region on the
// waveform or its transcript entry) plays its clip, GET .../turns/{turn_id}/audio?track=both;
// while a clip or the whole call plays, the turn being spoken is highlighted and the
// transcript scrolls to it; once a clip is over, the turn clicked stays highlighted. A call
// still open follows the live stream (live.js), its transcript following the newest turn
// unless the user has scrolled up from it. The keyboard goes through the turns by the
// transcript (keyboard.js), the page's skip link leading there; a long call's timeline and
// waveform scroll sideways in their box, which follows the turn being played, and zoom
// together (zoom.js).

import { apiPath, getAudio, getJson } from "./api.js";
import { AT_END_PX, el, fmtClock, fmtDuration, fmtMs, fmtSeconds, fmtTime, freshness, onPress, showsEnd } from "./format.js";
import { arrowKeys } from "./keyboard.js";
import { libraries } from "./libraries.js";
import { followLive } from "./live.js";
import { renderTimeline, reveal } from "./timeline.js";
import { mountWaveform, windowStart } from "./waveform.js";
import { zoomOf } from "./zoom.js";

/** A live call's summary and waveform are read again at most this often, however often
 * its events come: the waveform fetches the audio from the earliest chunk heard since. */
const WAVEFORM_REFRESH_MS = 3000;

/** The call's clock: session time 0 is the earliest of its first turn's start and its first
 * chunk's start, as the API's audio routes count it. */
function callOf(sessionId, detail) {
  const starts = detail.turns.map((t) => Date.parse(t.started_at));
  // A turn never stopped is drawn a second long at least: begun last, it would have no width.
  const ends = detail.turns.flatMap((t) => [Date.parse(t.started_at), t.stopped_at ? Date.parse(t.stopped_at) : Date.parse(t.started_at) + 1000]);
  for (const chunks of Object.values(detail.chunks)) {
    for (const c of chunks) {
      starts.push(Date.parse(c.starts_at));
      ends.push(Date.parse(c.ends_at));
    }
  }
  const origin = Math.min(...starts);
  return {
    sessionId,
    turns: detail.turns,
    /** Whether the store holds any of its audio: without, the page asks for none. */
    recorded: Object.values(detail.chunks).some((chunks) => chunks.length > 0),
    /** Whether the call may still go on: a turn without a stop is then being said. */
    live: detail.summary.completeness.state === "open",
    origin,
    durationMs: Math.max(Math.max(...ends) - origin, 1000),
    at: (iso) => Date.parse(iso) - origin,
  };
}

/** What of a session's answer is not its turns and chunks: its summary and freshness. */
function pick({ summary, as_of, lag_ms }) {
  return { summary, as_of, lag_ms };
}

function summaryBlock(summary) {
  const c = summary.completeness;
  const holes = c.holes;
  const spoken = summary.turns.user + summary.turns.assistant > 0;
  const facts = [
    ["Bot", summary.bot_id], ["Framework", summary.framework],
    ["Started", fmtTime(summary.first_event_at)],
    [spoken ? "Last turn" : "Last event", fmtTime(summary.last_event_at)],
    ["Turns", `${summary.turns.user} user · ${summary.turns.assistant} assistant`],
    ["Talk", `${fmtDuration(summary.talk_ms.user)} user · ${fmtDuration(summary.talk_ms.assistant)} assistant`],
    ["Interruptions", summary.interruptions], ["Stop timeouts", summary.timeouts],
    ["Median latency", fmtMs(summary.median_response_latency_ms)],
    ["Overlap · silence", `${fmtDuration(summary.overlap_ms)} · ${fmtDuration(summary.silence_ms)}`],
    ["Languages", summary.languages.join(", ") || "–"],
  ];
  return el("section", { class: "summary" },
    el("h1", {}, summary.session_id, " ",
      el("span", { class: `badge state-${c.state}` }, c.state.replaceAll("_", " "))),
    el("dl", {}, facts.map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v)))),
    holes.length ? el("p", { class: "note" }, `Holes: ${holes.join(", ").replaceAll("_", " ")}`) : null);
}

function transcriptEntry(call, turn, onPick) {
  const startMs = call.at(turn.started_at);
  const badges = [
    turn.interrupted ? el("span", { class: "badge interrupted", title: "interrupted by the user" }, "⚡ interrupted") : null,
    turn.timed_out ? el("span", { class: "badge timed-out", title: "closed by the stop timeout" }, "◷ timeout") : null,
    turn.response_latency_ms !== null ? el("span", { class: "badge latency", title: "response latency" }, fmtMs(turn.response_latency_ms)) : null,
    turn.stopped_at ? null : call.live
      ? el("span", { class: "badge open" }, "speaking…")
      : el("span", { class: "badge open", title: "the call is over and this turn's stop never came" }, "never stopped"),
  ];
  // A button inside the item, not the item made one: the list keeps its items for readers.
  return el("li", { class: `entry role-${turn.role}`, dataset: { turnId: turn.turn_id } },
    el("button", {
      type: "button", dataset: { turnId: turn.turn_id },
      onclick: () => onPick(turn), onkeydown: onPress(() => onPick(turn)),
    },
    el("span", { class: "entry-head" },
      el("span", { class: "who" }, turn.role), el("span", { class: "when" }, fmtClock(startMs / 1000)),
      turn.duration_ms !== null ? el("span", { class: "dur" }, fmtSeconds(turn.duration_ms)) : null, badges),
    el("span", { class: "text" }, turn.text || "…")));
}

/** Draws ``render`` into ``box`` with the keyboard's focus kept on the same turn's button:
 * a live call's redraw makes every turn's element anew. */
function keepingFocus(box, render) {
  const focused = box.contains(document.activeElement) ? document.activeElement.dataset.turnId : undefined;
  render();
  if (focused) box.querySelector(`button[data-turn-id="${CSS.escape(focused)}"]`)?.focus();
}

/** Whether the list shows its end: a live call's transcript then follows the newest turn. */
function atEnd(list) {
  return list.scrollHeight - list.scrollTop - list.clientHeight < AT_END_PX;
}

/** The session's page; ``showStatus(text)`` shows, or with null clears, what the page must
 * say beside it (its live updates lost). Resolves to how to leave it. */
export async function renderSession(page, sessionId, params, showStatus) {
  let detail = await getJson(apiPath("sessions", sessionId));
  let call = callOf(sessionId, detail);
  const timeline = el("div", { class: "timeline" });
  const waveBox = el("div", { class: "waveform" }, el("p", { class: "note" }, "Loading the recording…"));
  const clip = el("audio", { id: "clip", controls: true, preload: "auto" });
  const clipNote = el("span", { class: "clip-note" });
  // Where the page's skip link leads: its turns, in the order they were said.
  const transcript = el("ol", { class: "transcript", "aria-label": "Transcript", dataset: { skip: "" } });
  arrowKeys(transcript);
  /** The timeline and the waveform, in a box of their own that scrolls sideways. */
  const scroller = el("div", { class: "call-scroll" }, timeline, waveBox);
  const zoom = zoomOf(scroller, () => timeline.querySelector(".lane-label")?.offsetWidth ?? 0, params.get("zoom"));
  const fresh = el("div", {}, freshness(detail));
  let summary = summaryBlock(detail.summary);
  page.append(
    summary,
    el("div", { class: "session-grid" },
      el("section", { class: "call" },
        el("div", { class: "legend" },
          el("span", { class: "key role-user" }, "user"), el("span", { class: "key role-assistant" }, "assistant"),
          el("span", {}, "⚡ interrupted"), el("span", {}, "◷ stop timeout"),
          el("span", { class: "key latency-key" }, "response latency"), zoom.control),
        scroller, el("div", { class: "clip" }, clip, clipNote)),
      el("section", { class: "transcript-panel" }, el("h2", {}, "Transcript"), transcript)),
    fresh);

  let waveform = null;
  let stale = false;
  /** The 10 minutes of the call the user asked to see (or the linked turn's); else a live
   * call's latest, followed as it grows, and a closed call's first. */
  const wanted = call.turns.find((t) => t.turn_id === params.get("turn"));
  let chosenStartMs = wanted ? windowStart(call.at(wanted.started_at)) : null;
  /** Where the waveform's cursor starts: the linked turn's start, the turn it highlights
   * (else the window's start, under which the page would highlight another), until the user
   * asks for another window. */
  let cursorMs = wanted ? call.at(wanted.started_at) : null;
  const startOf = () => chosenStartMs
    ?? (detail.summary.completeness.state === "open" ? windowStart(call.durationMs - 1) : 0);
  /** Waveforms are drawn one after the other: each redraw splices into the peaks the one
   * before it left (a failed one left them as they were). */
  let drawing = Promise.resolve();
  const queued = (work) => {
    drawing = drawing.catch(() => undefined).then(work);
    return drawing;
  };
  /** The earliest start of the chunks heard since the waveform was last drawn. */
  let changedFromMs = Infinity;
  /** The ids of the turns highlighted: a live call's redraw makes their elements anew. */
  let marked = [];
  /** The turn whose clip the player holds, and the one being fetched meanwhile. */
  let clipTurn = null;
  let loading = null;
  let clipStartMs = 0;
  let libs = null;

  function mark(ids) {
    marked = ids;
    for (const node of page.querySelectorAll(".current")) node.classList.remove("current");
    for (const id of ids) {
      for (const node of page.querySelectorAll(`[data-turn-id="${CSS.escape(id)}"]`)) node.classList.add("current");
    }
  }

  /** Highlights the turns under way at ``ms`` of the call and scrolls the transcript to the
   * first of them; ``fromClip`` also moves the waveform's cursor there, and keeps the clip's
   * turn highlighted where the clip holds no turn (its edges). */
  function follow(ms, fromClip) {
    const under = call.turns.filter((t) => call.at(t.started_at) <= ms
      && ms < (t.stopped_at ? call.at(t.stopped_at) : Infinity)).map((t) => t.turn_id);
    if (fromClip) waveform?.seek(ms);
    const shown = under.length || !fromClip ? under : [clipTurn.turn_id];
    if (shown.join("\n") !== marked.join("\n")) show(shown);
  }

  /** Highlights ``ids`` and scrolls the transcript and the timeline to the first of them. */
  function show(ids) {
    mark(ids);
    const entry = ids.length && transcript.querySelector(`[data-turn-id="${CSS.escape(ids[0])}"]`);
    // .transcript is positioned: an entry's offsetTop is already within it.
    if (entry) transcript.scrollTo({ top: entry.offsetTop - 8, behavior: "smooth" });
    if (ids.length) revealBar(ids[0]);
  }

  /** Scrolls the timeline's box to the bar of the turn ``id``, when out of sight. */
  function revealBar(id) {
    const bar = timeline.querySelector(`.turn[data-turn-id="${CSS.escape(id)}"]`);
    if (bar) reveal(timeline, bar);
  }
  // The turn the keyboard is on is shown on the timeline too.
  transcript.addEventListener("focusin", (event) => revealBar(event.target.dataset.turnId));

  /** Clips are offered only while the store holds some of the call's audio: without, each
   * click would ask for one and get a 404. A live call's first chunk offers them. */
  function offerClips() {
    clip.hidden = !call.recorded;
    clipNote.textContent = call.recorded ? "Click a turn to play it." : "No recording for this call.";
  }

  async function playTurn(turn) {
    waveform?.pause();
    show([turn.turn_id]);
    if (!call.recorded) return;
    loading = turn;
    clipNote.textContent = `Loading ${turn.role} turn at ${fmtClock(call.at(turn.started_at) / 1000)}…`;
    try {
      const audio = await getAudio(apiPath("sessions", sessionId, "turns", turn.turn_id, "audio"), { track: "both" });
      if (loading !== turn) { // another turn, or the call, was asked for meanwhile
        if (!loading) offerClips();
        return;
      }
      const start = audio.headers.get("X-Audio-Start");
      clipStartMs = start ? call.at(start) : call.at(turn.started_at);
      if (clip.src) URL.revokeObjectURL(clip.src);
      clip.src = URL.createObjectURL(audio.blob);
      clipTurn = turn;
      follow(clipStartMs, true);
      await clip.play();
    } catch (error) {
      // A clip paused before it began to play (the call played instead) was not refused.
      if (error.name !== "AbortError") clipNote.textContent = `Cannot play this turn: ${error.message}`;
    } finally {
      if (loading === turn) loading = null;
    }
  }

  /** The clip's note says what the player does with its turn. */
  function sayClip(doing) {
    clipNote.textContent = `${doing} the ${clipTurn.role} turn at ${fmtClock(clipStartMs / 1000)}: ${clipTurn.text}`;
  }

  clip.addEventListener("timeupdate", () => follow(clipStartMs + clip.currentTime * 1000, true));
  clip.addEventListener("play", () => sayClip("Playing"));
  // A clip that stops while the next one is fetched leaves that one's "Loading…" standing.
  clip.addEventListener("pause", () => {
    if (!loading) sayClip(clip.ended ? "Played" : "Paused");
  });
  clip.addEventListener("ended", () => mark([clipTurn.turn_id]));

  function draw() {
    // A live call's timeline follows its newest turn too, unless scrolled back from it.
    const latest = call.live && showsEnd(scroller);
    zoom.apply(call.durationMs);
    keepingFocus(timeline, () => renderTimeline(timeline, call, playTurn));
    if (latest) scroller.scrollLeft = scroller.scrollWidth;
    const top = transcript.scrollTop;
    const newest = call.live && atEnd(transcript);
    const entries = call.turns.map((t) => transcriptEntry(call, t, playTurn));
    keepingFocus(transcript, () => transcript.replaceChildren(...entries));
    transcript.scrollTop = newest ? transcript.scrollHeight : top;
    mark(marked);
  }

  /** The page's session as ``next`` has it. */
  function update(next) {
    const recorded = call.recorded;
    detail = next;
    call = callOf(sessionId, detail);
    if (call.recorded !== recorded) offerClips();
  }

  async function loadWaveform() {
    libs ??= await libraries();
    if (!libs) {
      waveBox.replaceChildren(el("p", { class: "note" }, "The waveform needs wavesurfer.js: see the notice above."));
      return;
    }
    changedFromMs = Infinity;
    const next = await mountWaveform(waveBox, libs, call, startOf(), {
      atMs: cursorMs,
      onTime: (ms) => follow(ms, false),
      onPick: playTurn,
      onPause: () => stale && redrawWaveform(),
      onPlay: () => { // one sound at a time: the call stops a turn's clip, or its loading
        loading = null;
        clip.pause();
      },
      onShow: (startMs) => {
        chosenStartMs = startMs;
        cursorMs = null;
        queued(loadWaveform);
      },
    });
    waveform?.destroy();
    waveform = next;
  }

  /** A waveform being listened to is not taken away: it is drawn anew once paused. */
  function redrawWaveform() {
    stale = Boolean(waveform?.playing());
    if (stale) return null;
    return queued(() => {
      // No recording when last asked (a 404): asked again once a chunk is heard, not at
      // each refresh.
      if (!waveform && changedFromMs === Infinity) return null;
      if (waveform?.startMs !== startOf()) return loadWaveform();
      const from = changedFromMs;
      changedFromMs = Infinity;
      return waveform.redraw(call, from);
    });
  }

  offerClips();
  draw();
  if (wanted) follow(cursorMs, false);
  await queued(loadWaveform);

  if (detail.summary.completeness.state !== "open") return () => waveform?.destroy();

  /** The summary and freshness as the API gives them now (the stream carries turns and
   * chunks, not the counts the store derives from them). */
  function showSummary() {
    // A call no longer open keeps the window it was followed at on screen.
    if (detail.summary.completeness.state !== "open") chosenStartMs ??= waveform?.startMs;
    const next = summaryBlock(detail.summary);
    summary.replaceWith(next);
    summary = next;
    fresh.replaceChildren(freshness(detail));
  }

  async function reloadSummary() {
    // Awaited before ``detail`` is read: turns heard meanwhile are kept.
    const read = pick(await getJson(apiPath("sessions", sessionId)));
    update({ ...detail, ...read });
    showSummary();
  }

  // A throttle, not a debounce: a call whose events come more often than the period would
  // otherwise never be read again until it ends.
  let refresh = null;
  const later = () => {
    refresh ??= setTimeout(() => {
      refresh = null;
      Promise.allSettled([reloadSummary(), redrawWaveform()]);
    }, WAVEFORM_REFRESH_MS);
  };
  const stop = followLive(sessionId, {
    status: showStatus,
    turn(turn) {
      const turns = call.turns.filter((t) => t.turn_id !== turn.turn_id).concat([turn]);
      turns.sort((a, b) => Date.parse(a.started_at) - Date.parse(b.started_at));
      update({ ...detail, turns });
      draw();
      later();
    },
    chunk(entry) {
      // The entry may not name its track; the call's clock only needs its times. The
      // stream begins with the chunks the page read already: those change nothing.
      const track = entry.track || "streamed";
      const known = detail.chunks[track] || [];
      const same = (c) => c.chunk_seq === entry.chunk_seq;
      if (known.some((c) => same(c) && c.sha256 === entry.sha256)) return;
      const chunks = { ...detail.chunks, [track]: [...known.filter((c) => !same(c)), entry] };
      const replaced = known.filter(same).map((c) => call.at(c.starts_at));
      update({ ...detail, chunks });
      changedFromMs = Math.min(changedFromMs, call.at(entry.starts_at), ...replaced);
      later();
    },
    async end() {
      clearTimeout(refresh);
      refresh = null;
      update(await getJson(apiPath("sessions", sessionId)));
      draw();
      showSummary();
      changedFromMs = 0; // the sealed recording, drawn whole once
      redrawWaveform();
    },
  });
  return () => {
    stop();
    clearTimeout(refresh);
    waveform?.destroy();
  };
}
