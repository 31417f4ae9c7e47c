// The consult room: signaling over /ws/consults/<id>/ (docs/consult-protocol.md),
// one RTCPeerConnection with perfect negotiation (the doctor impolite, the
// patient polite), trickle ICE, ICE restarts, a socket that reconnects with
// backoff and jitter and re-syncs, chat, and media switches for weak links.
// The page's words come from the template ([data-strings]).

const root = document.querySelector("[data-consult-room]");

const strings = {};
for (const item of root.querySelectorAll("[data-strings] [data-key]")) strings[item.dataset.key] = item.textContent;
const t = (key) => strings[key] ?? key;

const $ = (selector) => root.querySelector(selector);
const statusLine = $("[data-status]");
const remoteVideo = $("[data-remote-video]");
const remoteNote = $("[data-remote-note]");
const localVideo = $("[data-local-video]");
const qualityMine = $("[data-quality-mine]");
const qualityTheirs = $("[data-quality-theirs]");
const chatLog = $("[data-chat-log]");
const chatForm = $("[data-chat-form]");
const endedPanel = $("[data-ended]");
const buttons = {
  mute: $("[data-action=mute]"),
  camera: $("[data-action=camera]"),
  audioOnly: $("[data-action=audio-only]"),
  start: $("[data-action=start]"),
  end: $("[data-action=end]"),
};

const QUALITY_EVERY_MS = 4000;
const DISCONNECTED_GRACE_MS = 5000;
const LOW_BANDWIDTH_VIDEO = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 15, max: 15 } };

// State, exposed for tests and for debugging as window.telemedConsult.
const room = {
  role: root.dataset.role,
  polite: root.dataset.role === "patient",
  socketState: "connecting", // connecting | open | closed
  consultState: null, // waiting | in_progress | ended
  mediaMode: "video", // video | audio | chat
  otherPresent: false,
  otherQuality: null,
  quality: null,
  iceServers: [],
  iceTransportPolicy: "all", // all | relay (TURN only)
  videoMaxKbps: 300,
  lastChatId: null,
  chat: [],
  welcomes: 0,
  iceRestarts: 0,
  peerConnections: 0,
  closeCode: null,
  pc: null,
};
window.telemedConsult = room;

let socket = null;
let attempt = 0;
let finished = false; // ended, replaced, refused: no more reconnects
let localStream = null;
let mediaPromise = null;
let muted = false;
let cameraOff = false;

// --- The page --------------------------------------------------------------------------

function setStatus(key) {
  room.status = key;
  statusLine.textContent = t(key);
}

function showCallStatus() {
  if (finished) return;
  if (room.socketState !== "open") return setStatus(room.welcomes ? "reconnecting" : "connecting");
  if (room.consultState === "waiting") {
    if (room.role === "patient") return setStatus("waiting_patient");
    return setStatus(room.otherPresent ? "waiting_doctor_ready" : "waiting_doctor_alone");
  }
  if (room.consultState === "in_progress") {
    if (!room.otherPresent) return setStatus("other_left");
    return setStatus(room.pc && room.pc.connectionState === "connected" ? "in_call" : "calling");
  }
}

function showButtons() {
  const inCall = room.consultState === "in_progress";
  if (buttons.start) buttons.start.hidden = room.consultState !== "waiting";
  if (buttons.end) buttons.end.hidden = !inCall;
  buttons.mute.textContent = t(muted ? "unmute" : "mute");
  buttons.mute.setAttribute("aria-pressed", String(muted));
  buttons.camera.textContent = t(cameraOff ? "camera_on" : "camera_off");
  buttons.camera.setAttribute("aria-pressed", String(cameraOff));
  buttons.audioOnly.textContent = t(room.mediaMode === "video" ? "audio_only" : "video_again");
  buttons.audioOnly.setAttribute("aria-pressed", String(room.mediaMode !== "video"));
  buttons.camera.disabled = room.mediaMode !== "video";
  remoteNote.hidden = room.mediaMode === "video" && Boolean(remoteVideo.srcObject);
  remoteNote.textContent = t(room.mediaMode === "video" ? "remote_waiting" : "remote_audio_only");
}

function render() {
  showCallStatus();
  showButtons();
}

function addChat(message) {
  if (room.chat.some((m) => m.id === message.id)) return; // the sender's copy is its acknowledgement
  room.chat.push(message);
  room.lastChatId = Math.max(room.lastChatId ?? 0, message.id);
  const item = document.createElement("li");
  item.className = message.from === room.role ? "mine" : "theirs";
  item.dataset.chatId = String(message.id);
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = message.from === room.role ? t("you") : message.name;
  const when = document.createElement("time");
  when.dateTime = message.sent_at;
  when.textContent = new Date(message.sent_at).toLocaleTimeString(document.documentElement.lang, {
    hour: "2-digit",
    minute: "2-digit",
  });
  const body = document.createElement("p");
  body.textContent = message.body;
  item.append(who, " ", when, body);
  chatLog.append(item);
  chatLog.scrollTop = chatLog.scrollHeight;
}

function finish(statusKey) {
  finished = true;
  setStatus(statusKey);
  closePeer();
  if (localStream) for (const track of localStream.getTracks()) track.stop();
  localStream = null;
  localVideo.srcObject = null;
  remoteVideo.srcObject = null;
  for (const button of Object.values(buttons)) if (button) button.hidden = true;
  chatForm.hidden = true; // the server has closed (or is closing) the socket
  if (statusKey === "ended") {
    room.consultState = "ended";
    endedPanel.hidden = false;
  }
}

// --- Media -----------------------------------------------------------------------------

function getMedia() {
  if (!mediaPromise) {
    mediaPromise = (async () => {
      const audio = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
      try {
        localStream = await navigator.mediaDevices.getUserMedia({ audio, video: LOW_BANDWIDTH_VIDEO });
      } catch {
        try {
          localStream = await navigator.mediaDevices.getUserMedia({ audio });
        } catch {
          localStream = new MediaStream();
          statusLine.textContent = t("no_media");
        }
      }
      for (const track of localStream.getVideoTracks()) track.contentHint = "motion";
      localVideo.srcObject = localStream;
      applyLocalSwitches();
      return localStream;
    })();
  }
  return mediaPromise;
}

function applyLocalSwitches() {
  if (!localStream) return;
  for (const track of localStream.getAudioTracks()) track.enabled = !muted && room.mediaMode !== "chat";
  for (const track of localStream.getVideoTracks()) track.enabled = !cameraOff;
}

function sender(kind) {
  if (!room.pc) return null;
  return room.pc.getTransceivers().find((tr) => tr.sender && tr.receiver.track.kind === kind)?.sender ?? null;
}

// Audio only (or chat only): stop sending video, keep the transceiver so that
// video can come back without a renegotiation.
async function applyMediaMode() {
  applyLocalSwitches();
  const video = sender("video");
  if (video && localStream) {
    const track = room.mediaMode === "video" ? localStream.getVideoTracks()[0] ?? null : null;
    if (video.track !== track) await video.replaceTrack(track).catch(() => {});
  }
  render();
}

async function capBitrates() {
  const video = sender("video");
  const audio = sender("audio");
  try {
    if (video) {
      const params = video.getParameters();
      if (!params.encodings || !params.encodings.length) params.encodings = [{}];
      params.encodings[0].maxBitrate = room.videoMaxKbps * 1000;
      params.encodings[0].priority = "low";
      params.encodings[0].networkPriority = "low";
      params.degradationPreference = "maintain-framerate";
      await video.setParameters(params);
    }
  } catch (error) {
    console.warn("consult: could not cap the video bitrate", error);
  }
  try {
    if (audio) {
      const params = audio.getParameters();
      if (!params.encodings || !params.encodings.length) params.encodings = [{}];
      params.encodings[0].priority = "high";
      params.encodings[0].networkPriority = "high";
      await audio.setParameters(params);
    }
  } catch (error) {
    console.warn("consult: could not raise the audio priority", error);
  }
}

// --- The peer connection (perfect negotiation) ----------------------------------------

let makingOffer = false;
let ignoreOffer = false;
let isSettingRemoteAnswerPending = false;
let pendingCandidates = [];
let signalQueue = Promise.resolve();
let disconnectedTimer = null;
let peerPromise = null;
let remoteStream = null;

function callShouldRun() {
  return !finished && room.consultState === "in_progress" && room.otherPresent;
}

function closePeer() {
  clearTimeout(disconnectedTimer);
  if (room.pc) {
    room.pc.onnegotiationneeded = null;
    room.pc.onicecandidate = null;
    room.pc.close();
  }
  room.pc = null;
  peerPromise = null;
  makingOffer = false;
  ignoreOffer = false;
  isSettingRemoteAnswerPending = false;
  pendingCandidates = [];
  remoteStream = null;
  remoteVideo.srcObject = null;
}

function restartIce(pc) {
  if (pc !== room.pc || pc.signalingState === "closed") return;
  room.iceRestarts += 1;
  pc.restartIce();
}

function ensurePeer() {
  if (!peerPromise) peerPromise = newPeer();
  return peerPromise;
}

async function newPeer() {
  const stream = await getMedia();
  const pc = new RTCPeerConnection({ iceServers: room.iceServers, iceTransportPolicy: room.iceTransportPolicy });
  room.pc = pc;
  room.peerConnections += 1;

  pc.onnegotiationneeded = async () => {
    try {
      makingOffer = true;
      await pc.setLocalDescription();
      send({ type: "signal", description: pc.localDescription.toJSON() });
    } catch (error) {
      console.warn("consult: offer failed", error);
    } finally {
      makingOffer = false;
    }
  };
  pc.onicecandidate = ({ candidate }) => {
    send({ type: "signal", candidate: candidate ? candidate.toJSON() : null });
  };
  pc.ontrack = ({ track }) => {
    // One stream for both kinds, whatever the other side's msid says.
    if (!remoteStream) remoteStream = new MediaStream();
    for (const old of remoteStream.getTracks()) if (old.kind === track.kind) remoteStream.removeTrack(old);
    remoteStream.addTrack(track);
    if (remoteVideo.srcObject !== remoteStream) remoteVideo.srcObject = remoteStream;
    remoteVideo.play().catch(() => {
      // Autoplay with sound refused: play muted rather than show nothing.
      remoteVideo.muted = true;
      remoteVideo.play().catch(() => {});
    });
    render();
  };
  pc.onconnectionstatechange = () => {
    room.connectionState = pc.connectionState;
    if (pc.connectionState === "connected") capBitrates();
    render();
  };
  pc.oniceconnectionstatechange = () => {
    clearTimeout(disconnectedTimer);
    if (pc.iceConnectionState === "failed") restartIce(pc);
    if (pc.iceConnectionState === "disconnected") {
      disconnectedTimer = setTimeout(() => {
        if (pc.iceConnectionState === "disconnected") restartIce(pc);
      }, DISCONNECTED_GRACE_MS);
    }
  };

  // addTrack, not addTransceiver: the polite side's transceivers are then
  // reused by the other side's offer instead of doubling the m-lines.
  for (const track of stream.getTracks()) pc.addTrack(track, stream);
  // Without a camera or microphone, still receive the other side's.
  if (!stream.getVideoTracks().length) pc.addTransceiver("video", { direction: "recvonly" });
  if (!stream.getAudioTracks().length) pc.addTransceiver("audio", { direction: "recvonly" });
  await applyMediaMode(); // audio only: the video sender sends nothing
  await capBitrates();
  return pc;
}

async function startOver() {
  closePeer();
  if (callShouldRun()) await ensurePeer();
  render();
}

async function onSignal(message) {
  if (!callShouldRun()) return;
  let pc = await ensurePeer();
  const { description, candidate } = message;
  if (description) {
    const readyForOffer = !makingOffer && (pc.signalingState === "stable" || isSettingRemoteAnswerPending);
    const offerCollision = description.type === "offer" && !readyForOffer;
    ignoreOffer = !room.polite && offerCollision;
    if (ignoreOffer) return;
    isSettingRemoteAnswerPending = description.type === "answer";
    try {
      await pc.setRemoteDescription(description);
    } catch (error) {
      isSettingRemoteAnswerPending = false;
      if (description.type !== "offer") throw error;
      // An offer from a fresh page of the other side (new DTLS identity)
      // doesn't fit this connection: answer it with a new one.
      closePeer();
      pc = await ensurePeer();
      await pc.setRemoteDescription(description);
    }
    isSettingRemoteAnswerPending = false;
    for (const queued of pendingCandidates.splice(0)) await pc.addIceCandidate(queued).catch(() => {});
    if (description.type === "offer") {
      await pc.setLocalDescription();
      send({ type: "signal", description: pc.localDescription.toJSON() });
    }
  } else if ("candidate" in message) {
    const init = candidate ?? { candidate: "" }; // null: the end of the candidates
    if (!pc.remoteDescription) {
      pendingCandidates.push(init);
      return;
    }
    try {
      await pc.addIceCandidate(init);
    } catch (error) {
      if (!ignoreOffer) console.warn("consult: candidate refused", error);
    }
  }
}

// --- Quality ---------------------------------------------------------------------------

let previousStats = null;

async function measureQuality() {
  const pc = room.pc;
  if (!pc || pc.connectionState !== "connected") return;
  const report = await pc.getStats();
  let rttMs = null;
  let bytesSent = 0;
  let packetsLost = 0;
  let packetsReceived = 0;
  report.forEach((stat) => {
    if (stat.type === "candidate-pair" && stat.nominated && stat.state === "succeeded") {
      if (typeof stat.currentRoundTripTime === "number") rttMs = stat.currentRoundTripTime * 1000;
    }
    if (stat.type === "outbound-rtp") bytesSent += stat.bytesSent ?? 0;
    if (stat.type === "inbound-rtp") {
      packetsLost += stat.packetsLost ?? 0;
      packetsReceived += stat.packetsReceived ?? 0;
    }
  });
  const now = performance.now();
  let bitrateKbps = null;
  let lossPct = null;
  if (previousStats && previousStats.pc === pc) {
    const seconds = (now - previousStats.at) / 1000;
    if (seconds > 0) bitrateKbps = Math.max(0, ((bytesSent - previousStats.bytesSent) * 8) / 1000 / seconds);
    const lost = Math.max(0, packetsLost - previousStats.packetsLost);
    const received = Math.max(0, packetsReceived - previousStats.packetsReceived);
    lossPct = lost + received > 0 ? (100 * lost) / (lost + received) : 0;
  }
  previousStats = { pc, at: now, bytesSent, packetsLost, packetsReceived };
  const round = (value, digits) => (value === null ? null : Number(value.toFixed(digits)));
  room.quality = { rtt_ms: round(rttMs, 0), loss_pct: round(lossPct, 1), bitrate_kbps: round(bitrateKbps, 0) };
  qualityMine.textContent = qualityText(t("quality_mine"), room.quality);
  send({ type: "quality", quality: room.quality });
}

function qualityText(who, quality) {
  if (!quality) return "";
  const parts = [];
  if (quality.rtt_ms !== null && quality.rtt_ms !== undefined) parts.push(`${t("rtt")} ${quality.rtt_ms} ms`);
  if (quality.loss_pct !== null && quality.loss_pct !== undefined) parts.push(`${t("loss")} ${quality.loss_pct}%`);
  if (quality.bitrate_kbps !== null && quality.bitrate_kbps !== undefined) parts.push(`${quality.bitrate_kbps} kbps`);
  return parts.length ? `${who}: ${parts.join(" · ")}` : "";
}

function showTheirQuality(quality) {
  room.otherQuality = quality;
  qualityTheirs.textContent = qualityText(t("quality_theirs"), quality);
}

setInterval(() => {
  measureQuality().catch(() => {});
}, QUALITY_EVERY_MS);

// --- The socket ------------------------------------------------------------------------

function send(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

function applyState(state) {
  const wasInCall = callShouldRun();
  room.welcomes += 1;
  room.iceServers = state.ice_servers ?? [];
  room.iceTransportPolicy = state.ice_transport_policy === "relay" ? "relay" : "all";
  if (state.media && typeof state.media.video_max_kbps === "number") room.videoMaxKbps = state.media.video_max_kbps;
  room.consultState = state.consult.state;
  room.mediaMode = state.consult.media_mode;
  const other = state.present.find((p) => p.role !== room.role);
  room.otherPresent = Boolean(other);
  showTheirQuality(other ? other.quality : null);
  for (const message of state.chat) addChat(message);
  if (state.chat_more) send({ type: "sync", chat_after: room.lastChatId });
  if (room.consultState === "ended") return finish("ended");
  getMedia(); // the local preview; nobody else sees it before the doctor starts
  // Our socket is new: the other side sees us join again and starts over,
  // so this side starts over too (a fresh connection, fresh ICE).
  if (callShouldRun()) startOver();
  else if (wasInCall) closePeer();
  applyMediaMode();
}

const handlers = {
  welcome: applyState,
  sync: (message) => {
    for (const chat of message.chat) addChat(chat);
    if (message.chat_more) send({ type: "sync", chat_after: room.lastChatId });
  },
  peer(message) {
    if (message.role === room.role) return;
    if (message.event === "quality") return showTheirQuality(message.quality);
    if (message.event === "joined") {
      room.otherPresent = true;
      showTheirQuality(message.quality);
      // A fresh page (or socket) on the other side: start over.
      if (callShouldRun()) startOver();
    }
    if (message.event === "left") {
      room.otherPresent = false;
      showTheirQuality(null);
      closePeer();
    }
    render();
  },
  started() {
    room.consultState = "in_progress";
    if (callShouldRun()) ensurePeer().then(render);
    render();
  },
  signal(message) {
    signalQueue = signalQueue.then(() => onSignal(message)).catch((error) => console.warn("consult: signal", error));
  },
  chat: addChat,
  media(message) {
    room.mediaMode = message.mode;
    applyMediaMode();
  },
  check() {},
  ended() {
    finish("ended");
  },
  replaced() {
    finish("replaced");
  },
  error(message) {
    if (message.code === "ended") return finish("ended");
    if (message.code === "too_early" || message.code === "too_late") return;
    console.warn("consult: server says", message.code, message.message);
  },
};

function socketUrl() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = room.lastChatId !== null ? `?chat_after=${room.lastChatId}` : "";
  return `${scheme}://${location.host}${root.dataset.socket}${query}`;
}

function connect() {
  room.socketState = "connecting";
  const ws = new WebSocket(socketUrl());
  socket = ws;
  ws.addEventListener("open", () => {
    attempt = 0;
    room.socketState = "open";
  });
  ws.addEventListener("message", (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    const handler = handlers[message.type];
    if (handler) handler(message);
    render();
  });
  ws.addEventListener("close", (event) => {
    if (socket !== ws) return;
    room.socketState = "closed";
    room.closeCode = event.code;
    const final = { 4401: "not_signed_in", 4403: "not_open", 4404: "not_found", 4409: "replaced", 4410: "ended" };
    if (final[event.code]) return finish(final[event.code]);
    if (finished) return;
    // Transient: back off, 0.5 s doubling up to 15 s, ±30 %.
    const delay = Math.min(15000, 500 * 2 ** attempt) * (0.7 + Math.random() * 0.6);
    attempt += 1;
    render();
    setTimeout(connect, delay);
  });
}

// --- Controls --------------------------------------------------------------------------

buttons.mute.addEventListener("click", () => {
  muted = !muted;
  applyLocalSwitches();
  render();
});
buttons.camera.addEventListener("click", () => {
  cameraOff = !cameraOff;
  applyLocalSwitches();
  render();
});
buttons.audioOnly.addEventListener("click", () => {
  room.mediaMode = room.mediaMode === "video" ? "audio" : "video";
  send({ type: "media", mode: room.mediaMode });
  applyMediaMode();
});
buttons.start?.addEventListener("click", () => send({ type: "start" }));
buttons.end?.addEventListener("click", () => send({ type: "end" }));
chatForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const input = chatForm.elements.body;
  const body = input.value.trim();
  if (!body || !socket || socket.readyState !== WebSocket.OPEN) return;
  send({ type: "chat", body });
  input.value = "";
});

render();
connect();
