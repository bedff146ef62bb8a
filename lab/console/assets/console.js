// The classroom console's page: one EventSource for the lab's state, the
// calls and the doctor's findings; buttons POST to the console's API (the
// same code as the siplab verbs). No framework, no build step.
'use strict';
(() => {
const $ = id => document.getElementById(id);
const esc = s => String(s ?? '').replace(/[&<>"']/g, c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));
const root = document.documentElement;
let state = null, calls = null, meta = null;
const shown = {call: 0, version: ''};
// For the e2e test's click-to-ladder time (performance.now()): when each
// call was first listed by an event and first drawn, when the last button
// got its answer.
window.siplab = {shown, renders: 0, shownAt: {}, listedAt: {}, postedAt: 0};

// ---- projector mode ----
const setProjector = on => {
	root.classList.toggle('projector', on);
	localStorage.setItem('siplab.projector', on ? '1' : '');
	const d = frameDoc();
	if (d) d.documentElement.classList.toggle('projector', on);
};
$('btn-projector').onclick = () => setProjector(!root.classList.contains('projector'));
setProjector(new URLSearchParams(location.search).has('projector') || localStorage.getItem('siplab.projector') === '1');

// ---- actions ----
async function post(path, body, out = $('out')) {
	out.classList.remove('err');
	out.textContent = '… ' + path.replace('/api/', '') + ' ' + Object.values(body).flat().join(' ');
	let res;
	try {
		const r = await fetch(path, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
		res = await r.json();
		window.siplab.postedAt = performance.now();
	} catch (e) {
		res = {ok: false, error: String(e)};
	}
	out.textContent = (res.output || '') + (res.error ? (res.output ? '\n' : '') + 'error: ' + res.error : '');
	if (!res.ok) out.classList.add('err');
	if (!out.textContent) out.textContent = 'done';
	return res;
}
async function busy(btn, f) {
	btn.disabled = true;
	try { return await f(); } finally { btn.disabled = false; }
}
for (const b of document.querySelectorAll('#phones .buttons button')) {
	b.onclick = () => busy(b, () => {
		const args = b.dataset.arg ? [$(b.dataset.arg).value.trim()] : [];
		return post('/api/phone', {verb: b.dataset.verb, phone: $('phone').value, args});
	});
}
$('btn-reset-lab').onclick = e => busy(e.target, () => post('/api/reset', {}));
$('btn-doctor-state').onclick = e => busy(e.target, async () => {
	const res = await post('/api/doctor', {});
	stateFindings = res.result || [];
	renderFindings();
});
for (const b of document.querySelectorAll('#exercises button')) {
	b.onclick = () => busy(b, async () => {
		const req = {op: b.dataset.op, id: $('ex-select').value};
		// The answer an exercise asks for (siplab exercise check -answer).
		const answer = $('ex-answer').value.trim();
		if (b.dataset.op === 'check' && answer !== '') req.answer = answer;
		const res = await post('/api/exercise', req, $('ex-out'));
		if (res.result) $('ex-out').classList.add(res.result.pass ? 'pass' : 'fail');
		else $('ex-out').classList.remove('pass', 'fail');
		loadExercises();
	});
}

// ---- exercises ----
async function loadExercises() {
	const r = await fetch('/api/exercises');
	const doc = await r.json();
	const sel = $('ex-select'), keep = sel.value;
	sel.innerHTML = doc.exercises.map(e => `<option value="${esc(e.id)}">${esc(e.id)} — ${esc(e.title)}${e.passed ? ' ✓' : ''}</option>`).join('');
	sel.value = doc.current || keep || doc.exercises[0]?.id;
	$('ex-current').textContent = doc.current ? 'started: ' + doc.current : 'none started';
	const cur = doc.exercises.find(e => e.id === sel.value);
	$('ex-task').textContent = cur && doc.current === cur.id ? cur.task : '';
}
$('ex-select').onchange = () => loadExercises();

// ---- state ----
const zone = a => /^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.)/.test(a) ? 'private' : 'public';
function nameOf(addr) {
	const ip = String(addr).replace(/:\d+$/, '');
	for (const n of state?.nodes || []) for (const a of Object.values(n.addresses || {})) if (a === ip) return n.name;
	return '';
}
function renderTopology() {
	const nodes = state.nodes || [];
	const nets = new Set();
	for (const n of nodes) for (const k of Object.keys(n.addresses || {})) nets.add(k);
	// A LAN behind a router: site-a, site-b, and browser (router-w's, where the host's browser sits).
	const isSite = n => n.startsWith('site') || n === 'browser';
	const sites = [...nets].filter(isSite).sort();
	const placed = new Set();
	const card = n => {
		placed.add(n.name);
		const d = n.daemon || {};
		let kv = '';
		if (n.role === 'router') {
			kv = `<div class="kv">NAT <b>${esc(d.preset?.name)}</b>, pinhole <b>${esc(d.pinhole_seconds)}s</b>, ALG <b class="${d.alg && d.alg !== 'off' ? 'bad' : ''}">${esc(d.alg)}</b>, ${(d.mappings || []).length} mappings</div>`;
		} else if (n.role === 'phone') {
			const reg = d.registration?.state;
			kv = `<div class="kv">registration <b class="${reg === 'registered' ? 'ok' : 'bad'}">${esc(reg)}</b>, ${(d.calls || []).filter(c => c.state !== 'ended').length} call(s)</div>`;
		} else if (d.summary) {
			kv = `<div class="kv">${esc(d.summary)}</div>`;
		}
		const addrs = Object.entries(n.addresses || {}).sort().map(([net, a]) =>
			`<span class="addr ${isSite(net) ? 'site' : net === 'internet' ? 'public' : 'core'}">${esc(net)}: ${esc(a)}</span>`).join('');
		return `<div class="node ${esc(n.role)}${n.running ? '' : ' down'}" data-node="${esc(n.name)}"><span class="name">${esc(n.name)}</span><span class="role">${esc(n.role)}${n.running ? '' : ' (' + esc(n.state) + ')'}</span>${addrs}${kv}${n.error ? `<div class="bad kv">${esc(n.error)}</div>` : ''}</div>`;
	};
	let html = '';
	for (const s of sites) {
		const on = nodes.filter(n => n.addresses?.[s]);
		const routers = on.filter(n => n.role === 'router'), rest = on.filter(n => n.role !== 'router');
		html += `<div class="net site" data-net="${esc(s)}"><h3>${esc(s)} <span class="dim">(LAN behind ${esc(routers.map(r => r.name).join(', ') || 'no router')})</span></h3><div class="nodes">${rest.map(card).join('')}${routers.map(card).join('')}</div></div>`;
	}
	const platform = nodes.filter(n => !placed.has(n.name));
	html += `<div class="net platform"><h3>platform and internet</h3><div class="nodes">${platform.map(card).join('')}</div></div>`;
	$('topo').innerHTML = html;
}
function row(cells, cls = '') { return `<tr class="${cls}">${cells.join('')}</tr>`; }
const td = (v, cls = '') => `<td class="${cls}">${esc(v)}</td>`;
function renderTables() {
	const nodes = state.nodes || [];
	let calls = '', regs = '', maps = '';
	for (const n of nodes) {
		const d = n.daemon || {};
		if (n.role === 'phone' || n.role === 'carrier') {
			for (const c of d.calls || []) {
				const m = c.media || {}, rx = m.received || {}, tx = m.sent || {};
				const from = rx.last_source ? `${nameOf(rx.last_source) || '?'} (${rx.last_source})` : '—';
				calls += row([td(n.name), td(c.id), td(`${c.direction} ${c.peer}`), td(c.state + (c.code ? ' ' + c.code : '')), td(c.codec),
					td(tx.packets ?? 0, 'num tx'), td(rx.packets ?? 0, 'num rx'), td(rx.lost ?? 0, 'num'), td((rx.jitter_ms ?? 0).toFixed(1), 'num'), td(from)],
					`call ${c.state}`);
			}
		}
		if (n.role === 'registrar') {
			for (const b of d.registrations || []) {
				const written = String(b.contact_uri || '').replace(/^sips?:[^@]*@/, '').replace(/[;>].*$/, '');
				const mismatch = written.split(':')[0] !== String(b.source).split(':')[0];
				regs += row([td(b.aor), td(b.contact_uri), td(`${b.source}/${b.transport}`, 'seen'), td(nameOf(b.source))], mismatch ? 'mismatch' : '');
			}
		}
		if (n.role === 'router') {
			for (const m of d.mappings || []) {
				maps += row([td(n.name), td(m.proto), td(m.inside), td(m.outside), td(m.remote), td(m.packets_out, 'num'), td(m.packets_in, 'num')]);
			}
		}
	}
	calls += browserRows(state.browser_calls || []);
	$('calls').innerHTML = '<tr><th>phone</th><th>call</th><th>peer</th><th>state</th><th>codec</th><th>RTP sent</th><th>RTP rcvd</th><th>lost</th><th>jitter ms</th><th>hears (last RTP from)</th></tr>' + (calls || '<tr><td colspan="10" class="dim">no calls</td></tr>');
	$('regs').innerHTML = '<tr><th>AOR</th><th>Contact as written</th><th>source seen</th><th>who</th></tr>' + (regs || '<tr><td colspan="4" class="dim">none</td></tr>');
	$('maps').innerHTML = '<tr><th>router</th><th>proto</th><th>inside</th><th>outside</th><th>remote</th><th>pkts out</th><th>pkts in</th></tr>' + (maps || '<tr><td colspan="7" class="dim">none</td></tr>');
}
// browserRows are the browser calls through the SBC's WebRTC gateway
// (read by the console out of the SBC's status): a row like a phone's call,
// its counters the gateway's, then a line with ICE, DTLS, the selected pair
// and who hears whom, and the doctor's reason when ICE failed.
function browserRows(bcs) {
	let html = '';
	const good = s => ['connected', 'completed'].includes(s) ? 'ok' : ['failed', 'disconnected', 'closed'].includes(s) ? 'bad' : '';
	for (const c of bcs) {
		const tx = c.from_browser || {}, rx = c.to_browser || {};
		const who = `<td>${esc(c.user)} <span class="badge" title="a browser call through the SBC's WebRTC gateway (${esc(c.node)})">browser</span></td>`;
		const id = `<td title="${esc(c.id)}${c.sbc_call ? ' (sbc ' + esc(c.sbc_call) + ')' : ''}">${esc(String(c.id).slice(0, 10))}…</td>`;
		html += row([who, id, td(`${c.direction} ${c.peer}`), td(c.state || '—'), td(c.codec),
			td(tx.packets ?? 0, 'num tx'), td(rx.packets ?? 0, 'num rx'), td('—', 'num'), td('—', 'num'), td(rx.hears)],
			`call browser ${esc(c.state)}`).replace('<tr ', `<tr data-browser-call="${esc(c.id)}" `);
		const pair = c.pair
			? `pair <b class="pair" data-browser="${esc(c.browser_type)}" data-gateway="${esc(c.gateway_type)}">${esc(c.pair)}</b> <span class="dim">(browser ↔ gateway)</span>`
			: 'pair <b class="pair bad">none</b>';
		const fail = c.ice_failed ? `<div class="bad ice-failed">${esc(c.ice_failed)}</div><div class="dim">fix: ${esc(c.ice_fix)}</div>` : '';
		html += `<tr class="call browser detail"><td></td><td colspan="9">ICE <b class="${good(c.ice)}">${esc(c.ice)}</b>, DTLS <b class="${good(c.dtls)}">${esc(c.dtls)}</b>, ${pair}<br>` +
			`${esc(tx.hears)}; ${esc(rx.hears)}${fail}</td></tr>`;
	}
	return html;
}
// Live toggles: every setting the selected node reports, each with its own
// Set button; routers get their preset list.
function settingsOf(n) {
	const d = n?.daemon || {};
	if (n?.role === 'router') return {preset: d.preset?.name, pinhole: (d.pinhole_seconds ?? '') + 's', alg: d.alg};
	const s = d.settings;
	if (!s || typeof s !== 'object') return {};
	const out = {};
	for (const [k, v] of Object.entries(s)) if (v === null || typeof v !== 'object') out[k] = v;
	return out;
}
let togglesKey = '';
function renderToggles() {
	const sel = $('set-node');
	const names = (state.nodes || []).filter(n => Object.keys(settingsOf(n)).length).map(n => n.name);
	if (sel.dataset.names !== names.join()) {
		const keep = sel.value;
		sel.innerHTML = names.map(n => `<option>${esc(n)}</option>`).join('');
		sel.dataset.names = names.join();
		if (names.includes(keep)) sel.value = keep;
	}
	const node = (state.nodes || []).find(n => n.name === sel.value);
	const s = settingsOf(node);
	const key = sel.value + ':' + Object.keys(s).join();
	if (key !== togglesKey) {
		togglesKey = key;
		$('toggles').innerHTML = '<tr><th>setting</th><th>now</th><th>new value</th><th></th></tr>' + Object.keys(s).map(k => {
			let input = `<input data-key="${esc(k)}" size="12">`;
			if (node.role === 'router' && k === 'preset') input = `<select data-key="preset">${(meta?.presets || []).map(p => `<option title="${esc(p.doc)}">${esc(p.name)}</option>`).join('')}</select>`;
			if (node.role === 'router' && k === 'alg') input = `<select data-key="alg">${(meta?.alg || []).map(a => `<option>${esc(a)}</option>`).join('')}</select>`;
			return `<tr data-key="${esc(k)}"><td>${esc(k)}</td><td class="now"></td><td>${input}</td><td><button data-set="${esc(k)}">set</button></td></tr>`;
		}).join('');
		for (const b of $('toggles').querySelectorAll('button[data-set]')) {
			b.onclick = () => busy(b, () => post('/api/set', {node: sel.value, key: b.dataset.set, value: $('toggles').querySelector(`[data-key="${b.dataset.set}"] [data-key]`).value.trim()}));
		}
	}
	for (const tr of $('toggles').querySelectorAll('tr[data-key]')) {
		tr.querySelector('.now').textContent = s[tr.dataset.key] ?? '';
	}
}
$('set-node').onchange = () => renderToggles();
function renderPhones() {
	const sel = $('phone');
	const names = (state.nodes || []).filter(n => n.role === 'phone' || n.role === 'carrier').map(n => n.name);
	if (sel.dataset.names !== names.join()) {
		const keep = sel.value;
		sel.innerHTML = names.map(n => `<option>${esc(n)}</option>`).join('');
		sel.dataset.names = names.join();
		sel.value = names.includes(keep) ? keep : names[0];
	}
}
// renderWebphone points the certificate link at the SBC's WSS listener
// (the browser phone's SIP WebSocket).
function renderWebphone() {
	const wss = (state.nodes || []).find(n => n.role === 'sbc')?.daemon?.access_wss;
	if (wss) { const a = $('webphone-cert'); a.href = a.textContent = `https://${wss}/`; }
}
function onState(doc) {
	state = doc;
	$('polled').textContent = doc.error ? 'lab: ' + doc.error : `${(doc.nodes || []).length} nodes, read in ${doc.took} at ${new Date(doc.at).toLocaleTimeString()}`;
	renderTopology();
	renderTables();
	renderPhones();
	renderToggles();
	renderWebphone();
	window.siplab.stateAt = performance.now();
}

// ---- calls, live ladder, doctor ----
const frame = $('ladder');
function frameDoc() { try { return frame.contentDocument; } catch (e) { return null; } }
// An empty standards-mode page to swap the first ladder into: no frame
// load between a click and its call.
frame.onload = () => {
	frame.onload = null;
	frame.dataset.ready = '1';
	frameDoc().documentElement.classList.toggle('projector', root.classList.contains('projector'));
};
frame.srcdoc = '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"></head><body></body></html>';
let stateFindings = [];
function onCalls(doc) {
	if (doc.delta && calls) {
		// Only the calls that changed: merge them into the list we have.
		const byN = new Map((calls.calls || []).map(c => [c.n, c]));
		for (const c of doc.calls || []) byN.set(c.n, c);
		doc.calls = (doc.order || []).map(n => byN.get(n)).filter(Boolean);
		if (!doc.findings) doc.findings = calls.findings;
	}
	calls = doc;
	for (const c of doc.calls || []) window.siplab.listedAt[c.n] ??= performance.now();
	const sel = $('call-select');
	const opts = (doc.calls || []).slice().reverse().map(c => `<option value="${c.n}">call ${c.n}: ${esc(c.summary)}</option>`).join('');
	if (sel.dataset.opts !== opts) {
		const keep = sel.value;
		sel.innerHTML = opts || '<option value="">no calls yet</option>';
		sel.dataset.opts = opts;
		if (keep) sel.value = keep;
	}
	const newest = (doc.calls || []).at(-1);
	if ($('follow').checked && newest) sel.value = String(newest.n);
	$('ladder-info').textContent = doc.error ? doc.error : `built in ${doc.took}`;
	showCall(Number(sel.value) || 0);
	renderFindings();
}
$('call-select').onchange = () => { $('follow').checked = false; showCall(Number($('call-select').value)); };
let loading = null;
async function showCall(n, then) {
	const c = (calls?.calls || []).find(c => c.n === n);
	if (!c) return;
	if (shown.call === n && shown.version === c.version && !then) return;
	// RTP counts alone redraw at most once a second; a new message or
	// stream at once.
	const [msgs, streams] = c.version.split('.'), [smsgs, sstreams] = shown.version.split('.');
	const wait = 1000 - (performance.now() - (window.siplab.renderedAt || 0));
	if (!then && shown.call === n && msgs === smsgs && streams === sstreams && wait > 0) {
		clearTimeout(showCall.later);
		showCall.later = setTimeout(() => showCall(Number($('call-select').value) || 0), wait);
		return;
	}
	if (loading) { loading.again = true; loading.then = then || loading.then; return; }
	loading = {again: false};
	try {
		const r = await fetch('/ladder?call=' + n);
		const html = await r.text();
		const d = frameDoc();
		if (d && d.body && frame.dataset.ready === '1') {
			// Swap the drawing in place, no frame reload, also for a new
			// call (its head differs only by the title). The same call
			// grown keeps what the reader opened and where they scrolled.
			const same = shown.call === n;
			const open = same ? [...d.querySelectorAll('details[open]')].map(e => e.id).filter(Boolean) : [];
			const y = same ? d.defaultView.scrollY : 0;
			const nd = new DOMParser().parseFromString(html, 'text/html');
			if (d.head.innerHTML !== nd.head.innerHTML) d.head.replaceWith(d.adoptNode(nd.head));
			d.body.replaceWith(d.adoptNode(nd.body));
			for (const id of open) d.getElementById(id)?.setAttribute('open', '');
			d.defaultView.scrollTo(0, y);
			if ($('follow').checked && y + d.defaultView.innerHeight >= d.documentElement.scrollHeight - 200) d.defaultView.scrollTo(0, d.documentElement.scrollHeight);
		} else {
			frame.dataset.ready = '0';
			await new Promise(res => { frame.onload = res; frame.srcdoc = html; });
			frame.dataset.ready = '1';
			frameDoc().documentElement.classList.toggle('projector', root.classList.contains('projector'));
		}
		shown.call = n; shown.version = c.version;
		window.siplab.renders++;
		window.siplab.renderedAt = performance.now();
		if (!(n in window.siplab.shownAt)) window.siplab.shownAt[n] = window.siplab.renderedAt;
	} finally {
		const l = loading; loading = null;
		if (l.then) l.then();
		if (l.again) showCall(Number($('call-select').value) || 0);
	}
}
// A finding's evidence opens its message in the ladder.
function openMessage(callN, msgN) {
	$('follow').checked = false;
	$('call-select').value = String(callN);
	const go = () => {
		const d = frameDoc(), el = d?.getElementById('m' + msgN);
		if (!el) return;
		for (const h of d.querySelectorAll('details.hit')) h.classList.remove('hit');
		el.open = true;
		el.classList.add('hit');
		el.scrollIntoView({block: 'center'});
	};
	if (shown.call === callN) go(); else showCall(callN, go);
}
function renderFindings() {
	const all = [...stateFindings, ...(calls?.findings || [])];
	$('findings').innerHTML = all.length ? all.map((f, i) => {
		const ev = (f.evidence || []).map(e => {
			const at = e.call_n && e.n ? `<a href="#" data-call="${e.call_n}" data-msg="${e.n}">call ${e.call_n} #${e.n}</a>` : esc(e.call_id ? 'dialog ' + e.call_id.slice(0, 12) : '');
			return `<span class="ev">${at} at ${esc(e.iface)}: ${esc(e.what)}</span>`;
		}).join('');
		return `<li class="${esc(f.severity)}"><b>${esc(f.severity)}</b> [${esc(f.rule)}] ${f.call_n ? 'call ' + f.call_n + ': ' : ''}${esc(f.summary)}${ev}<span class="ev"><i>fix:</i> ${esc(f.fix)}</span></li>`;
	}).join('') : '<li class="dim">no findings (warnings and errors) in the captured calls</li>';
	for (const a of $('findings').querySelectorAll('a[data-call]')) {
		a.onclick = e => { e.preventDefault(); openMessage(Number(a.dataset.call), Number(a.dataset.msg)); };
	}
}

// ---- the stream ----
function connect() {
	const es = new EventSource('/events');
	es.onopen = () => { $('conn').textContent = 'live'; $('conn').className = 'conn on'; };
	es.onerror = () => { $('conn').textContent = 'reconnecting…'; $('conn').className = 'conn off'; };
	es.addEventListener('state', e => onState(JSON.parse(e.data)));
	es.addEventListener('calls', e => onCalls(JSON.parse(e.data)));
}
fetch('/api/meta').then(r => r.json()).then(m => { meta = m; togglesKey = ''; if (state) renderToggles(); });
loadExercises();
connect();
})();
