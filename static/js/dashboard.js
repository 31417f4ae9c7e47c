// The doctor's dashboard, live. Two parts are re-read from the server and
// swapped in, so a dropped message costs nothing (the database is the truth):
// - the triage queue ([data-triage], its partial at data-triage-url), when an
//   in-app notification arrives (a new alert tells the patient's doctors),
//   whenever the notification socket (re)connects, when the page comes back
//   into view, and every two minutes while it is in view;
// - today's appointments ([data-today], at data-today-url), when the live
//   waiting room (waiting-room.js, its own socket) changes: a patient
//   arrives or leaves, a consult starts or ends.
// Without JavaScript the page is complete as rendered, and forms post normally.

const dashboard = { refreshes: 0, todayRefreshes: 0, pending: null, todayPending: null, busy: false };
window.telemedDashboard = dashboard; // for tests and debugging

function triage() {
  return document.querySelector("[data-triage]");
}

function typing(section) {
  // Don't throw away a note the doctor is writing; try again shortly.
  return [...section.querySelectorAll("input[name=note]")].some((input) => input.value.trim() !== "");
}

function setGlance(key, value) {
  const count = document.querySelector(`[data-glance-${key}]`);
  if (count && value !== undefined) count.textContent = value;
}

// Fetch ``url`` and put the element matching ``selector`` of the answer in
// place of the page's; returns the new element, or null.
async function swap(selector, url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { "HX-Request": "true" } });
  if (!response.ok) return null;
  const holder = document.createElement("div");
  holder.innerHTML = await response.text();
  const fresh = holder.querySelector(selector);
  const current = document.querySelector(selector);
  if (!fresh || !current) return null;
  current.replaceWith(fresh);
  if (window.htmx) window.htmx.process(fresh);
  return fresh;
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
    const fresh = await swap("[data-triage]", section.dataset.triageUrl);
    if (fresh) {
      setGlance("alerts", fresh.dataset.total);
      dashboard.refreshes += 1;
    }
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

async function refreshToday() {
  const section = document.querySelector("[data-today]");
  if (!section) return;
  try {
    const fresh = await swap("[data-today]", section.dataset.todayUrl);
    if (fresh) {
      setGlance("today", fresh.dataset.consults);
      dashboard.todayRefreshes += 1;
    }
  } catch {
    scheduleToday(10000);
  }
}

function scheduleToday(delay) {
  clearTimeout(dashboard.todayPending);
  dashboard.todayPending = setTimeout(refreshToday, delay);
}

function countWaiting() {
  const list = document.querySelector("[data-waiting-list]");
  if (list) setGlance("waiting", String(list.hidden ? 0 : list.querySelectorAll("li").length));
}

if (triage()) {
  // notifications.js sends "telemed:notification" for each notice and on
  // each (re)connect of its socket.
  window.addEventListener("telemed:notification", () => schedule(300));
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") {
      schedule(300);
      scheduleToday(300);
    }
  });
  document.body.addEventListener("htmx:afterSwap", () => {
    const section = triage();
    if (section) setGlance("alerts", section.dataset.total);
  });
  // Changes that send no notice (another doctor acknowledged an alert) show
  // within a couple of minutes.
  setInterval(() => {
    if (document.visibilityState === "visible") schedule(0);
  }, 120000);
  const waiting = document.querySelector("[data-waiting-now]");
  if (waiting) {
    new MutationObserver(() => {
      countWaiting();
      scheduleToday(500);
    }).observe(waiting, { childList: true, subtree: true, characterData: true, attributes: true, attributeFilter: ["hidden"] });
  }
}
