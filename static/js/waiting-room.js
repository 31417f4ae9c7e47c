// The doctor's "Waiting now", live: the socket /ws/consults/waiting/ sends
// the whole list on connect (and whenever it went stale) and each change as
// it happens (docs/consult-protocol.md, "The doctor's waiting room"). The
// server formats the times in the doctor's zone; the words come from the
// template ([data-strings]). Without JavaScript the server-rendered list stays.

const root = document.querySelector("[data-waiting-now]");

if (root && "WebSocket" in window) {
  const strings = {};
  for (const item of root.querySelectorAll("[data-strings] [data-key]")) strings[item.dataset.key] = item.textContent;
  const t = (key) => strings[key] ?? key;
  const list = root.querySelector("[data-waiting-list]");
  const empty = root.querySelector("[data-waiting-empty]");
  const status = root.querySelector("[data-waiting-status]");

  // State, exposed for tests and for debugging as window.telemedWaiting.
  const waiting = {
    socketState: "connecting", // connecting | open | closed | refused
    closeCode: null,
    lists: 0, // "waiting" messages received
    changes: 0, // "changed" messages received
    patients: new Map(), // appointment id -> entry
  };
  window.telemedWaiting = waiting;

  const CHECKS = { video: ["check_video", "ok"], audio: ["check_audio", "warn"], chat: ["check_chat", "warn"] };

  function item(patient) {
    const li = document.createElement("li");
    li.dataset.appointmentId = String(patient.appointment_id);
    const link = document.createElement("a");
    link.href = patient.url;
    const name = document.createElement("strong");
    name.textContent = patient.name;
    link.append(name);
    const when = document.createElement("span");
    when.dataset.waitingWhen = "";
    when.textContent =
      patient.state === "in_progress" ? t("in_consult") : t("waiting_since").replace("{since}", patient.since_label);
    li.append(link, " — ", when);
    const check = patient.check && CHECKS[patient.check.recommendation];
    if (check) {
      const badge = document.createElement("span");
      badge.className = `badge ${check[1]}`;
      badge.textContent = t(check[0]);
      li.append(" ", badge);
    }
    return li;
  }

  function render() {
    // Say so while the list may be out of date (not before the first list).
    status.hidden = waiting.socketState === "open" || waiting.socketState === "refused" || waiting.lists === 0;
    if (waiting.lists === 0) return; // the server-rendered list stands until then
    const patients = [...waiting.patients.values()].sort((a, b) => Date.parse(a.since) - Date.parse(b.since));
    list.replaceChildren(...patients.map(item));
    list.hidden = patients.length === 0;
    empty.hidden = patients.length > 0;
  }

  const handlers = {
    waiting(message) {
      waiting.lists += 1;
      waiting.patients = new Map(message.patients.map((p) => [p.appointment_id, p]));
    },
    changed(message) {
      waiting.changes += 1;
      if (message.present) waiting.patients.set(message.appointment_id, message);
      else waiting.patients.delete(message.appointment_id);
    },
  };

  let attempt = 0;

  function connect() {
    waiting.socketState = "connecting";
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}${root.dataset.socket}`);
    socket.addEventListener("open", () => {
      attempt = 0;
      waiting.socketState = "open";
    });
    socket.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      const handler = handlers[message.type];
      if (!handler) return;
      handler(message);
      render();
    });
    socket.addEventListener("close", (event) => {
      waiting.closeCode = event.code;
      // Signed out, or not a doctor: the server-rendered list is all there is.
      if (event.code === 4401 || event.code === 4403) {
        waiting.socketState = "refused";
        render();
        return;
      }
      waiting.socketState = "closed";
      render();
      // Transient: back off, 0.5 s doubling up to 15 s, ±30 %; the list comes again on connect.
      const delay = Math.min(15000, 500 * 2 ** attempt) * (0.7 + Math.random() * 0.6);
      attempt += 1;
      setTimeout(connect, delay);
    });
  }

  connect();
}
