// sip.js: a minimal SIP user agent over WebSocket (RFC 7118) for the lab's
// browser phone. Reliable transport: no retransmissions; one registration,
// one call at a time. Every message is logged so the intern sees the wire.
"use strict";

const COMPACT = { v: "via", f: "from", t: "to", i: "call-id", m: "contact", l: "content-length", c: "content-type", k: "supported" };

function rand(n) {
  const abc = "abcdefghijklmnopqrstuvwxyz0123456789";
  let s = "";
  const r = crypto.getRandomValues(new Uint8Array(n));
  for (const b of r) s += abc[b % abc.length];
  return s;
}

// parse turns one WebSocket text frame into a message object.
function parseSIP(text) {
  const sep = text.indexOf("\r\n\r\n");
  const head = sep >= 0 ? text.slice(0, sep) : text;
  const body = sep >= 0 ? text.slice(sep + 4) : "";
  const lines = head.split("\r\n");
  const first = lines.shift();
  const msg = { headers: {}, body: body, raw: text };
  let m = /^SIP\/2\.0 (\d{3}) ?(.*)$/.exec(first);
  if (m) { msg.status = parseInt(m[1], 10); msg.reason = m[2]; }
  else {
    m = /^([A-Z]+) (\S+) SIP\/2\.0$/.exec(first);
    if (!m) throw new Error("not SIP: " + first);
    msg.method = m[1]; msg.uri = m[2];
  }
  for (const ln of lines) {
    const i = ln.indexOf(":");
    if (i < 0) continue;
    let name = ln.slice(0, i).trim().toLowerCase();
    name = COMPACT[name] || name;
    (msg.headers[name] = msg.headers[name] || []).push(ln.slice(i + 1).trim());
  }
  msg.get = (n) => (msg.headers[n.toLowerCase()] || [])[0] || "";
  msg.all = (n) => msg.headers[n.toLowerCase()] || [];
  const cseq = msg.get("cseq").split(/\s+/);
  msg.cseq = parseInt(cseq[0], 10); msg.cseqMethod = cseq[1];
  return msg;
}

function tagOf(h) { const m = /;\s*tag=([^;>\s]+)/i.exec(h); return m ? m[1] : ""; }
function uriOf(h) { const m = /<([^>]+)>/.exec(h); return m ? m[1] : h.split(";")[0].trim(); }
function branchOf(via) { const m = /;\s*branch=([^;\s]+)/i.exec(via); return m ? m[1] : ""; }

// digest answers a 401/407 challenge (RFC 2617, MD5, qop=auth or none).
function digest(challenge, method, uri, user, password) {
  const p = {};
  challenge.replace(/^Digest\s+/i, "").replace(/(\w+)=("([^"]*)"|[^,\s]*)/g, (_, k, v, q) => { p[k.toLowerCase()] = q !== undefined ? q : v; });
  const ha1 = md5(`${user}:${p.realm}:${password}`);
  const ha2 = md5(`${method}:${uri}`);
  let h = `Digest username="${user}", realm="${p.realm}", nonce="${p.nonce}", uri="${uri}", algorithm=MD5`;
  const qops = (p.qop || "").split(",").map((s) => s.trim());
  if (qops.includes("auth")) {
    const cnonce = rand(16), nc = "00000001";
    h += `, qop=auth, nc=${nc}, cnonce="${cnonce}", response="${md5(`${ha1}:${p.nonce}:${nc}:${cnonce}:auth:${ha2}`)}"`;
  } else {
    h += `, response="${md5(`${ha1}:${p.nonce}:${ha2}`)}"`;
  }
  if (p.opaque !== undefined) h += `, opaque="${p.opaque}"`;
  return h;
}

class SipUA {
  constructor({ url, domain, user, password, log, onInvite, onBye }) {
    Object.assign(this, { url, domain, user, password });
    this.log = log || (() => {});
    this.onInvite = onInvite || (() => {});
    this.onBye = onBye || (() => {});
    this.host = rand(12) + ".invalid";       // RFC 7118 §5.2: we cannot be reached but over our socket
    this.contact = `<sip:${rand(8)}@${this.host};transport=ws>`;
    this.pending = new Map();                 // branch -> {resolve, provisional}
    this.regCallID = rand(20);
    this.regCSeq = 0;
  }

  connect() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url, "sip");
      ws.onopen = () => { this.ws = ws; resolve(); };
      ws.onerror = () => reject(new Error("websocket to " + this.url + " failed"));
      ws.onclose = () => { this.log("websocket closed"); this.ws = null; };
      ws.onmessage = (ev) => this.receive(ev.data);
    });
  }

  send(text) {
    this.log(">>> sent\n" + text);
    this.ws.send(text);
  }

  receive(text) {
    if (typeof text !== "string" || text.trim() === "") return; // keep-alive
    this.log("<<< received\n" + text);
    let msg;
    try { msg = parseSIP(text); } catch (e) { this.log("unparsable: " + e); return; }
    if (msg.status) {
      const tx = this.pending.get(branchOf(msg.get("via")));
      if (!tx) return;
      if (msg.status < 200) { if (tx.provisional) tx.provisional(msg); return; }
      this.pending.delete(branchOf(msg.get("via")));
      tx.resolve(msg);
      return;
    }
    this.request(msg);
  }

  // request answers requests from the SBC.
  request(msg) {
    switch (msg.method) {
      case "OPTIONS": this.respond(msg, 200, "OK"); break;
      case "INVITE": this.onInvite(msg); break;
      case "BYE": this.respond(msg, 200, "OK"); this.onBye(msg); break;
      case "ACK": break;
      case "INFO": case "NOTIFY": case "MESSAGE": this.respond(msg, 200, "OK"); break;
      case "CANCEL": this.respond(msg, 200, "OK"); this.onBye(msg); break;
      default: this.respond(msg, 405, "Method Not Allowed", ["Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO"]);
    }
  }

  respond(req, code, reason, extra = [], body = "", toTag = "") {
    const lines = [`SIP/2.0 ${code} ${reason}`];
    for (const v of req.all("via")) lines.push("Via: " + v);
    for (const rr of req.all("record-route")) lines.push("Record-Route: " + rr);
    lines.push("From: " + req.get("from"));
    let to = req.get("to");
    if (toTag && !tagOf(to)) to += ";tag=" + toTag;
    lines.push("To: " + to);
    lines.push("Call-ID: " + req.get("call-id"));
    lines.push("CSeq: " + req.get("cseq"));
    lines.push(...extra);
    lines.push("Content-Length: " + new TextEncoder().encode(body).length);
    this.send(lines.join("\r\n") + "\r\n\r\n" + body);
  }

  // transact sends a request and resolves with its final response.
  transact({ method, uri, callID, cseq, from, to, extra = [], body = "", contentType = "", provisional }) {
    const branch = "z9hG4bK" + rand(16);
    const lines = [
      `${method} ${uri} SIP/2.0`,
      `Via: SIP/2.0/WSS ${this.host};branch=${branch}`,
      "Max-Forwards: 70",
      `From: ${from}`, `To: ${to}`, `Call-ID: ${callID}`, `CSeq: ${cseq} ${method}`,
      "User-Agent: siplab-webphone",
      ...extra,
    ];
    if (contentType) lines.push("Content-Type: " + contentType);
    lines.push("Content-Length: " + new TextEncoder().encode(body).length);
    const text = lines.join("\r\n") + "\r\n\r\n" + body;
    const p = method === "ACK" ? Promise.resolve(null) : new Promise((resolve) => this.pending.set(branch, { resolve, provisional }));
    this.send(text);
    return { promise: p, branch, text };
  }

  // register sends REGISTER (answering one digest challenge); expires 0 unregisters.
  async register(expires = 600) {
    const aor = `sip:${this.user}@${this.domain}`;
    if (!this.regTag) this.regTag = rand(10);
    let auth = [];
    for (let attempt = 0; attempt < 2; attempt++) {
      const res = await this.transact({
        method: "REGISTER", uri: `sip:${this.domain}`, callID: this.regCallID, cseq: ++this.regCSeq,
        from: `<${aor}>;tag=${this.regTag}`, to: `<${aor}>`,
        extra: [`Contact: ${this.contact};expires=${expires}`, `Expires: ${expires}`, ...auth],
      }).promise;
      if (res.status === 401 || res.status === 407) {
        const hdr = res.status === 401 ? "www-authenticate" : "proxy-authenticate";
        const name = res.status === 401 ? "Authorization" : "Proxy-Authorization";
        auth = [`${name}: ${digest(res.get(hdr), "REGISTER", `sip:${this.domain}`, this.user, this.password)}`];
        continue;
      }
      return res;
    }
    throw new Error("REGISTER: credentials refused");
  }

  // invite places a call with an SDP offer; resolves with the dialog and answer.
  async invite(target, sdp, onProvisional) {
    const uri = target.includes("@") ? `sip:${target}` : `sip:${target}@${this.domain}`;
    const d = { callID: rand(20), localTag: rand(10), cseq: 0, remoteURI: uri, to: `<${uri}>`, from: `<sip:${this.user}@${this.domain}>` };
    d.from += ";tag=" + d.localTag;
    let auth = [];
    for (let attempt = 0; attempt < 2; attempt++) {
      const tx = this.transact({
        method: "INVITE", uri, callID: d.callID, cseq: ++d.cseq, from: d.from, to: d.to,
        extra: [`Contact: ${this.contact}`, "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO", ...auth],
        body: sdp, contentType: "application/sdp", provisional: onProvisional,
      });
      d.inviteBranch = tx.branch;
      d.inviteCSeq = d.cseq;
      const res = await tx.promise;
      if (res.status >= 300) this.ackFailure(d, res, tx.branch, uri);
      if ((res.status === 401 || res.status === 407) && attempt === 0) {
        const hdr = res.status === 401 ? "www-authenticate" : "proxy-authenticate";
        const name = res.status === 401 ? "Authorization" : "Proxy-Authorization";
        auth = [`${name}: ${digest(res.get(hdr), "INVITE", uri, this.user, this.password)}`];
        continue;
      }
      if (res.status >= 300) throw new Error(`call failed: ${res.status} ${res.reason}`);
      d.to = res.get("to");
      d.remoteTarget = uriOf(res.get("contact")) || uri;
      d.routes = res.all("record-route").slice().reverse();
      this.ack(d);
      return { dialog: d, answer: res.body };
    }
    throw new Error("INVITE: credentials refused");
  }

  // ackFailure ACKs a non-2xx final response: same branch, hop by hop.
  ackFailure(d, res, branch, uri) {
    const lines = [`ACK ${uri} SIP/2.0`, `Via: SIP/2.0/WSS ${this.host};branch=${branch}`, "Max-Forwards: 70",
      `From: ${d.from}`, `To: ${res.get("to")}`, `Call-ID: ${d.callID}`, `CSeq: ${d.cseq} ACK`, "Content-Length: 0"];
    this.send(lines.join("\r\n") + "\r\n\r\n");
  }

  routeHeaders(d) { return (d.routes || []).map((r) => "Route: " + r); }

  ack(d) {
    this.transact({ method: "ACK", uri: d.remoteTarget, callID: d.callID, cseq: d.inviteCSeq, from: d.from, to: d.to, extra: this.routeHeaders(d) });
  }

  bye(d) {
    return this.transact({ method: "BYE", uri: d.remoteTarget, callID: d.callID, cseq: ++d.cseq, from: d.from, to: d.to, extra: this.routeHeaders(d) }).promise;
  }

  info(d, digit) {
    return this.transact({ method: "INFO", uri: d.remoteTarget, callID: d.callID, cseq: ++d.cseq, from: d.from, to: d.to,
      extra: this.routeHeaders(d), body: `Signal=${digit}\r\nDuration=160\r\n`, contentType: "application/dtmf-relay" }).promise;
  }

  // dialogOf makes the UAS side dialog of an incoming INVITE.
  dialogOf(req) {
    const d = { callID: req.get("call-id"), localTag: rand(10), cseq: 1000, incoming: req };
    d.from = req.get("to") + ";tag=" + d.localTag;
    d.to = req.get("from");
    d.remoteTarget = uriOf(req.get("contact"));
    d.routes = req.all("record-route");
    return d;
  }
}
