// The doctor's dashboard, live: the triage queue is re-read from the server
// (the partial at [data-triage-url]) when an in-app notification arrives
// (a new alert tells the patient's doctors) and whenever the notification
// socket (re)connects or the page comes back into view, so a dropped
// message costs nothing: the database is the truth. The waiting room keeps
// itself live (waiting-room.js). Without JavaScript the page is complete as
// rendered, and forms post normally.

const dashboard = { refreshes: 0, pending: null, busy: false };
window.telemedDashboard = dashboard; // for tests and debugging

function triage() {
  return document.querySelector("[data-triage]");
}

function typing(section) {
  // Don't throw away a note the doctor is writing; try again shortly.
  return [...section.querySelectorAll("input[name=note]")].some((input) => input.value.trim() !== "");
}

async function refresh() {
  const section = triage();
  if (!section || dashboard.busy) return;
  if (typing(section)) {
    schedule(5000);
    return;
  }
  dashboard.busy = true;
  try {
    const response = await fetch(section.dataset.triageUrl, {
      credentials: "same-origin",
      headers: { "HX-Request": "true" },
    });
    if (!response.ok) return;
    const html = await response.text();
    const holder = document.createElement("div");
    holder.innerHTML = html;
    const fresh = holder.querySelector("[data-triage]");
    const current = triage();
    if (!fresh || !current) return;
    current.replaceWith(fresh);
    if (window.htmx) window.htmx.process(fresh);
    const count = document.querySelector("[data-glance-alerts]");
    if (count) count.textContent = fresh.dataset.total;
    dashboard.refreshes += 1;
  } catch {
    schedule(10000);
  } finally {
    dashboard.busy = false;
  }
}

function schedule(delay) {
  clearTimeout(dashboard.pending);
  dashboard.pending = setTimeout(refresh, delay);
}

if (triage()) {
  // notifications.js sends "telemed:notification" for each notice and on
  // each (re)connect of its socket.
  window.addEventListener("telemed:notification", () => schedule(300));
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") schedule(300);
  });
  document.body.addEventListener("htmx:afterSwap", () => {
    const section = triage();
    const count = document.querySelector("[data-glance-alerts]");
    if (section && count) count.textContent = section.dataset.total;
  });
}
