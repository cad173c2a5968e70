// pfes dashboard page: one WebSocket (a "full" message, then batched "update"s), one
// <canvas> per stream/track curve, redrawn at most once per animation frame.
"use strict";

const S = {
  windowS: 60, curves: new Map(), events: [], eventKeys: new Set(), status: {},
  serverSkew: 0, dirty: new Set(), ws: null, backoff: 500,
};
const COLORS = { curve: "#1f77b4", open: "#d62728", close: "#ff7f0e", macro: "rgba(25,113,194,0.18)",
  micro: "rgba(194,37,92,0.25)", apex: "#333" };
const $ = (id) => document.getElementById(id);

function fmt(x, d) { return (x === null || x === undefined || isNaN(x)) ? "-" : Number(x).toFixed(d); }
function base(p) { return String(p).split(/[\\/]/).pop(); }
function streamOf(key) { return key.slice(0, key.lastIndexOf("/")); }

// -- curves ------------------------------------------------------------------------------
function curve(key) {
  let c = S.curves.get(key);
  if (!c) {
    c = { t: [], i: [], epoch: 0, el: null, canvas: null };
    const div = document.createElement("div");
    div.className = "curve";
    div.dataset.key = key;
    div.innerHTML = `<div class="legend"><b></b> intensity, last <span class="win"></span> s;
      <span style="color:${COLORS.open}">open</span> / <span style="color:${COLORS.close}">close</span>
      thresholds; shaded: events</div><canvas width="900" height="160"></canvas>`;
    div.querySelector("b").textContent = key;
    div.querySelector(".win").textContent = S.windowS;
    $("curves").appendChild(div);
    c.el = div;
    c.canvas = div.querySelector("canvas");
    S.curves.set(key, c);
    addStreamOption(streamOf(key));
  }
  return c;
}

function addPoints(key, ts, vs) {
  const c = curve(key);
  const last = c.t.length ? c.t[c.t.length - 1] : -Infinity;
  for (let k = 0; k < ts.length; k++) {
    if (ts[k] <= last) continue;  // already have it (a full message raced an update)
    c.t.push(ts[k]); c.i.push(vs[k]);
  }
  const cut = c.t.length ? c.t[c.t.length - 1] - S.windowS : 0;
  let n = 0;
  while (n < c.t.length && c.t[n] < cut) n++;
  if (n) { c.t.splice(0, n); c.i.splice(0, n); }
  S.dirty.add(key);
}

function thresholds(key) {
  const st = S.status[streamOf(key)];
  return st && st.thresholds ? st.thresholds : null;
}

function draw(key) {
  const c = S.curves.get(key);
  if (!c) return;
  const cv = c.canvas, w = cv.clientWidth || 900, h = cv.height;
  if (cv.width !== w) cv.width = w;
  const g = cv.getContext("2d");
  g.clearRect(0, 0, cv.width, h);
  const t1 = c.t.length ? c.t[c.t.length - 1] : 0, t0 = t1 - S.windowS;
  let ymax = 1;
  for (const v of c.i) if (v > ymax) ymax = v;
  const X = (t) => (t - t0) / S.windowS * (cv.width - 1);
  const Y = (v) => h - 4 - v / ymax * (h - 8);
  // events of this track and epoch: shaded span, apex line
  const [stream, track] = [streamOf(key), key.slice(key.lastIndexOf("/") + 1)];
  for (const ev of S.events) {
    if (ev.stream !== stream || String(ev.track) !== track || ev.epoch !== c.epoch) continue;
    if (ev.offset_s < t0) continue;
    g.fillStyle = COLORS[ev.kind] || COLORS.macro;
    g.fillRect(X(ev.onset_s), 0, Math.max(2, X(ev.offset_s) - X(ev.onset_s)), h);
    g.fillStyle = COLORS.apex;
    g.fillRect(X(ev.apex_s), 0, 1, h);
  }
  const th = thresholds(key);
  if (th) {
    g.setLineDash([5, 4]);
    for (const [name, v] of [["open", th.open], ["close", th.close]]) {
      g.strokeStyle = COLORS[name]; g.lineWidth = 1;
      g.beginPath(); g.moveTo(0, Y(v)); g.lineTo(cv.width, Y(v)); g.stroke();
    }
    g.setLineDash([]);
  }
  g.strokeStyle = COLORS.curve; g.lineWidth = 2;
  g.beginPath();
  for (let k = 0; k < c.t.length; k++) {
    const x = X(c.t[k]), y = Y(c.i[k]);
    if (k === 0) g.moveTo(x, y); else g.lineTo(x, y);
  }
  g.stroke();
}

function frame() {
  for (const key of S.dirty) draw(key);
  S.dirty.clear();
  requestAnimationFrame(frame);
}

// -- events ------------------------------------------------------------------------------
function evKey(ev) { return `${ev.seq}|${ev.emitted_at}|${ev.stream}`; }

function movedText(m) {
  if (!m) return "";
  const items = Array.isArray(m) ? m : Object.entries(m);
  return items.slice(0, 4).map((x) => {
    if (Array.isArray(x)) return `${x[0]} ${typeof x[1] === "number" ? (x[1] >= 0 ? "+" : "") + x[1].toFixed(2) : x[1]}`;
    if (x && typeof x === "object") {
      const name = x.name || x.blendshape || x.key || "";
      const d = x.delta !== undefined ? x.delta : x.change;
      return typeof d === "number" ? `${name} ${(d >= 0 ? "+" : "") + d.toFixed(2)}` : String(name);
    }
    return String(x);
  }).join(", ");
}

function addEvent(ev) {
  const k = evKey(ev);
  if (S.eventKeys.has(k)) return;
  S.eventKeys.add(k);
  S.events.push(ev);
  const tr = document.createElement("tr");
  tr.className = `event ${ev.kind}`;
  tr.dataset.seq = ev.seq; tr.dataset.stream = ev.stream; tr.dataset.kind = ev.kind;
  tr.dataset.apexFrame = ev.apex_frame; tr.dataset.emittedAt = ev.emitted_at;
  const at = new Date(ev.emitted_at * 1000).toLocaleTimeString();
  const cells = ["", at, ev.stream + (ev.track ? ` #${ev.track}` : ""), ev.kind, `${fmt(ev.apex_s, 2)} s`,
    `${fmt(ev.offset_s - ev.onset_s, 2)} s`, fmt(ev.score, 2), fmt(ev.class_prob, 2),
    `${fmt(ev.latency_ms, 1)} ms`, ""];
  cells.forEach((text, n) => {
    const td = document.createElement("td");
    td.textContent = text;
    if (n === 3) td.className = "kind";
    tr.appendChild(td);
  });
  const snap = ev.snapshot || {};
  const thumb = snap.face || snap.frame;
  if (thumb) {
    const a = document.createElement("a");
    a.href = "snapshots/" + encodeURIComponent(base(snap.frame || thumb));
    a.target = "_blank";
    const img = document.createElement("img");
    img.className = "thumb";
    img.alt = `event ${ev.seq}`;
    let tries = 0;
    img.onerror = () => { if (++tries < 20) setTimeout(() => { img.src = img.dataset.src + "?r=" + tries; }, 500); };
    img.dataset.src = "snapshots/" + encodeURIComponent(base(thumb));
    img.src = img.dataset.src;
    a.appendChild(img);
    tr.firstChild.appendChild(a);
  }
  if (snap.clip) {
    const c = document.createElement("a");
    c.href = "snapshots/" + encodeURIComponent(base(snap.clip));
    c.target = "_blank"; c.className = "clip"; c.textContent = "clip";
    tr.firstChild.appendChild(c);
  }
  const what = tr.lastChild;
  what.className = "what";
  if (ev.what) what.textContent = ev.what;
  const mv = movedText(ev.moved);
  if (mv) {
    const span = document.createElement("div");
    span.className = "moved"; span.textContent = mv;
    what.appendChild(span);
  }
  applyFilter(tr);
  $("events").tBodies[0].prepend(tr);
  const rows = $("events").tBodies[0].rows;
  while (rows.length > 500) rows[rows.length - 1].remove();
  while (S.events.length > 500) S.eventKeys.delete(evKey(S.events.shift()));
  $("n-events").textContent = S.events.length;
  addStreamOption(ev.stream);
  S.dirty.add(`${ev.stream}/${ev.track}`);
}

function applyFilter(tr) {
  const fs = $("f-stream").value, fk = $("f-kind").value;
  tr.classList.toggle("hidden", (fs && tr.dataset.stream !== fs) || (fk && tr.dataset.kind !== fk));
}

function applyFilters() {
  for (const tr of $("events").tBodies[0].rows) applyFilter(tr);
  const fs = $("f-stream").value;
  for (const [key, c] of S.curves) c.el.style.display = (fs && streamOf(key) !== fs) ? "none" : "";
  for (const el of document.querySelectorAll(".health")) el.style.display = (fs && el.dataset.stream !== fs) ? "none" : "";
}

function addStreamOption(name) {
  const sel = $("f-stream");
  if ([...sel.options].some((o) => o.value === name)) return;
  const o = document.createElement("option");
  o.value = name; o.textContent = name;
  sel.appendChild(o);
}

// -- health ------------------------------------------------------------------------------
function renderHealth(now) {
  const box = $("health");
  for (const [name, st] of Object.entries(S.status)) {
    let el = box.querySelector(`.health[data-stream="${CSS.escape(name)}"]`);
    if (!el) {
      el = document.createElement("div");
      el.className = "health"; el.dataset.stream = name;
      box.appendChild(el);
      addStreamOption(name);
    }
    const age = now - st.received_at;
    const live = age < 3.5 && !st.ended;
    const state = st.ended ? "ended" : !live ? `silent ${fmt(age, 0)} s` : st.connected === false ? "reconnecting" : "live";
    const lat = (st.latency_ms || {}).compute || {};
    const stages = ["decode", "landmarks", "features", "engine", "detector", "publish"]
      .map((k) => `${k} ${fmt(((st.latency_ms || {})[k] || {}).p50, 2)}`).join(", ");
    const noisy = st.tracking_noisy ? ` <span class="bad">noisy tracking (${fmt(st.tracking_noise_iod, 4)} IOD)</span>` : "";
    el.innerHTML = `<b></b> <span class="${state === "live" ? "ok" : "bad"} state">${state}</span>
      <div class="row">${fmt(st.fps, 1)} fps, ${st.frames} frames, ${st.dropped} dropped, faces ${st.faces},
      events ${st.events}, reconnects ${st.reconnects || 0}</div>
      <div class="row">compute p50 ${fmt(lat.p50, 1)} ms, p99 ${fmt(lat.p99, 1)} ms${noisy}</div>
      <div class="row stages">p50 ms: ${stages}</div>`;
    el.querySelector("b").textContent = name;
  }
}

// -- wire --------------------------------------------------------------------------------
function onFull(m) {  // (re)connected: start over from the server's state
  S.windowS = m.window_s;
  for (const [key, c] of S.curves) { c.t = []; c.i = []; S.dirty.add(key); }
  S.events = []; S.eventKeys.clear();
  $("events").tBodies[0].replaceChildren();
  for (const [key, c] of Object.entries(m.curves)) {
    curve(key).epoch = c.epoch;
    addPoints(key, c.t, c.i);
  }
  onCommon(m);
}

function onUpdate(m) {
  for (const [key, epoch] of Object.entries(m.resets)) {
    const c = curve(key);
    c.t = []; c.i = []; c.epoch = epoch;
    S.dirty.add(key);
  }
  for (const [key, p] of Object.entries(m.points)) addPoints(key, p.t, p.i);
  onCommon(m);
}

function onCommon(m) {
  Object.assign(S.status, m.status);
  for (const ev of m.events) addEvent(ev);
  for (const key of S.curves.keys()) if (m.status[streamOf(key)]) S.dirty.add(key);
  const pubs = Object.values(m.publishers || {});
  const restarts = pubs.reduce((a, p) => a + p.restarts, 0), missed = pubs.reduce((a, p) => a + p.missed, 0);
  $("pubs").textContent = pubs.length ? `publisher restarts ${restarts}, missed events ${missed}` : "";
  renderHealth(m.now);
}

function connect() {
  const url = new URL("ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(url);
  S.ws = ws;
  ws.onopen = () => { $("conn").textContent = "connected"; $("conn").className = "ok"; S.backoff = 500; };
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.type === "full") onFull(m); else if (m.type === "update") onUpdate(m);
  };
  ws.onclose = () => {
    $("conn").textContent = "disconnected, retrying"; $("conn").className = "bad";
    setTimeout(connect, S.backoff);
    S.backoff = Math.min(S.backoff * 2, 5000);
  };
}

$("f-stream").onchange = applyFilters;
$("f-kind").onchange = applyFilters;
connect();
requestAnimationFrame(frame);
