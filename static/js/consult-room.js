// The consult room: signaling over /ws/consults/<id>/ (docs/consult-protocol.md),
// one RTCPeerConnection with perfect negotiation (the doctor impolite, the
// patient polite), trickle ICE, ICE restarts, a socket that reconnects with
// backoff and jitter and re-syncs, chat, and media switches for weak links:
// audio only by hand or automatically when the outgoing bitrate stays low
// (LinkWatch), camera switching without renegotiation, and the devices chosen
// on the pre-call check page. The page's words come from the template
// ([data-strings]).

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
const weakPanel = $("[data-weak-link]");
const weakText = $("[data-weak-text]");
const chatLog = $("[data-chat-log]");
const chatForm = $("[data-chat-form]");
const endedPanel = $("[data-ended]");
const buttons = {
  mute: $("[data-action=mute]"),
  camera: $("[data-action=camera]"),
  audioOnly: $("[data-action=audio-only]"),
  switchCamera: $("[data-action=switch-camera]"),
  videoBack: $("[data-action=video-back]"),
  start: $("[data-action=start]"),
  end: $("[data-action=end]"),
};

const STATS_EVERY_MS = 2000;
const QUALITY_EVERY_MS = 4000;
const DEVICES_KEY = "telemed.consult.devices"; // chosen on the pre-call check page
const DISCONNECTED_GRACE_MS = 5000;
// How long the polite patient waits for the doctor's first offer before offering itself.
const POLITE_FIRST_OFFER_WAIT_MS = 3000;
const LOW_BANDWIDTH_VIDEO = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 15, max: 15 } };

// Decides from the getStats samples of one side (one every 2 s) when a weak
// link should give up video for audio, and when to offer video back. Pure:
// samples in, decisions out, no clock or page of its own, so tests can feed it
// synthetic samples (window.telemedConsult.LinkWatch).
//
// A sample: {at_ms, mode ("video" | "audio" | "chat"), auto (true when this
// side turned video off itself), available_kbps (the selected candidate
// pair's availableOutgoingBitrate, or null), video_sent_kbps (what the video
// sender sent since the last sample while its encoder said bandwidth held it
// back, else null: a still picture needs little and is no sign of a weak link)}.
// observe() answers "audio_only" (turn video off now), "offer_video" (the
// link has recovered: offer video back, once) or null. Video never comes
// back by itself: a link that hovers around the limit would flap.
class LinkWatch {
  constructor({
    weakBelowKbps = 150,
    weakForMs = 10_000,
    recoveredAboveKbps = 300,
    recoveredForMs = 15_000,
    maxGapMs = 5_000, // a longer silence between samples breaks a run
  } = {}) {
    Object.assign(this, { weakBelowKbps, weakForMs, recoveredAboveKbps, recoveredForMs, maxGapMs });
    this.reset();
  }

  reset() {
    this.weakSince = null;
    this.strongSince = null;
    this.offered = false;
    this.lastAt = null;
    this.lastMode = null;
  }

  observe(sample) {
    const { at_ms: at, mode } = sample;
    const gap = this.lastAt !== null && (at - this.lastAt > this.maxGapMs || at < this.lastAt);
    if (gap || mode !== this.lastMode) {
      this.weakSince = null;
      this.strongSince = null;
    }
    if (mode !== this.lastMode) this.offered = false;
    this.lastAt = at;
    this.lastMode = mode;
    if (mode === "video") return this.observeVideo(sample);
    return this.observeWithoutVideo(sample);
  }

  observeVideo({ at_ms: at, available_kbps: available, video_sent_kbps: sent }) {
    // The estimate of what the link can carry; without it (browsers that
    // don't report it), what the video sender managed to send.
    const kbps = typeof available === "number" ? available : sent;
    if (typeof kbps !== "number" || kbps >= this.weakBelowKbps) {
      this.weakSince = null;
      return null;
    }
    this.weakSince ??= at;
    if (at - this.weakSince < this.weakForMs) return null;
    this.weakSince = null;
    return "audio_only";
  }

  observeWithoutVideo({ at_ms: at, auto, available_kbps: available }) {
    // Only after an automatic switch: a person who chose audio only chose it.
    if (!auto || this.offered || typeof available !== "number" || available <= this.recoveredAboveKbps) {
      this.strongSince = null;
      return null;
    }
    this.strongSince ??= at;
    if (at - this.strongSince < this.recoveredForMs) return null;
    this.offered = true;
    return "offer_video";
  }
}

// State, exposed for tests and for debugging as window.telemedConsult.
const room = {
  role: root.dataset.role,
  polite: root.dataset.role === "patient",
  socketState: "connecting", // connecting | open | closed
  consultState: null, // waiting | in_progress | ended
  mediaMode: "video", // video | audio | chat
  autoAudio: false, // this side turned video off because the link was weak
  videoOffered: false, // ...and the link has recovered since: video is offered back
  link: null, // the last getStats sample given to the LinkWatch
  cameras: 0, // video inputs this device has
  otherWeak: false, // the other side turned video off because its link was weak
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
  LinkWatch,
};
window.telemedConsult = room;
const linkWatch = new LinkWatch();

let socket = null;
let attempt = 0;
let finished = false; // ended, replaced, refused: no more reconnects
let localStream = null;
let mediaPromise = null;
let muted = false;
let cameraOff = false;
let switchingCamera = false;

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
  if (finished) {
    weakPanel.hidden = true; // finish() has hidden the buttons
    return;
  }
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
  buttons.switchCamera.hidden = !canSwitchCamera();
  buttons.switchCamera.disabled = room.mediaMode !== "video" || switchingCamera;
  weakPanel.hidden = !room.autoAudio || room.mediaMode === "video";
  weakText.textContent = t(room.videoOffered ? "link_recovered" : "link_weak");
  buttons.videoBack.hidden = !room.videoOffered;
  remoteNote.hidden = room.mediaMode === "video" && Boolean(remoteVideo.srcObject);
  remoteNote.textContent = t(
    room.mediaMode === "video" ? "remote_waiting" : room.otherWeak ? "remote_weak_link" : "remote_audio_only",
  );
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

// The devices chosen on the pre-call check page: {audioinput, videoinput,
// audiooutput} device ids, any of them missing. Anything unreadable is no choice.
function chosenDevices() {
  try {
    const saved = JSON.parse(localStorage.getItem(DEVICES_KEY) ?? "null");
    return saved && typeof saved === "object" && !Array.isArray(saved) ? saved : {};
  } catch {
    return {};
  }
}

function rememberCamera(deviceId) {
  try {
    localStorage.setItem(DEVICES_KEY, JSON.stringify({ ...chosenDevices(), videoinput: deviceId }));
  } catch {
    // Storage refused (private mode): the choice lasts for this page only.
  }
}

// `exact`, and the caller falls back to any device when it fails (gone since
// the check, or busy): Chromium doesn't pick an `ideal` deviceId over its
// default device.
function onDevice(constraints, deviceId) {
  return typeof deviceId === "string" && deviceId ? { ...constraints, deviceId: { exact: deviceId } } : constraints;
}

// The first of these requests that the browser grants (each asked once).
async function firstGranted(requests) {
  let refusal = null;
  const distinct = new Map(requests.map((request) => [JSON.stringify(request), request]));
  for (const request of distinct.values()) {
    try {
      return await navigator.mediaDevices.getUserMedia(request);
    } catch (error) {
      refusal = error;
    }
  }
  throw refusal;
}

function useChosenSpeaker(deviceId) {
  if (typeof deviceId !== "string" || !deviceId || typeof remoteVideo.setSinkId !== "function") return;
  remoteVideo.setSinkId(deviceId).catch(() => {}); // gone, or not allowed: the default speaker
}

function getMedia() {
  if (!mediaPromise) {
    mediaPromise = (async () => {
      const chosen = chosenDevices();
      const audio = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
      const video = LOW_BANDWIDTH_VIDEO;
      useChosenSpeaker(chosen.audiooutput);
      try {
        localStream = await firstGranted([
          { audio: onDevice(audio, chosen.audioinput), video: onDevice(video, chosen.videoinput) },
          { audio: onDevice(audio, chosen.audioinput), video },
          { audio, video: onDevice(video, chosen.videoinput) },
          { audio, video },
          { audio }, // no camera, or no permission for it
        ]);
      } catch {
        localStream = new MediaStream();
        statusLine.textContent = t("no_media");
      }
      for (const track of localStream.getVideoTracks()) track.contentHint = "motion";
      showLocalVideo();
      applyLocalSwitches();
      findCameras();
      return localStream;
    })();
  }
  return mediaPromise;
}

function showLocalVideo() {
  localVideo.srcObject = localStream;
  // The back camera is not mirrored: text behind the patient reads right.
  const facing = localStream?.getVideoTracks()[0]?.getSettings().facingMode;
  localVideo.classList.toggle("consult-local-rear", facing === "environment");
}

// --- Switching cameras ----------------------------------------------------------------

let cameras = []; // this device's video inputs (ids and labels once allowed)

async function findCameras() {
  try {
    const devices = await navigator.mediaDevices.enumerateDevices();
    cameras = devices.filter((device) => device.kind === "videoinput" && device.deviceId);
  } catch {
    cameras = [];
  }
  room.cameras = cameras.length;
  render();
}
navigator.mediaDevices?.addEventListener?.("devicechange", findCameras);

// Phones that list one camera may still turn between front and back.
function facingModes(track) {
  const modes = track?.getCapabilities?.().facingMode ?? [];
  return modes.includes("user") && modes.includes("environment");
}

function canSwitchCamera() {
  const track = localStream?.getVideoTracks()[0];
  return Boolean(track) && (cameras.length > 1 || facingModes(track));
}

// The next camera replaces the old one in the video sender (replaceTrack: no
// renegotiation, the sender's bitrate cap stays) and in the preview.
async function switchCamera() {
  const old = localStream?.getVideoTracks()[0];
  if (!old || switchingCamera) return;
  switchingCamera = true;
  render();
  const settings = old.getSettings();
  let wanted;
  if (cameras.length > 1) {
    const at = cameras.findIndex((camera) => camera.deviceId === settings.deviceId);
    wanted = { ...LOW_BANDWIDTH_VIDEO, deviceId: { exact: cameras[(at + 1) % cameras.length].deviceId } };
  } else {
    const facing = settings.facingMode === "environment" ? "user" : "environment";
    wanted = { ...LOW_BANDWIDTH_VIDEO, facingMode: { exact: facing } };
  }
  // Stopped first: many phones can't open their two cameras at once.
  old.stop();
  let track = null;
  try {
    // Or else the old camera again, or else any.
    const fallbacks = [onDevice(LOW_BANDWIDTH_VIDEO, settings.deviceId), LOW_BANDWIDTH_VIDEO];
    const stream = await firstGranted([wanted, ...fallbacks].map((video) => ({ video })));
    track = stream.getVideoTracks()[0];
  } catch (error) {
    console.warn("consult: no camera", error);
  }
  if (localStream) localStream.removeTrack(old); // ended, whatever comes instead
  if (track && localStream) {
    track.contentHint = "motion";
    localStream.addTrack(track);
    room.cameraSwitches = (room.cameraSwitches ?? 0) + 1;
    const deviceId = track.getSettings().deviceId;
    if (deviceId) rememberCamera(deviceId);
  } else if (track) {
    track.stop(); // the call ended meanwhile
  }
  showLocalVideo();
  switchingCamera = false;
  await applyMediaMode(); // the sender takes the new track (in video mode)
  await capBitrates();
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

// Every change of mode goes through here: this side's (told to the server,
// which records it and tells the other side; `auto` when the LinkWatch chose
// it) or the other side's and the server's (not sent back).
function useMediaMode(mode, { tell = false, auto = false } = {}) {
  const changed = mode !== room.mediaMode;
  room.mediaMode = mode;
  if (mode === "video" || (changed && !auto)) {
    room.autoAudio = false;
    room.videoOffered = false;
  }
  if (auto && mode !== "video") room.autoAudio = true;
  if (tell && changed) send({ type: "media", mode, reason: auto ? "weak_link" : "manual" });
  return applyMediaMode();
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
  room.quality = null; // measured again on the next connection
  showQuality(qualityMine, "", null);
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

  const offer = async () => {
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
  pc.onnegotiationneeded = () => {
    // The first negotiation is the doctor's: the polite patient answers his
    // offer with its own tracks (addTrack's transceivers are reused) instead
    // of colliding with it, and offers only if none comes.
    if (room.polite && !pc.currentRemoteDescription) {
      setTimeout(() => {
        if (room.pc === pc && !pc.currentRemoteDescription && pc.signalingState === "stable") offer();
      }, POLITE_FIRST_OFFER_WAIT_MS);
      return;
    }
    offer();
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

// --- Quality and the weak-link watch --------------------------------------------------

let previousStats = null;
let qualitySentAt = -Infinity;

// One getStats every 2 s during a call gives this side's quality (shown here,
// and sent to the other side every 4 s) and a sample for the LinkWatch.
async function sampleStats() {
  const pc = room.pc;
  if (!pc || pc.connectionState !== "connected") return;
  const report = await pc.getStats();
  if (pc !== room.pc) return;
  let selectedPairId = null;
  let bytesSent = 0;
  let videoBytesSent = 0;
  let videoHeldBack = false; // by bandwidth, in the encoder's words
  let packetsLost = 0;
  let packetsReceived = 0;
  report.forEach((stat) => {
    if (stat.type === "transport" && stat.selectedCandidatePairId) selectedPairId = stat.selectedCandidatePairId;
    if (stat.type === "outbound-rtp") {
      bytesSent += stat.bytesSent ?? 0;
      if (stat.kind === "video") videoBytesSent += stat.bytesSent ?? 0;
      if (stat.kind === "video" && stat.qualityLimitationReason === "bandwidth") videoHeldBack = true;
    }
    if (stat.type === "inbound-rtp") {
      packetsLost += stat.packetsLost ?? 0;
      packetsReceived += stat.packetsReceived ?? 0;
    }
  });
  let pair = selectedPairId ? report.get(selectedPairId) : null;
  if (!pair) {
    report.forEach((stat) => {
      if (stat.type === "candidate-pair" && stat.nominated && stat.state === "succeeded") pair = stat;
    });
  }
  const rttMs = typeof pair?.currentRoundTripTime === "number" ? pair.currentRoundTripTime * 1000 : null;
  const availableKbps =
    typeof pair?.availableOutgoingBitrate === "number" ? pair.availableOutgoingBitrate / 1000 : null;
  const now = performance.now();
  let bitrateKbps = null;
  let videoSentKbps = null;
  let lossPct = null;
  if (previousStats && previousStats.pc === pc) {
    const seconds = (now - previousStats.at) / 1000;
    if (seconds > 0) {
      bitrateKbps = Math.max(0, ((bytesSent - previousStats.bytesSent) * 8) / 1000 / seconds);
      videoSentKbps = Math.max(0, ((videoBytesSent - previousStats.videoBytesSent) * 8) / 1000 / seconds);
    }
    const lost = Math.max(0, packetsLost - previousStats.packetsLost);
    const received = Math.max(0, packetsReceived - previousStats.packetsReceived);
    lossPct = lost + received > 0 ? (100 * lost) / (lost + received) : 0;
  }
  previousStats = { pc, at: now, bytesSent, videoBytesSent, packetsLost, packetsReceived };
  const round = (value, digits) => (value === null ? null : Number(value.toFixed(digits)));
  room.quality = { rtt_ms: round(rttMs, 0), loss_pct: round(lossPct, 1), bitrate_kbps: round(bitrateKbps, 0) };
  showQuality(qualityMine, t("quality_mine"), room.quality);
  if (now - qualitySentAt >= QUALITY_EVERY_MS - STATS_EVERY_MS / 2) {
    qualitySentAt = now;
    send({ type: "quality", quality: room.quality });
  }
  const videoSending = room.mediaMode === "video" && !cameraOff && Boolean(sender("video")?.track);
  const heldBackKbps = videoSending && videoHeldBack ? round(videoSentKbps, 0) : null;
  observeLink({
    at_ms: now,
    mode: room.mediaMode,
    auto: room.autoAudio,
    available_kbps: round(availableKbps, 0),
    video_sent_kbps: heldBackKbps,
  });
}

function observeLink(sample) {
  room.link = sample;
  const decision = linkWatch.observe(sample);
  if (decision === "audio_only" && room.mediaMode === "video") useMediaMode("audio", { tell: true, auto: true });
  if (decision === "offer_video" && room.autoAudio) {
    room.videoOffered = true;
    render();
  }
}

// good | fair | poor, from the delay and the loss (what a person hears).
function qualityLevel(quality) {
  const rtt = quality.rtt_ms ?? 0;
  const loss = quality.loss_pct ?? 0;
  if (loss >= 10 || rtt >= 1000) return "poor";
  if (loss >= 3 || rtt >= 400) return "fair";
  return "good";
}

function showQuality(element, who, quality) {
  const known = (value) => value !== null && value !== undefined;
  const parts = [];
  if (quality && [quality.rtt_ms, quality.loss_pct, quality.bitrate_kbps].some(known)) {
    parts.push(t(`quality_${qualityLevel(quality)}`));
    if (known(quality.rtt_ms)) parts.push(`${t("rtt")} ${quality.rtt_ms} ms`);
    if (known(quality.loss_pct)) parts.push(`${t("loss")} ${quality.loss_pct}%`);
    if (known(quality.bitrate_kbps)) parts.push(`${t("sending")} ${quality.bitrate_kbps} kbps`);
  }
  element.textContent = parts.length ? `${who}: ${parts.join(" · ")}` : "";
  element.dataset.level = parts.length ? qualityLevel(quality) : "";
}

function showTheirQuality(quality) {
  room.otherQuality = quality;
  showQuality(qualityTheirs, t("quality_theirs"), quality);
}

setInterval(() => {
  sampleStats().catch(() => {});
}, STATS_EVERY_MS);

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
  useMediaMode(state.consult.media_mode); // the server's word: kept, whoever changed it while we were away
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
    room.otherWeak = message.mode !== "video" && message.reason === "weak_link";
    useMediaMode(message.mode);
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
  useMediaMode(room.mediaMode === "video" ? "audio" : "video", { tell: true });
});
buttons.videoBack.addEventListener("click", () => useMediaMode("video", { tell: true }));
buttons.switchCamera.addEventListener("click", () => {
  switchCamera().catch((error) => console.warn("consult: camera switch", error));
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
