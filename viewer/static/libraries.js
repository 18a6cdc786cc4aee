// The browser libraries, from npm, served by the store from viewer/node_modules. On a machine
// where `make setup` ran without Node.js they are missing: the pages then say what to install
// and show everything that does not need them.

const MISSING = "The viewer's waveform and chart libraries (wavesurfer.js, uPlot) are not " +
  "installed. Run `make setup` on a machine with Node.js 20+ and npm: it runs `npm ci` " +
  "in viewer/, and `tstore serve` then serves them.";

let loading = null;

async function load() {
  try {
    const [wavesurfer, regions, timeline, uplot] = await Promise.all([
      import("/viewer/lib/wavesurfer.js/wavesurfer.esm.js"),
      import("/viewer/lib/wavesurfer.js/plugins/regions.esm.js"),
      import("/viewer/lib/wavesurfer.js/plugins/timeline.esm.js"),
      import("/viewer/lib/uplot/uPlot.esm.js"),
    ]);
    return {
      WaveSurfer: wavesurfer.default,
      RegionsPlugin: regions.default,
      TimelinePlugin: timeline.default,
      uPlot: uplot.default,
    };
  } catch {
    const notice = document.getElementById("libraries");
    notice.textContent = MISSING;
    notice.hidden = false;
    return null;
  }
}

/** The libraries, or null when they are not installed (the notice is then shown). */
export function libraries() {
  loading ??= load();
  return loading;
}
