// ECG recording page: the status, polled until the analysis is finished, and
// the canvas viewer on standard ECG paper (25 mm/s, 10 mm/mV, 1 mm and 5 mm
// lines, a 1 mV calibration pulse), with zoom, pan, R-peak markers and
// calipers. The signal comes in 10-second windows from the server (never the
// whole recording) and the strip below shows the whole recording as min/max
// pairs. Translated strings come from the page ([data-strings]).

// --- Status ---------------------------------------------------------------------------

const statusBox = document.querySelector("[data-ecg-status]");
if (statusBox && statusBox.dataset.finished === "false") {
  const label = statusBox.querySelector("[data-ecg-status-label]");
  let delayMs = 3000;
  const poll = async () => {
    try {
      const response = await fetch(statusBox.dataset.statusUrl, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
        cache: "no-store",
      });
      if (response.ok) {
        const answer = await response.json();
        if (answer.finished) {
          window.location.reload();
          return;
        }
        if (label && answer.label) label.textContent = answer.label;
        delayMs = 3000;
      } else {
        delayMs = Math.min(delayMs * 2, 30000);
      }
    } catch {
      delayMs = Math.min(delayMs * 2, 30000);
    }
    window.setTimeout(poll, document.hidden ? Math.max(delayMs, 10000) : delayMs);
  };
  window.setTimeout(poll, delayMs);
}

// --- Viewer ---------------------------------------------------------------------------

const root = document.querySelector("[data-ecg-viewer]");
if (root) startViewer(root);

function startViewer(root) {
  const strings = {};
  for (const item of root.querySelectorAll("[data-strings] [data-key]")) strings[item.dataset.key] = item.textContent;
  const t = (key, values = {}) =>
    (strings[key] ?? key).replace(/%\((\w+)\)s/g, (match, name) => (name in values ? values[name] : match));

  const MM_PER_S = 25;
  const MM_PER_MV = 10;
  const CSS_PX_PER_MM = 96 / 25.4;
  const ZOOMS = [0.5, 1, 2, 4];
  const CHUNK_S = 10;
  const MAX_CHUNKS = 40;
  const SNAP_PX = 12;
  const PAPER = "#fff8f8";
  const SMALL_LINE = "#f6cccc";
  const BIG_LINE = "#e48f8f";
  const TRACE = "#111";
  const MARKER = "#1f4e9c";
  const CALIPER = "#0b6e4f";

  const canvas = root.querySelector("[data-ecg-canvas]");
  const overviewCanvas = root.querySelector("[data-ecg-overview]");
  const readout = root.querySelector("[data-ecg-readout]");
  const position = root.querySelector("[data-ecg-position]");
  const zoomLabel = root.querySelector("[data-ecg-zoom-label]");
  const calipersButton = root.querySelector("[data-ecg-calipers]");
  const signalUrl = root.dataset.signalUrl;
  const overviewUrl = root.dataset.overviewUrl;
  const duration = Number(root.dataset.durationS) || 0;
  const ctx = canvas.getContext("2d");
  const overviewCtx = overviewCanvas.getContext("2d");

  const state = { zoom: 1, t0: 0, calipers: false, marks: [], rate: 0, markerXs: [] };
  const chunks = new Map();
  let overview = null;
  let frame = 0;
  let failed = false;

  const pxPerMm = () => CSS_PX_PER_MM * ZOOMS[state.zoom];
  const pxPerS = () => MM_PER_S * pxPerMm();
  const pxPerMv = () => MM_PER_MV * pxPerMm();
  const width = () => canvas.clientWidth;
  const height = () => canvas.clientHeight;
  const visibleS = () => width() / pxPerS();
  const clampT0 = (value) => Math.max(0, Math.min(value, Math.max(0, duration - visibleS())));

  const clock = (seconds) => {
    const whole = Math.max(0, seconds);
    const hours = Math.floor(whole / 3600);
    const minutes = Math.floor((whole % 3600) / 60);
    const secs = (whole % 60).toFixed(1).padStart(4, "0");
    return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${secs}` : `${minutes}:${secs}`;
  };

  // --- Data --------------------------------------------------------------------------

  const fetchJson = async (url) => {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(String(response.status));
    return response.json();
  };

  const lastChunk = () => Math.max(0, Math.ceil(duration / CHUNK_S) - 1);

  const loadChunk = (index) => {
    if (chunks.has(index)) return;
    const chunk = { status: "loading", first: 0, samples: null, peaks: [], used: performance.now() };
    chunks.set(index, chunk);
    fetchJson(`${signalUrl}?start_s=${index * CHUNK_S}&duration_s=${CHUNK_S}`)
      .then((answer) => {
        state.rate = answer.sample_rate_hz;
        chunk.first = Math.round(answer.start_s * answer.sample_rate_hz);
        chunk.samples = Int16Array.from(answer.samples_uv);
        chunk.peaks = answer.r_peaks_s;
        chunk.status = "ready";
        failed = false;
        schedule();
      })
      .catch(() => {
        chunks.delete(index);
        failed = true;
        schedule();
      });
  };

  const ensureLoaded = () => {
    const span = visibleS();
    const from = Math.max(0, Math.floor((state.t0 - span / 2) / CHUNK_S));
    const to = Math.min(lastChunk(), Math.floor((state.t0 + span * 1.5) / CHUNK_S));
    const now = performance.now();
    for (let index = from; index <= to; index += 1) {
      loadChunk(index);
      chunks.get(index).used = now;
    }
    if (chunks.size > MAX_CHUNKS) {
      const oldest = [...chunks.entries()].sort((a, b) => a[1].used - b[1].used);
      for (const [index] of oldest.slice(0, chunks.size - MAX_CHUNKS)) chunks.delete(index);
    }
  };

  // The sample at index i (viewer rate), or undefined if not loaded.
  const sampleAt = (i) => {
    if (!state.rate) return undefined;
    const perChunk = state.rate * CHUNK_S;
    const index = Math.floor(i / perChunk);
    for (const candidate of [index, index - 1, index + 1]) {
      const chunk = chunks.get(candidate);
      if (!chunk || chunk.status !== "ready") continue;
      const offset = i - chunk.first;
      if (offset >= 0 && offset < chunk.samples.length) return chunk.samples[offset];
    }
    return undefined;
  };

  const peaksBetween = (from, to) => {
    const found = [];
    for (const chunk of chunks.values()) {
      if (chunk.status !== "ready") continue;
      for (const peak of chunk.peaks) if (peak >= from && peak <= to) found.push(peak);
    }
    return [...new Set(found)].sort((a, b) => a - b);
  };

  // --- Drawing -----------------------------------------------------------------------

  const resize = () => {
    const ratio = window.devicePixelRatio || 1;
    for (const [element, context] of [
      [canvas, ctx],
      [overviewCanvas, overviewCtx],
    ]) {
      element.width = Math.round(element.clientWidth * ratio);
      element.height = Math.round(element.clientHeight * ratio);
      context.setTransform(ratio, 0, 0, ratio, 0, 0);
    }
  };

  const schedule = () => {
    if (!frame) frame = window.requestAnimationFrame(draw);
  };

  const drawGrid = (w, h, baseline) => {
    const mm = pxPerMm();
    ctx.fillStyle = PAPER;
    ctx.fillRect(0, 0, w, h);
    const lines = (big) => {
      ctx.beginPath();
      // vertical: every 1 mm (0.04 s) or 5 mm (0.2 s) of paper, fixed to the recording's time
      const first = Math.ceil((state.t0 * MM_PER_S) / (big ? 5 : 1));
      for (let k = first; ; k += 1) {
        const paperMm = k * (big ? 5 : 1);
        const x = (paperMm / MM_PER_S - state.t0) * pxPerS();
        if (x > w) break;
        if (!big && paperMm % 5 === 0) continue;
        ctx.moveTo(Math.round(x) + 0.5, 0);
        ctx.lineTo(Math.round(x) + 0.5, h);
      }
      // horizontal: from the baseline, every 1 mm (0.1 mV) or 5 mm (0.5 mV)
      const step = (big ? 5 : 1) * mm;
      const count = Math.ceil(h / 2 / step) + 1;
      for (let k = -count; k <= count; k += 1) {
        if (!big && k % 5 === 0) continue;
        const y = Math.round(baseline + k * step) + 0.5;
        ctx.moveTo(0, y);
        ctx.lineTo(w, y);
      }
      ctx.strokeStyle = big ? BIG_LINE : SMALL_LINE;
      ctx.lineWidth = 1;
      ctx.stroke();
    };
    if (mm >= 3) lines(false);
    lines(true);
  };

  const drawCalibration = (baseline) => {
    // 1 mV (10 mm) high and 0.2 s (5 mm) wide, on the left edge of the screen
    const mm = pxPerMm();
    const x = 2;
    ctx.beginPath();
    ctx.moveTo(x, baseline);
    ctx.lineTo(x + 2 * mm, baseline);
    ctx.lineTo(x + 2 * mm, baseline - 10 * mm);
    ctx.lineTo(x + 7 * mm, baseline - 10 * mm);
    ctx.lineTo(x + 7 * mm, baseline);
    ctx.lineTo(x + 9 * mm, baseline);
    ctx.strokeStyle = TRACE;
    ctx.lineWidth = 1.5;
    ctx.stroke();
  };

  const yOf = (microvolts, baseline) => baseline - (microvolts / 1000) * pxPerMv();

  const drawTrace = (w, baseline) => {
    if (!state.rate) return 0;
    const perPx = state.rate / pxPerS();
    let drawn = 0;
    ctx.beginPath();
    let pen = false;
    if (perPx > 1.5) {
      for (let px = 0; px < w; px += 1) {
        const from = Math.floor((state.t0 + px / pxPerS()) * state.rate);
        const to = Math.max(from + 1, Math.floor((state.t0 + (px + 1) / pxPerS()) * state.rate));
        let low = Infinity;
        let high = -Infinity;
        for (let i = from; i < to; i += 1) {
          const value = sampleAt(i);
          if (value === undefined) continue;
          if (value < low) low = value;
          if (value > high) high = value;
          drawn += 1;
        }
        if (low === Infinity) {
          pen = false;
          continue;
        }
        if (!pen) ctx.moveTo(px + 0.5, yOf(high, baseline));
        ctx.lineTo(px + 0.5, yOf(high, baseline));
        ctx.lineTo(px + 0.5, yOf(low, baseline));
        pen = true;
      }
    } else {
      const from = Math.floor(state.t0 * state.rate);
      const to = Math.ceil((state.t0 + w / pxPerS()) * state.rate);
      for (let i = from; i <= to; i += 1) {
        const value = sampleAt(i);
        if (value === undefined) {
          pen = false;
          continue;
        }
        const x = (i / state.rate - state.t0) * pxPerS();
        if (pen) ctx.lineTo(x, yOf(value, baseline));
        else ctx.moveTo(x, yOf(value, baseline));
        pen = true;
        drawn += 1;
      }
    }
    ctx.strokeStyle = TRACE;
    ctx.lineWidth = 1.3;
    ctx.lineJoin = "round";
    ctx.stroke();
    return drawn;
  };

  const drawMarkers = (w) => {
    const peaks = peaksBetween(state.t0, state.t0 + w / pxPerS());
    state.markerXs = peaks.map((peak) => (peak - state.t0) * pxPerS());
    ctx.fillStyle = MARKER;
    for (const x of state.markerXs) {
      ctx.beginPath();
      ctx.moveTo(x - 4, 2);
      ctx.lineTo(x + 4, 2);
      ctx.lineTo(x, 9);
      ctx.closePath();
      ctx.fill();
    }
    return peaks.length;
  };

  const drawCalipers = (h, baseline) => {
    ctx.strokeStyle = CALIPER;
    ctx.fillStyle = CALIPER;
    ctx.lineWidth = 1.5;
    ctx.setLineDash([5, 3]);
    const xs = state.marks.map((mark) => (mark.t - state.t0) * pxPerS());
    for (const [index, x] of xs.entries()) {
      ctx.beginPath();
      ctx.moveTo(x, 12);
      ctx.lineTo(x, h);
      ctx.stroke();
      const mark = state.marks[index];
      if (mark.v !== undefined) {
        ctx.beginPath();
        ctx.arc(x, yOf(mark.v * 1000, baseline), 3, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
    ctx.setLineDash([]);
    if (xs.length === 2) {
      ctx.beginPath();
      ctx.moveTo(xs[0], 16);
      ctx.lineTo(xs[1], 16);
      ctx.stroke();
    }
  };

  function draw() {
    frame = 0;
    const w = width();
    const h = height();
    const baseline = h / 2;
    drawGrid(w, h, baseline);
    const drawn = drawTrace(w, baseline);
    drawCalibration(baseline);
    const markers = drawMarkers(w);
    drawCalipers(h, baseline);
    if (!drawn) {
      ctx.fillStyle = "#56635f";
      ctx.font = "14px system-ui, sans-serif";
      ctx.fillText(failed ? t("load_failed") : t("loading"), 12 * pxPerMm(), 24);
    }
    root.dataset.drawnSamples = String(drawn);
    root.dataset.rMarkers = String(markers);
    zoomLabel.textContent = `×${ZOOMS[state.zoom]}`;
    position.textContent = t("position", {
      start: clock(state.t0),
      end: clock(Math.min(duration, state.t0 + visibleS())),
      total: clock(duration),
    });
    drawOverview();
  }

  const drawOverview = () => {
    const w = overviewCanvas.clientWidth;
    const h = overviewCanvas.clientHeight;
    overviewCtx.clearRect(0, 0, w, h);
    if (overview && overview.min_uv.length) {
      const count = overview.min_uv.length;
      let scale = 0;
      for (let i = 0; i < count; i += 1) scale = Math.max(scale, Math.abs(overview.min_uv[i]), Math.abs(overview.max_uv[i]));
      scale = Math.min(Math.max(scale, 500), 3000);
      overviewCtx.beginPath();
      for (let i = 0; i < count; i += 1) {
        const x = (i / count) * w + 0.5;
        overviewCtx.moveTo(x, h / 2 - (overview.max_uv[i] / scale) * (h / 2 - 2));
        overviewCtx.lineTo(x, h / 2 - (overview.min_uv[i] / scale) * (h / 2 - 2) + 0.5);
      }
      overviewCtx.strokeStyle = "#56635f";
      overviewCtx.lineWidth = 1;
      overviewCtx.stroke();
    }
    if (duration > 0) {
      const x = (state.t0 / duration) * w;
      const span = Math.max(2, (visibleS() / duration) * w);
      overviewCtx.fillStyle = "rgba(11, 110, 79, 0.25)";
      overviewCtx.fillRect(x, 0, span, h);
      overviewCtx.strokeStyle = CALIPER;
      overviewCtx.strokeRect(x + 0.5, 0.5, span - 1, h - 1);
    }
  };

  const loadOverview = () => {
    const buckets = Math.max(50, Math.min(2000, Math.round(overviewCanvas.clientWidth)));
    fetchJson(`${overviewUrl}?buckets=${buckets}`)
      .then((answer) => {
        overview = answer;
        schedule();
      })
      .catch(() => {});
  };

  // --- Moving around -----------------------------------------------------------------

  const moveTo = (t0) => {
    state.t0 = clampT0(t0);
    ensureLoaded();
    schedule();
  };

  const zoomBy = (direction) => {
    const centre = state.t0 + visibleS() / 2;
    state.zoom = Math.max(0, Math.min(ZOOMS.length - 1, state.zoom + direction));
    zoomLabel.textContent = `×${ZOOMS[state.zoom]}`;
    moveTo(centre - visibleS() / 2);
  };

  for (const button of root.querySelectorAll("[data-ecg-zoom]")) {
    button.addEventListener("click", () => zoomBy(Number(button.dataset.ecgZoom)));
  }
  for (const button of root.querySelectorAll("[data-ecg-pan]")) {
    button.addEventListener("click", () => moveTo(state.t0 + Number(button.dataset.ecgPan) * visibleS() * 0.9));
  }

  // --- Calipers ----------------------------------------------------------------------

  const showReadout = () => {
    if (!state.calipers) {
      readout.textContent = "";
      return;
    }
    if (state.marks.length === 0) readout.textContent = t("calipers_hint");
    else if (state.marks.length === 1) readout.textContent = t("calipers_one");
    else {
      const [a, b] = [...state.marks].sort((first, second) => first.t - second.t);
      const seconds = b.t - a.t;
      const mv = (value) => (value === undefined ? "?" : value.toFixed(2));
      readout.textContent = t("calipers_result", {
        ms: Math.round(seconds * 1000),
        mv: a.v === undefined || b.v === undefined ? "?" : (b.v - a.v).toFixed(2),
        bpm: seconds > 0 ? Math.round(60 / seconds) : "?",
        va: mv(a.v),
        vb: mv(b.v),
      });
    }
  };

  const placeMark = (x) => {
    let time = state.t0 + x / pxPerS();
    let nearest = null;
    for (const markerX of state.markerXs) {
      if (Math.abs(markerX - x) <= SNAP_PX && (nearest === null || Math.abs(markerX - x) < Math.abs(nearest - x))) {
        nearest = markerX;
      }
    }
    if (nearest !== null) time = state.t0 + nearest / pxPerS();
    const value = state.rate ? sampleAt(Math.round(time * state.rate)) : undefined;
    const mark = { t: time, v: value === undefined ? undefined : value / 1000 };
    state.marks = state.marks.length >= 2 ? [mark] : [...state.marks, mark];
    showReadout();
    schedule();
  };

  calipersButton.addEventListener("click", () => {
    state.calipers = !state.calipers;
    state.marks = [];
    calipersButton.setAttribute("aria-pressed", String(state.calipers));
    canvas.classList.toggle("calipers", state.calipers);
    showReadout();
    schedule();
  });

  // --- Pointer and keys --------------------------------------------------------------

  let drag = null;
  canvas.addEventListener("pointerdown", (event) => {
    drag = { id: event.pointerId, x: event.clientX, t0: state.t0, moved: false };
    canvas.setPointerCapture(event.pointerId);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drag || drag.id !== event.pointerId) return;
    const dx = event.clientX - drag.x;
    if (Math.abs(dx) > 4) drag.moved = true;
    if (drag.moved) moveTo(drag.t0 - dx / pxPerS());
  });
  const release = (event) => {
    if (!drag || drag.id !== event.pointerId) return;
    const tapped = !drag.moved && event.type === "pointerup";
    drag = null;
    if (tapped && state.calipers) placeMark(event.clientX - canvas.getBoundingClientRect().left);
  };
  canvas.addEventListener("pointerup", release);
  canvas.addEventListener("pointercancel", release);
  canvas.addEventListener("keydown", (event) => {
    const step = event.shiftKey ? visibleS() * 0.9 : 1;
    if (event.key === "ArrowRight") moveTo(state.t0 + step);
    else if (event.key === "ArrowLeft") moveTo(state.t0 - step);
    else if (event.key === "+" || event.key === "=") zoomBy(1);
    else if (event.key === "-") zoomBy(-1);
    else return;
    event.preventDefault();
  });

  const jumpFromOverview = (event) => {
    const rect = overviewCanvas.getBoundingClientRect();
    const fraction = (event.clientX - rect.left) / rect.width;
    moveTo(fraction * duration - visibleS() / 2);
  };
  overviewCanvas.addEventListener("pointerdown", (event) => {
    overviewCanvas.setPointerCapture(event.pointerId);
    jumpFromOverview(event);
  });
  overviewCanvas.addEventListener("pointermove", (event) => {
    if (overviewCanvas.hasPointerCapture(event.pointerId)) jumpFromOverview(event);
  });

  new ResizeObserver(() => {
    resize();
    state.t0 = clampT0(state.t0);
    ensureLoaded();
    schedule();
  }).observe(canvas);

  resize();
  ensureLoaded();
  loadOverview();
  schedule();
  window.telemedEcg = { state, markerXs: () => [...state.markerXs] };
}
