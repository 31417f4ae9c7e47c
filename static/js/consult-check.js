// The pre-call check (docs/precall-check.md): camera and microphone preview
// with a level meter, a test sound, the choice of devices (kept in
// localStorage for the room page), then a network test against the
// server's echo peer: round-trip time from data-channel pings, loss from
// getStats of the echoed media, the bitrate that got through from the echoed
// media and a paced data-channel probe, and, when TURN is configured,
// whether a relayed path works. The server turns the figures into the
// recommendation. The page's words come from the template ([data-strings]).

const root = document.querySelector("[data-consult-check]");

const strings = {};
for (const item of root.querySelectorAll("[data-strings] [data-key]")) strings[item.dataset.key] = item.textContent;
const t = (key) => strings[key] ?? key;

const $ = (selector) => root.querySelector(selector);
const preview = $("[data-preview]");
const mediaStatus = $("[data-media-status]");
const levelMeter = $("[data-level]");
const speakerStatus = $("[data-speaker-status]");
const speakerChoice = $("[data-speaker-choice]");
const networkStatus = $("[data-network-status]");
const networkProgress = $("[data-network-progress]");
const echoFigure = $("[data-echo-figure]");
const echoVideo = $("[data-echo]");
const resultPanel = $("[data-result]");
const selects = {
  videoinput: $("[data-device=videoinput]"),
  audioinput: $("[data-device=audioinput]"),
  audiooutput: $("[data-device=audiooutput]"),
};
const buttons = {
  start: $("[data-action=start]"),
  retry: $("[data-action=media-retry]"),
  tone: $("[data-action=tone]"),
  network: $("[data-action=network]"),
};
const csrfToken = root.querySelector("[name=csrfmiddlewaretoken]").value;

// The room page reads the same key: {"audioinput": id, "videoinput": id, "audiooutput": id}.
const DEVICES_KEY = "telemed.consult.devices";
const LOW_BANDWIDTH_VIDEO = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 15, max: 15 } };
const GATHER_TIMEOUT_MS = 5000; // the offer goes with the candidates found by then
const CONNECT_TIMEOUT_MS = 15000; // a slow link may take a few seconds
const MEDIA_PHASE_MS = 4000; // media echoed, pings: round trip and loss
const PROBE_PHASE_MS = 4000; // media paused, paced data echoed: bitrate
const PROBE_WARMUP_MS = 1000; // not counted: the congestion window opening
const PROBE_KBPS = 500; // enough to tell video (250 kbps) from less
const PROBE_CHUNK_BYTES = 1000;
const PROBE_MAX_BUFFERED_BYTES = 16 * 1024; // a weak link fills this: don't pile up more
const PING_EVERY_MS = 250;
const PING_LOST_AFTER_MS = 2000;
const RELAY_PONG_TIMEOUT_MS = 3000;
const LEVEL_EVERY_MS = 100;
const DONE_MESSAGE = "done";

// State, exposed for tests and for debugging as window.telemedCheck.
const check = {
  role: root.dataset.role,
  stage: "idle", // idle | media | network | relay | sending | done | refused | error
  cameraOk: false,
  microphoneOk: false,
  mediaStatus: null,
  level: 0,
  maxLevel: 0,
  tonesPlayed: 0,
  iceServers: JSON.parse(root.dataset.iceServers || "[]"),
  iceTransportPolicy: root.dataset.iceTransportPolicy || "all",
  turn: root.dataset.turn === "true",
  videoMaxKbps: Number(root.dataset.videoMaxKbps) || 300,
  sessions: 0,
  measured: null,
  details: null, // the figures behind the measurements
  result: null,
  refusal: null,
  pc: null,
  errors: [],
};
window.telemedCheck = check;

let localStream = null;
let audioCtx = null;
let meterTimer = null;
let meterSource = null;
let running = false;
const openSessions = new Set();

class Refusal extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const round = (value, digits) => (value === null ? null : Number(value.toFixed(digits)));

function median(values) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

// --- Devices -----------------------------------------------------------------------------

function savedDevices() {
  try {
    const saved = JSON.parse(localStorage.getItem(DEVICES_KEY) || "{}");
    return saved && typeof saved === "object" ? saved : {};
  } catch {
    return {};
  }
}

function saveDevice(kind, deviceId) {
  const saved = savedDevices();
  saved[kind] = deviceId;
  try {
    localStorage.setItem(DEVICES_KEY, JSON.stringify(saved));
  } catch {
    // private mode or full: the room falls back to the defaults
  }
}

const canChooseSpeaker = () =>
  typeof AudioContext !== "undefined" && ("setSinkId" in AudioContext.prototype || "setSinkId" in HTMLMediaElement.prototype);

async function listDevices() {
  if (!navigator.mediaDevices?.enumerateDevices) return;
  const devices = await navigator.mediaDevices.enumerateDevices();
  const saved = savedDevices();
  const inUse = {};
  for (const track of localStream ? localStream.getTracks() : []) {
    inUse[track.kind === "video" ? "videoinput" : "audioinput"] = track.getSettings().deviceId;
  }
  for (const [kind, select] of Object.entries(selects)) {
    const ofKind = devices.filter((d) => d.kind === kind && d.deviceId);
    select.replaceChildren();
    ofKind.forEach((device, index) => {
      const option = document.createElement("option");
      option.value = device.deviceId;
      option.textContent =
        device.label || (device.deviceId === "default" ? t("default_device") : `${t("device")} ${index + 1}`);
      select.append(option);
    });
    const wanted = inUse[kind] || saved[kind];
    if (wanted && ofKind.some((d) => d.deviceId === wanted)) select.value = wanted;
    select.disabled = running || ofKind.length < 2;
  }
  speakerChoice.hidden = !canChooseSpeaker() || selects.audiooutput.options.length === 0;
}

for (const [kind, select] of Object.entries(selects)) {
  select.addEventListener("change", async () => {
    saveDevice(kind, select.value);
    try {
      if (kind === "audiooutput") return await playTone();
      await openMedia();
      await listDevices();
    } catch (error) {
      check.errors.push(String(error));
    }
  });
}

// --- Camera, microphone, level --------------------------------------------------------

function audioContext() {
  if (!audioCtx && typeof AudioContext !== "undefined") audioCtx = new AudioContext();
  return audioCtx;
}

function setMediaStatus(key) {
  check.mediaStatus = key;
  mediaStatus.textContent = t(key);
}

async function getMedia(constraints) {
  try {
    return { stream: await navigator.mediaDevices.getUserMedia(constraints), error: null };
  } catch (error) {
    return { stream: null, error };
  }
}

function stopMedia() {
  if (meterTimer) clearInterval(meterTimer);
  meterTimer = null;
  if (meterSource) meterSource.disconnect();
  meterSource = null;
  for (const track of localStream ? localStream.getTracks() : []) track.stop();
  localStream = null;
  preview.srcObject = null;
}

async function openMedia() {
  stopMedia();
  check.cameraOk = false;
  check.microphoneOk = false;
  if (!navigator.mediaDevices?.getUserMedia) return setMediaStatus("media_unsupported");
  setMediaStatus("media_asking");
  const saved = savedDevices();
  const video = saved.videoinput ? { ...LOW_BANDWIDTH_VIDEO, deviceId: { exact: saved.videoinput } } : LOW_BANDWIDTH_VIDEO;
  const audio = saved.audioinput ? { deviceId: { exact: saved.audioinput } } : true;
  let { stream, error } = await getMedia({ audio, video });
  if (error && error.name === "OverconstrainedError") {
    // A chosen device is gone (unplugged, or ids reset): the defaults.
    ({ stream, error } = await getMedia({ audio: true, video: LOW_BANDWIDTH_VIDEO }));
  }
  const denied = error && (error.name === "NotAllowedError" || error.name === "SecurityError");
  if (!stream && !denied) ({ stream } = await getMedia({ audio: true })); // no camera?
  if (!stream && !denied) ({ stream } = await getMedia({ video: LOW_BANDWIDTH_VIDEO })); // no microphone?
  buttons.retry.hidden = Boolean(stream && stream.getAudioTracks().length && stream.getVideoTracks().length);
  if (!stream) return setMediaStatus(denied ? "media_denied" : "media_missing");
  localStream = stream;
  check.cameraOk = stream.getVideoTracks().length > 0;
  check.microphoneOk = stream.getAudioTracks().length > 0;
  preview.srcObject = stream;
  preview.hidden = !check.cameraOk;
  if (check.cameraOk && check.microphoneOk) setMediaStatus("media_ok");
  else setMediaStatus(check.cameraOk ? "microphone_missing" : "camera_missing");
  startMeter(stream);
}

function startMeter(stream) {
  const ctx = audioContext();
  const track = stream.getAudioTracks()[0];
  if (!ctx || !track) return;
  meterSource = ctx.createMediaStreamSource(new MediaStream([track]));
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  meterSource.connect(analyser); // not to the speakers: no echo
  const samples = new Float32Array(analyser.fftSize);
  meterTimer = setInterval(() => {
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const sample of samples) sum += sample * sample;
    const rms = Math.sqrt(sum / samples.length);
    const dbfs = rms > 0 ? 20 * Math.log10(rms) : -100;
    // -60 dBFS (a quiet room) shows empty, 0 dBFS full.
    check.level = Math.max(0, Math.min(100, Math.round(((dbfs + 60) / 60) * 100)));
    check.maxLevel = Math.max(check.maxLevel, check.level);
    levelMeter.value = check.level;
  }, LEVEL_EVERY_MS);
}

// --- Speaker ----------------------------------------------------------------------------

async function playTone() {
  const ctx = audioContext();
  if (!ctx) {
    speakerStatus.textContent = t("tone_failed");
    return;
  }
  try {
    await ctx.resume();
    const speaker = selects.audiooutput.value;
    if (speaker && "setSinkId" in ctx) await ctx.setSinkId(speaker === "default" ? "" : speaker);
  } catch (error) {
    check.errors.push(String(error)); // the default speaker plays it
  }
  speakerStatus.textContent = t("tone_playing");
  const start = ctx.currentTime + 0.05;
  const oscillator = ctx.createOscillator();
  const gain = ctx.createGain();
  oscillator.frequency.setValueAtTime(523, start); // C5, then E5: a doorbell
  oscillator.frequency.setValueAtTime(659, start + 0.4);
  gain.gain.setValueAtTime(0.0001, start);
  gain.gain.exponentialRampToValueAtTime(0.3, start + 0.05);
  gain.gain.setValueAtTime(0.3, start + 0.75);
  gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.9);
  oscillator.connect(gain).connect(ctx.destination);
  oscillator.onended = () => {
    check.tonesPlayed += 1;
    speakerStatus.textContent = t("tone_done");
    oscillator.disconnect();
    gain.disconnect();
  };
  oscillator.start(start);
  oscillator.stop(start + 0.9);
}

// --- The echo sessions ------------------------------------------------------------------

async function postJson(url, body) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
    body: JSON.stringify(body),
  });
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) throw new Refusal(data?.message || t("net_error"), data?.error || String(response.status));
  return data;
}

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState !== "complete") return;
      pc.removeEventListener("icegatheringstatechange", done);
      resolve();
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, GATHER_TIMEOUT_MS);
  });
}

function opened(channel, timeoutMs) {
  if (channel.readyState === "open") return Promise.resolve(true);
  return new Promise((resolve) => {
    channel.addEventListener("open", () => resolve(true), { once: true });
    channel.addEventListener("close", () => resolve(false), { once: true });
    setTimeout(() => resolve(channel.readyState === "open"), timeoutMs);
  });
}

// One peer connection to a fresh echo peer: with the local tracks and a
// probe channel (media), or a ping channel only (the relay test).
async function echoSession({ policy, media }) {
  const pc = new RTCPeerConnection({ iceServers: check.iceServers, iceTransportPolicy: policy });
  check.sessions += 1;
  const session = { pc, policy, connected: false, sentAt: new Map(), rtts: new Map(), probe: null };
  session.close = () => closeSession(session);
  openSessions.add(session);
  if (media && localStream) {
    for (const track of localStream.getTracks()) {
      const init = { direction: "sendrecv", streams: [localStream] };
      if (track.kind === "video") init.sendEncodings = [{ maxBitrate: check.videoMaxKbps * 1000 }];
      pc.addTransceiver(track, init);
    }
  }
  session.ping = pc.createDataChannel("ping", { ordered: false, maxRetransmits: 0 });
  session.ping.onmessage = (event) => {
    const sent = session.sentAt.get(event.data);
    if (sent !== undefined && !session.rtts.has(event.data)) session.rtts.set(event.data, performance.now() - sent);
  };
  if (media) {
    session.probe = pc.createDataChannel("probe", { ordered: false, maxRetransmits: 0 });
    session.probe.binaryType = "arraybuffer";
  }
  pc.ontrack = (event) => {
    if (event.track.kind !== "video") return; // the echoed sound is measured, never played
    echoVideo.srcObject = new MediaStream([event.track]);
    echoFigure.hidden = false;
  };
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const sdp = pc.localDescription.sdp;
  if (policy === "relay" && !/ typ relay/.test(sdp)) return session; // no relay candidate: the TURN server said no
  const answer = await postJson(root.dataset.offerUrl, { type: "offer", sdp });
  await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
  session.connected = await opened(session.ping, CONNECT_TIMEOUT_MS);
  return session;
}

function closeSession(session) {
  if (!openSessions.delete(session)) return;
  try {
    if (session.ping.readyState === "open") session.ping.send(DONE_MESSAGE); // the server closes its side
  } catch {
    // closing anyway
  }
  session.pc.close();
  if (check.pc === session.pc) check.pc = null;
}

function startPings(session) {
  let seq = 0;
  const timer = setInterval(() => {
    if (session.ping.readyState !== "open") return;
    const message = `ping ${seq++}`;
    session.sentAt.set(message, performance.now());
    session.ping.send(message);
  }, PING_EVERY_MS);
  return () => clearInterval(timer);
}

async function mediaStats(pc) {
  const totals = { at: performance.now(), inBytes: 0, inPackets: 0, inLost: 0, outPackets: 0, outLost: 0 };
  const report = await pc.getStats();
  report.forEach((s) => {
    if (s.type === "inbound-rtp") {
      totals.inBytes += (s.bytesReceived || 0) + (s.headerBytesReceived || 0);
      totals.inPackets += s.packetsReceived || 0;
      totals.inLost += Math.max(0, s.packetsLost || 0);
    } else if (s.type === "outbound-rtp") {
      totals.outPackets += s.packetsSent || 0;
    } else if (s.type === "remote-inbound-rtp") {
      totals.outLost += Math.max(0, s.packetsLost || 0); // the server's receiver reports (RTCP)
    }
  });
  return totals;
}

// Loss of the media each way (the larger), in %, or null without media.
function mediaLoss(before, after) {
  const received = after.inPackets - before.inPackets;
  const lostComing = after.inLost - before.inLost;
  const sent = after.outPackets - before.outPackets;
  const lostGoing = after.outLost - before.outLost;
  const rates = [];
  if (received + lostComing > 0) rates.push((100 * lostComing) / (received + lostComing));
  if (sent > 0) rates.push((100 * Math.min(lostGoing, sent)) / sent);
  return rates.length ? Math.max(...rates) : null;
}

// The probe: PROBE_KBPS of data sent at a steady pace, echoed back; what
// came back after the warm-up, in kbps.
async function runProbe(session) {
  const channel = session.probe;
  if (!channel || channel.readyState !== "open") return null;
  const chunk = new Uint8Array(PROBE_CHUNK_BYTES);
  const start = performance.now();
  const countFrom = start + PROBE_WARMUP_MS;
  let received = 0;
  channel.onmessage = (event) => {
    if (performance.now() >= countFrom) received += event.data.byteLength || 0;
  };
  let allowance = 0;
  let last = start;
  const timer = setInterval(() => {
    const now = performance.now();
    allowance = Math.min(allowance + ((now - last) * PROBE_KBPS) / 8, 8 * PROBE_CHUNK_BYTES); // kbps / 8 = bytes per ms
    last = now;
    while (
      allowance >= PROBE_CHUNK_BYTES &&
      channel.readyState === "open" &&
      channel.bufferedAmount < PROBE_MAX_BUFFERED_BYTES
    ) {
      channel.send(chunk);
      allowance -= PROBE_CHUNK_BYTES;
    }
  }, 20);
  await sleep(PROBE_PHASE_MS);
  clearInterval(timer);
  return (received * 8) / (performance.now() - countFrom); // bits per ms = kbps
}

function progressTo(value) {
  networkProgress.hidden = false;
  networkProgress.value = value;
}

// Round trip, loss and bitrate over the main session.
async function measure(session) {
  const pc = session.pc;
  progressTo(10);
  const before = await mediaStats(pc);
  const stopPings = startPings(session);
  for (let step = 1; step <= 4; step += 1) {
    await sleep(MEDIA_PHASE_MS / 4);
    progressTo(10 + step * 10);
  }
  stopPings();
  const after = await mediaStats(pc);
  const mediaKbps = after.inPackets > before.inPackets ? ((after.inBytes - before.inBytes) * 8) / (after.at - before.at) : null;
  // The probe has the link to itself: no media while it runs.
  for (const sender of pc.getSenders()) if (sender.track) await sender.replaceTrack(null);
  const probeKbps = await runProbe(session);
  progressTo(90);
  const sentLongAgo = [...session.sentAt].filter(([, at]) => performance.now() - at > PING_LOST_AFTER_MS);
  const pingLoss = sentLongAgo.length
    ? (100 * sentLongAgo.filter(([message]) => !session.rtts.has(message)).length) / sentLongAgo.length
    : null;
  const loss = mediaLoss(before, after);
  const rates = [mediaKbps, probeKbps].filter((value) => value !== null);
  check.details = { mediaKbps: round(mediaKbps, 0), probeKbps: round(probeKbps, 0), mediaLoss: round(loss, 1), pingLoss };
  return {
    rtt_ms: round(median([...session.rtts.values()]), 0),
    loss_pct: round(loss ?? pingLoss, 1),
    bitrate_kbps: rates.length ? round(Math.max(...rates), 0) : null,
  };
}

// Whether a connection through the TURN server alone carries data.
async function relayWorks() {
  const session = await echoSession({ policy: "relay", media: false });
  try {
    if (!session.connected) return false;
    const stopPings = startPings(session);
    const deadline = performance.now() + RELAY_PONG_TIMEOUT_MS;
    while (!session.rtts.size && performance.now() < deadline) await sleep(100);
    stopPings();
    return session.rtts.size > 0;
  } finally {
    session.close();
  }
}

// --- The test as a whole ---------------------------------------------------------------

function setNetworkStatus(key, text) {
  networkStatus.textContent = text ?? t(key);
}

async function networkTest() {
  if (running) return;
  running = true;
  buttons.network.hidden = true;
  resultPanel.hidden = true;
  for (const select of Object.values(selects)) select.disabled = true;
  check.result = null;
  check.refusal = null;
  const measured = {
    rtt_ms: null,
    loss_pct: null,
    bitrate_kbps: null,
    relay_ok: null,
    camera_ok: check.cameraOk,
    microphone_ok: check.microphoneOk,
  };
  try {
    check.stage = "network";
    setNetworkStatus("net_connecting");
    progressTo(0);
    const main = await echoSession({ policy: check.iceTransportPolicy, media: true });
    check.pc = main.pc;
    try {
      if (main.connected) {
        setNetworkStatus("net_measuring");
        Object.assign(measured, await measure(main));
      }
    } finally {
      main.close();
      echoVideo.srcObject = null;
      echoFigure.hidden = true;
    }
    if (check.turn) {
      check.stage = "relay";
      setNetworkStatus("net_relay");
      // With the policy at relay the main session went through TURN already.
      measured.relay_ok = check.iceTransportPolicy === "relay" ? main.connected : await relayWorks();
    }
    check.measured = measured;
    check.stage = "sending";
    progressTo(95);
    check.result = await postJson(root.dataset.resultUrl, measured);
    showResult(check.result);
    check.stage = "done";
    setNetworkStatus(measured.rtt_ms === null ? "net_failed" : "net_done");
  } catch (error) {
    check.stage = error instanceof Refusal ? "refused" : "error";
    check.refusal = error instanceof Refusal ? error.code : null;
    check.errors.push(String(error));
    setNetworkStatus("net_error", error instanceof Refusal ? error.message : undefined);
  } finally {
    networkProgress.hidden = true;
    running = false;
    buttons.network.hidden = false;
    for (const session of [...openSessions]) session.close();
    await listDevices().catch((error) => check.errors.push(String(error)));
  }
}

function figureText(name, value) {
  if (name === "relay_ok") return t(value === true ? "relay_yes" : value === false ? "relay_no" : "relay_none");
  if (value === null || value === undefined) return t("not_measured");
  if (name === "rtt_ms") return `${value} ${t("ms")}`;
  if (name === "loss_pct") return `${value} %`;
  return `${value} ${t("kbps")}`;
}

function showResult(result) {
  resultPanel.dataset.recommendation = result.recommendation;
  $("[data-result-label]").textContent = result.label;
  $("[data-result-explanation]").textContent = result.explanation;
  for (const item of resultPanel.querySelectorAll("[data-figure]")) {
    item.textContent = figureText(item.dataset.figure, result.result[item.dataset.figure]);
  }
  resultPanel.hidden = false;
  resultPanel.scrollIntoView({ behavior: "smooth", block: "nearest" });
}

async function start() {
  buttons.start.disabled = true;
  try {
    check.stage = "media";
    const ctx = audioContext();
    if (ctx) await ctx.resume().catch(() => {});
    await openMedia();
    await listDevices();
  } catch (error) {
    check.errors.push(String(error));
  }
  buttons.start.hidden = true;
  await networkTest();
}

buttons.start.addEventListener("click", start);
buttons.retry.addEventListener("click", start);
buttons.tone.addEventListener("click", playTone);
buttons.network.addEventListener("click", networkTest);
window.addEventListener("pagehide", () => {
  for (const session of [...openSessions]) session.close();
  stopMedia();
});
