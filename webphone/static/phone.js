// phone.js: the page's phone: UI, RTCPeerConnection, getStats view.
// window.phoneState mirrors what the page shows, for tests and curious interns.
"use strict";

const $ = (id) => document.getElementById(id);
const state = window.phoneState = {
  registered: false, call: "idle", error: "", notice: "", secure: true, wsURL: "", ice: "", gathering: "",
  selected: null, inbound: null, candidates: [], pairs: [],
};
let cfg = { domain: "siplab.test", ice_servers: [] };
// insecure is the notice of a page that is not a secure context, kept
// in front of any later one.
let insecure = [];
let ua = null, pc = null, dialog = null, incoming = null, stream = null, statsTimer = null;

function log(s) {
  const el = $("log");
  el.textContent += new Date().toISOString().slice(11, 23) + " " + s + "\n";
  el.scrollTop = el.scrollHeight;
}

// notice shows a problem the user must fix outside the page (a
// certificate, a secure context) above everything else; parts are text or
// {href, text} links.
function notice(...parts) {
  const el = $("notice");
  el.textContent = "";
  for (const p of parts) {
    if (typeof p === "string") { el.append(p); continue; }
    const a = document.createElement("a");
    a.href = p.href; a.textContent = p.text; a.target = "_blank"; a.rel = "noopener";
    el.append(a);
  }
  el.hidden = parts.length === 0;
  state.notice = el.textContent;
  if (state.notice) log("notice: " + state.notice);
}

// wsURL is the SIP WebSocket: the SBC's (config.json's ws_url) when another
// server (the console) serves the page, else the page's own origin.
function wsURL() {
  return cfg.ws_url || (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/";
}

function setCall(s, err) {
  state.call = s;
  if (err) { state.error = String(err); log("error: " + err); }
  $("state").textContent = s + (err ? " (" + err + ")" : "");
  const inCall = s === "calling" || s === "ringing" || s === "confirmed" || s === "incoming";
  $("hangup").disabled = !inCall;
  $("call").disabled = inCall;
  $("answer").disabled = s !== "incoming";
}

async function ensureUA() {
  if (ua && ua.ws) return ua;
  const url = wsURL();
  ua = new SipUA({ url, domain: cfg.domain, user: $("user").value, password: $("password").value,
    log, onInvite: onIncoming, onBye: () => endCall("remote hung up") });
  try {
    await ua.connect();
  } catch (e) {
    // A browser tells a page nothing about why a WebSocket failed: an
    // untrusted certificate, no route and a closed port look the same.
    const https = url.replace(/^ws/, "http");
    notice(...insecure, "Cannot open the SIP WebSocket " + url + ". If this browser has not yet accepted the lab's certificate: open ",
      { href: https, text: https }, " once and accept it (or import the lab CA, docs/webrtc.md), then press Register again. " +
      "Otherwise: is the lab up, and does this computer route to the lab's internet via router-w (siplab up as root)?");
    throw e;
  }
  if (state.notice.includes("Cannot open the SIP WebSocket")) notice(...insecure);
  return ua;
}

async function register(expires) {
  try {
    const u = await ensureUA();
    u.user = $("user").value; u.password = $("password").value;
    const res = await u.register(expires);
    state.registered = res.status === 200 && expires > 0;
    $("regstate").textContent = res.status === 200 ? (expires > 0 ? "registered" : "unregistered") : `${res.status} ${res.reason}`;
    if (res.status !== 200) state.error = `REGISTER ${res.status} ${res.reason}`;
  } catch (e) {
    state.error = String(e);
    $("regstate").textContent = String(e);
  }
}

function iceServers() {
  return (cfg.ice_servers || []).map((u) => u.startsWith("turn:")
    ? { urls: u, username: $("user").value, credential: $("password").value }
    : { urls: u });
}

// needMic fails with the reason where getUserMedia does not exist (it
// would be a TypeError about undefined).
function needMic() {
  if (!navigator.mediaDevices) throw new Error("no microphone: this page is not a secure context (" + location.origin + ")");
}

// newPeer makes the RTCPeerConnection. The caller adds the microphone with
// useMic: before createOffer, or after setRemoteDescription when
// answering (so it rides on the transceiver the offer created).
async function newPeer() {
  needMic();
  stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  pc = new RTCPeerConnection({ iceServers: iceServers(), iceTransportPolicy: cfg.ice_transport_policy || "all" });
  pc.oniceconnectionstatechange = () => { state.ice = pc.iceConnectionState; $("icestate").textContent = pc.iceConnectionState; };
  pc.onicegatheringstatechange = () => { state.gathering = pc.iceGatheringState; $("gathering").textContent = pc.iceGatheringState; };
  pc.ontrack = (ev) => { $("remote").srcObject = ev.streams[0] || new MediaStream([ev.track]); };
  statsTimer = setInterval(showStats, 1000);
  return pc;
}

// useMic sends the microphone with G.711 (then telephone-event) first.
async function useMic() {
  const track = stream.getAudioTracks()[0];
  let tr = pc.getTransceivers().find((t) => t.receiver.track.kind === "audio");
  if (tr) {
    await tr.sender.replaceTrack(track);
    tr.direction = "sendrecv";
  } else {
    tr = pc.addTransceiver(track, { direction: "sendrecv", streams: [stream] });
  }
  const caps = RTCRtpReceiver.getCapabilities("audio").codecs;
  const want = ["audio/PCMU", "audio/PCMA", "audio/telephone-event"];
  const prefs = want.flatMap((m) => caps.filter((c) => c.mimeType === m && c.clockRate === 8000));
  if (tr.setCodecPreferences) tr.setCodecPreferences(prefs);
}

// gathered waits for ICE gathering to finish: SIP carries no trickle.
function gathered() {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    const t = setTimeout(resolve, 5000);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") { clearTimeout(t); resolve(); }
    });
  });
}

async function call() {
  try {
    needMic(); // before the SIP: a call without a microphone cannot start
    await ensureUA();
    setCall("calling");
    await newPeer();
    await useMic();
    await pc.setLocalDescription(await pc.createOffer());
    await gathered();
    const r = await ua.invite($("target").value, pc.localDescription.sdp, (p) => { if (p.status >= 180) setCall("ringing"); });
    dialog = r.dialog;
    await pc.setRemoteDescription({ type: "answer", sdp: r.answer });
    setCall("confirmed");
  } catch (e) {
    endCall(null, e);
  }
}

function onIncoming(req) {
  if (dialog || incoming) { ua.respond(req, 486, "Busy Here"); return; }
  incoming = { req, d: ua.dialogOf(req) };
  ua.respond(req, 180, "Ringing", [], "", incoming.d.localTag);
  setCall("incoming");
  log("incoming call from " + req.get("from"));
}

async function answer() {
  const { req, d } = incoming;
  try {
    if (!/UDP\/TLS\/RTP\/SAVPF/.test(req.body)) {
      ua.respond(req, 488, "Not Acceptable Here", [], "", d.localTag);
      throw new Error("offer is not WebRTC (no DTLS-SRTP): the SBC has no media gateway for this call");
    }
    await newPeer();
    await pc.setRemoteDescription({ type: "offer", sdp: req.body });
    await useMic();
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered();
    ua.respond(req, 200, "OK", [`Contact: ${ua.contact}`, "Content-Type: application/sdp"], pc.localDescription.sdp, d.localTag);
    dialog = d; incoming = null;
    setCall("confirmed");
  } catch (e) {
    incoming = null;
    endCall(null, e);
  }
}

async function hangup() {
  if (incoming) { ua.respond(incoming.req, 603, "Decline", [], "", incoming.d.localTag); incoming = null; endCall("declined"); return; }
  if (dialog) { const d = dialog; dialog = null; try { await ua.bye(d); } catch (e) { log(e); } }
  endCall("hung up");
}

function endCall(why, err) {
  dialog = null;
  if (pc) { showStats(); pc.close(); pc = null; }
  if (statsTimer) { clearInterval(statsTimer); statsTimer = null; }
  if (stream) { stream.getTracks().forEach((t) => t.stop()); stream = null; }
  setCall(err ? "failed" : "ended", err);
  if (why) log("call ended: " + why);
}

function dtmf(digit) {
  if (!pc || !dialog) return;
  const sender = pc.getSenders().find((s) => s.dtmf);
  // insertDTMF replaces what is still queued: queue behind it instead.
  if (sender && sender.dtmf.canInsertDTMF) { sender.dtmf.insertDTMF(sender.dtmf.toneBuffer + digit, 160, 70); log("DTMF " + digit + " (RFC 4733)"); }
  else { ua.info(dialog, digit); log("DTMF " + digit + " (SIP INFO)"); }
}

function candText(c) { return `${c.address || c.ip}:${c.port}`; }

// showStats draws candidates, checks and the selected pair from getStats.
async function showStats() {
  if (!pc) return;
  const stats = await pc.getStats();
  const byId = new Map();
  stats.forEach((s) => byId.set(s.id, s));
  const cands = [], pairs = [];
  let selectedId = null, inbound = null;
  stats.forEach((s) => {
    if (s.type === "local-candidate" || s.type === "remote-candidate") {
      cands.push({ side: s.type === "local-candidate" ? "local" : "remote", type: s.candidateType, address: candText(s), protocol: s.protocol, url: s.url || "" });
    }
    if (s.type === "transport" && s.selectedCandidatePairId) selectedId = s.selectedCandidatePairId;
    if (s.type === "candidate-pair") pairs.push(s);
    if (s.type === "inbound-rtp" && s.kind === "audio") {
      inbound = { packetsReceived: s.packetsReceived, bytesReceived: s.bytesReceived, audioLevel: s.audioLevel || 0, totalAudioEnergy: s.totalAudioEnergy || 0, codec: (byId.get(s.codecId) || {}).mimeType || "" };
    }
  });
  state.candidates = cands;
  state.inbound = inbound;
  state.pairs = pairs.map((p) => {
    const l = byId.get(p.localCandidateId) || {}, r = byId.get(p.remoteCandidateId) || {};
    return { id: p.id, local: `${l.candidateType} ${candText(l)}`, remote: `${r.candidateType} ${candText(r)}`, state: p.state, nominated: !!p.nominated,
      requestsSent: p.requestsSent, responsesReceived: p.responsesReceived, rtt: p.currentRoundTripTime, localType: l.candidateType, remoteType: r.candidateType };
  });
  const sel = state.pairs.find((p) => p.id === selectedId);
  state.selected = sel ? { local: sel.local, remote: sel.remote, localType: sel.localType, remoteType: sel.remoteType } : null;
  $("pair").textContent = sel ? `${sel.local} <-> ${sel.remote}` : "-";
  $("inbound").textContent = inbound ? `${inbound.codec} ${inbound.packetsReceived} packets, level ${inbound.audioLevel.toFixed(2)}` : "-";
  const tb = $("candidates").tBodies[0];
  tb.innerHTML = "";
  for (const c of cands) {
    const tr = tb.insertRow();
    for (const v of [c.side, c.type, c.address, c.protocol, c.url]) tr.insertCell().textContent = v;
  }
  const pb = $("pairs").tBodies[0];
  pb.innerHTML = "";
  for (const p of state.pairs) {
    const tr = pb.insertRow();
    if (p.id === selectedId) tr.className = "selected";
    for (const v of [p.local, p.remote, p.state, p.nominated, p.requestsSent, p.responsesReceived, p.rtt === undefined ? "" : (p.rtt * 1000).toFixed(1)]) tr.insertCell().textContent = v;
  }
}

async function init() {
  let noSettings = [];
  try {
    const r = await fetch("config.json");
    if (!r.ok) throw new Error(`${r.status}: ${(await r.text()).trim()}`);
    cfg = await r.json();
  } catch (e) {
    state.error = "no phone settings: " + e;
    noSettings = ["This phone has no settings (config.json " + e.message + "): the server that serves it cannot tell where the SBC is."];
  }
  state.wsURL = wsURL();
  $("wsurl").textContent = state.wsURL;
  // getUserMedia exists only in a secure context: https, or http on
  // localhost / 127.0.0.1 (the console's default address).
  state.secure = window.isSecureContext && !!navigator.mediaDevices;
  if (!state.secure) {
    const https = state.wsURL.replace(/^ws/, "http") + "phone/";
    insecure = ["This page is not a secure context (" + location.origin + "): the browser gives it no microphone, so it cannot call or answer. " +
      "Open it at http://127.0.0.1 or http://localhost (an SSH tunnel to the console does that), or over https at ",
      { href: https, text: https }, ". "];
  }
  if (insecure.length || noSettings.length) notice(...insecure, ...noSettings);
  const q = new URLSearchParams(location.search);
  if (q.get("user")) $("user").value = q.get("user");
  if (q.get("target")) $("target").value = q.get("target");
  // ?policy=relay: TURN candidates only (a network that allows nothing
  // else), whatever the SBC's -webrtc-ice-policy says.
  if (["all", "relay"].includes(q.get("policy"))) cfg.ice_transport_policy = q.get("policy");
  $("register").onclick = () => register(600);
  $("unregister").onclick = () => register(0);
  $("call").onclick = call;
  $("answer").onclick = answer;
  $("hangup").onclick = hangup;
  for (const k of "123456789*0#") {
    const b = document.createElement("button");
    b.textContent = k; b.onclick = () => dtmf(k);
    $("keys").appendChild(b);
  }
  setCall("idle");
  state.ready = true;
}
init();
