// The patient chart (templates/care/chart.html): marks each alert of the
// last 90 days on the trends vitals-chart.js draws, as a triangle at the
// top of the plot over the reading that raised it and a dashed line down to
// it, in the alert's colour: filled while open, hollow once acknowledged.
// The alerts come from the page ([data-chart-alerts] li: kind, time, severity, status).
const root = document.querySelector("[data-vitals-chart]");
const list = document.querySelector("[data-chart-alerts]");
const RANK = { attention: 1, urgent: 2, critical: 3 };
const COLOUR = ["#b42318", "#9a6700", "#c25400", "#b42318"];

function drawAlerts(u, alerts) {
  const { ctx, bbox } = u;
  const ratio = devicePixelRatio;
  const half = 5.5 * ratio;
  const tip = bbox.top + 9 * ratio;
  ctx.save();
  for (const alert of alerts) {
    const x = u.valToPos(alert.t, "x", true);
    if (x < bbox.left - half || x > bbox.left + bbox.width + half) continue;
    const colour = COLOUR[alert.rank] || COLOUR[0];
    ctx.setLineDash([2 * ratio, 3 * ratio]);
    ctx.globalAlpha = 0.5;
    ctx.lineWidth = ratio;
    ctx.strokeStyle = colour;
    ctx.beginPath();
    ctx.moveTo(x, tip);
    ctx.lineTo(x, bbox.top + bbox.height);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.globalAlpha = 1;
    ctx.beginPath();
    ctx.moveTo(x - half, bbox.top);
    ctx.lineTo(x + half, bbox.top);
    ctx.lineTo(x, tip);
    ctx.closePath();
    if (alert.open) {
      ctx.fillStyle = colour;
      ctx.fill();
    } else {
      ctx.fillStyle = "#fff";
      ctx.fill();
      ctx.lineWidth = 1.5 * ratio;
      ctx.stroke();
    }
  }
  ctx.restore();
}

if (root && list) {
  const alerts = Array.from(list.querySelectorAll("li"), (item) => ({
    kind: item.dataset.kind,
    t: Number(item.dataset.t),
    rank: RANK[item.dataset.severity] || 3,
    open: item.dataset.status === "open",
  }));
  root.addEventListener("vitals-chart:drawn", (event) => {
    const { plot, chart, figure } = event.detail;
    const mine = alerts.filter((alert) => alert.kind === chart.kind);
    if (figure) figure.dataset.alerts = String(mine.length);
    if (!mine.length) return;
    (plot.hooks.draw ||= []).push((u) => drawAlerts(u, mine));
    plot.redraw(false);
  });
}
