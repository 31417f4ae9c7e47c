// Readings over time on "My readings" and a patient's readings page: fetch
// the chart JSON named by [data-vitals-chart] (data-url), draw one uPlot
// chart per kind with the severity bands shaded behind the lines and the
// flagged readings ringed. Long periods come as day buckets (mean, with a
// lowest-highest band). Strings come from the template ([data-strings]).
const root = document.querySelector("[data-vitals-chart]");

const BAND_FILL = ["rgba(26,127,55,0.10)", "rgba(214,160,0,0.18)", "rgba(214,100,0,0.20)", "rgba(180,35,24,0.20)"];
const FLAG_COLOUR = ["", "#9a6700", "#c25400", "#b42318"];
const LINE_COLOUR = ["#1f5f8b", "#7a4fb0"];
const RANGE_FILL = ["rgba(31,95,139,0.15)", "rgba(122,79,176,0.15)"];
const HEIGHT_PX = 220;

const strings = {};
if (root) {
  for (const item of root.querySelectorAll("[data-strings] [data-key]")) strings[item.dataset.key] = item.textContent;
}

function formatter(timeZone, options) {
  const lang = document.documentElement.lang || undefined;
  try {
    return new Intl.DateTimeFormat(lang, { timeZone, ...options });
  } catch (error) {
    return new Intl.DateTimeFormat(lang, options);
  }
}

function severityAt(bands, value) {
  for (const [low, high, rank] of bands) if (value >= low && value <= high) return rank;
  return 0;
}

// Shade the first value's bands; draw the other values' band edges as dashed lines.
function drawBands(u, chart) {
  const { ctx, bbox } = u;
  const bottomPx = bbox.top + bbox.height;
  ctx.save();
  chart.series.forEach((series, index) => {
    if (index === 0) {
      for (const [low, high, rank] of series.bands) {
        const a = u.valToPos(high, "y", true);
        const b = u.valToPos(low, "y", true);
        const top = Math.max(bbox.top, Math.min(a, b));
        const bottom = Math.min(bottomPx, Math.max(a, b));
        if (bottom <= top) continue;
        ctx.fillStyle = BAND_FILL[rank] || BAND_FILL[0];
        ctx.fillRect(bbox.left, top, bbox.width, bottom - top);
      }
      return;
    }
    ctx.strokeStyle = LINE_COLOUR[index % LINE_COLOUR.length];
    ctx.globalAlpha = 0.45;
    ctx.lineWidth = Math.max(1, devicePixelRatio);
    ctx.setLineDash([4 * devicePixelRatio, 4 * devicePixelRatio]);
    series.bands.forEach(([, high, rank], bandIndex) => {
      const next = series.bands[bandIndex + 1];
      if (!next || (rank === 0 && next[2] === 0)) return;
      const y = Math.round(u.valToPos(high, "y", true));
      if (y < bbox.top || y > bottomPx) return;
      ctx.beginPath();
      ctx.moveTo(bbox.left, y);
      ctx.lineTo(bbox.left + bbox.width, y);
      ctx.stroke();
    });
  });
  ctx.restore();
}

// Ring each flagged reading (or day bucket) on the first value's line; in
// buckets at whichever of its lowest and highest lies in the worse band.
function drawFlags(u, chart) {
  const { ctx, bbox } = u;
  const first = chart.series[0];
  const radius = 4.5 * devicePixelRatio;
  ctx.save();
  ctx.lineWidth = 2.5 * devicePixelRatio;
  chart.severity.forEach((rank, i) => {
    if (!rank) return;
    let value = first.y[i];
    if (first.min && first.max) {
      value = severityAt(first.bands, first.min[i]) > severityAt(first.bands, first.max[i]) ? first.min[i] : first.max[i];
    }
    const x = u.valToPos(chart.t[i], "x", true);
    const y = u.valToPos(value, "y", true);
    if (x < bbox.left - radius || x > bbox.left + bbox.width + radius || y < bbox.top - radius || y > bbox.top + bbox.height + radius) return;
    ctx.beginPath();
    ctx.arc(x, y, radius, 0, 2 * Math.PI);
    ctx.fillStyle = "#fff";
    ctx.fill();
    ctx.strokeStyle = FLAG_COLOUR[rank] || FLAG_COLOUR[3];
    ctx.stroke();
  });
  ctx.restore();
}

// The y range holds the data and the whole normal band of the first value,
// so that a steady series looks steady and a step out of range looks like one.
function yRange(chart) {
  const normal = chart.series[0].bands.filter((band) => band[2] === 0);
  return (u, dataMin, dataMax) => {
    let low = dataMin;
    let high = dataMax;
    if (normal.length) {
      low = Math.min(low, ...normal.map((band) => band[0]));
      high = Math.max(high, ...normal.map((band) => band[1]));
    }
    const pad = Math.max((high - low) * 0.06, Math.abs(high) * 0.02, 0.5);
    return [low - pad, high + pad];
  };
}

function options(chart, timeZone, width) {
  const days = chart.bucket_days > 0;
  const many = chart.t.length > 120;
  const dayFormat = formatter(timeZone, { month: "numeric", day: "numeric" });
  const monthFormat = formatter(timeZone, { year: "numeric", month: "numeric" });
  const timeFormat = formatter(timeZone, { hour: "2-digit", minute: "2-digit" });
  const fullFormat = formatter(timeZone, { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
  const series = [{ value: (u, v) => (v == null ? "" : fullFormat.format(new Date(v * 1000))) }];
  const bands = [];
  chart.series.forEach((one, index) => {
    series.push({
      label: one.label,
      stroke: LINE_COLOUR[index % LINE_COLOUR.length],
      width: 2,
      points: { show: !many, size: 6 },
    });
  });
  if (days) {
    chart.series.forEach((one, index) => {
      const colour = RANGE_FILL[index % RANGE_FILL.length];
      const low = series.length;
      series.push({ label: `${one.label} (${strings.lowest || "lowest"})`, stroke: colour, width: 1, points: { show: false } });
      series.push({ label: `${one.label} (${strings.highest || "highest"})`, stroke: colour, width: 1, points: { show: false } });
      bands.push({ series: [low + 1, low], fill: colour });
    });
  }
  const first = chart.t[0];
  const last = chart.t[chart.t.length - 1];
  return {
    width,
    height: HEIGHT_PX,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), timeZone),
    series,
    bands,
    legend: { show: true, live: true },
    cursor: { drag: { x: false, y: false } },
    scales: {
      x: { time: true, range: first === last ? [first - 86400, last + 86400] : [first, last] },
      y: { range: yRange(chart) },
    },
    axes: [
      {
        space: 60,
        values: (u, splits) => {
          const span = (u.scales.x.max - u.scales.x.min) / 86400;
          const format = span > 300 ? monthFormat : span > 2 ? dayFormat : timeFormat;
          return splits.map((split) => format.format(new Date(split * 1000)));
        },
      },
      { size: 48 },
    ],
    hooks: {
      drawClear: [(u) => drawBands(u, chart)],
      draw: [(u) => drawFlags(u, chart)],
    },
  };
}

function data(chart) {
  const columns = [chart.t, ...chart.series.map((one) => one.y)];
  if (chart.bucket_days > 0) for (const one of chart.series) columns.push(one.min, one.max);
  return columns;
}

function draw(chart, timeZone) {
  const figure = document.createElement("figure");
  figure.className = "vitals-chart-figure";
  figure.dataset.kind = chart.kind;
  figure.dataset.points = String(chart.t.length);
  const caption = document.createElement("figcaption");
  caption.textContent = `${chart.label} (${chart.unit})`;
  if (chart.bucket_days > 0 && strings.bucket) {
    const note = document.createElement("span");
    note.className = "vitals-chart-note";
    note.textContent = strings.bucket.replace("%(days)s", String(chart.bucket_days));
    caption.append(note);
  }
  const holder = document.createElement("div");
  holder.className = "vitals-chart-plot";
  figure.append(caption, holder);
  root.append(figure);
  const plot = new uPlot(options(chart, timeZone, holder.clientWidth || root.clientWidth), data(chart), holder);
  // A page may add to the drawing (the patient chart marks the alerts): plot.hooks, then plot.redraw().
  root.dispatchEvent(new CustomEvent("vitals-chart:drawn", { detail: { plot, chart, figure } }));
  return { plot, holder };
}

async function load() {
  root.hidden = false;
  const status = document.createElement("p");
  status.className = "muted";
  status.textContent = strings.loading || "";
  root.append(status);
  let body;
  try {
    const response = await fetch(root.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    body = await response.json();
  } catch (error) {
    status.textContent = strings.failed || "";
    root.dataset.state = "failed";
    return;
  }
  if (!body.charts.length) {
    status.textContent = strings.empty || "";
    root.dataset.state = "empty";
    return;
  }
  status.remove();
  const drawn = body.charts.map((chart) => draw(chart, body.timezone));
  let width = root.clientWidth;
  new ResizeObserver(() => {
    if (root.clientWidth === width) return;
    width = root.clientWidth;
    for (const { plot, holder } of drawn) plot.setSize({ width: holder.clientWidth, height: HEIGHT_PX });
  }).observe(root);
  root.dataset.state = "drawn";
}

if (root && root.dataset.url && typeof uPlot === "function") load();
