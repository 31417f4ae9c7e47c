// Live in-app notifications: keeps the bell's count current and shows a
// short note when one arrives. Reconnects with backoff and jitter.
const bell = document.querySelector("[data-notifications-socket]");
const toasts = document.querySelector("[data-toasts]");

function setCount(count) {
  const badge = bell.querySelector("[data-unread-count]");
  badge.textContent = String(count);
  badge.hidden = count < 1;
}

function toast(title, body, urgent) {
  const note = document.createElement("div");
  note.className = urgent ? "toast urgent" : "toast";
  const strong = document.createElement("strong");
  strong.textContent = title;
  const text = document.createElement("p");
  text.textContent = body;
  note.append(strong, text);
  toasts.append(note);
  setTimeout(() => note.remove(), urgent ? 30000 : 8000);
}

function connect(attempt) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}${bell.dataset.notificationsSocket}`);
  socket.addEventListener("open", () => { attempt = 0; });
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    // Other modules of the page (the doctor's dashboard) re-read what they show.
    window.dispatchEvent(new CustomEvent("telemed:notification", { detail: message }));
    if (message.type === "unread") setCount(message.unread);
    if (message.type === "notification") {
      setCount(message.unread);
      toast(message.title, message.body, message.urgent);
    }
  });
  socket.addEventListener("close", (event) => {
    if (event.code === 4401) return; // signed out
    const delay = Math.min(30000, 1000 * 2 ** attempt) * (0.5 + Math.random() / 2);
    setTimeout(() => connect(attempt + 1), delay);
  });
}

if (bell && toasts && "WebSocket" in window) connect(0);
