// map.js: the live map (map.html). Draws the zones file as SVG (equirectangular projection
// fitted to the zones' bounds), loads /map/state, then follows /map/events (server-sent
// events, resumed by the browser with Last-Event-ID). The page's ?site= goes to both (one
// site's map); authentication is the server's cookie (docs/cloud.md section 15), sent by
// the browser, never seen here. Every string from the database is set with textContent or
// setAttribute, never as markup: ids come from devices.
"use strict";
const NS = "http://www.w3.org/2000/svg";
const svg = document.getElementById("svg");
const S = { containers: new Map(), alarms: [], gateways: [], sources: [], seen: new Set(), proj: null, zonesBox: null };
const MAX_ALARMS = 200, MAX_SEEN = 20000, MAX_TRACK = 500;

function el(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const k in attrs || {}) e.setAttribute(k, String(attrs[k]));
  if (text !== undefined) e.textContent = String(text);
  return e;
}
function h(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function shortTime(t) { return t ? t.replace("T", " ").replace(/\.\d+Z$/, "Z") : "no clock"; }

// --- projection and zones -------------------------------------------------------------
function bounds(coords, b) {
  if (typeof coords[0] === "number") {
    b[0] = Math.min(b[0], coords[0]); b[1] = Math.min(b[1], coords[1]);
    b[2] = Math.max(b[2], coords[0]); b[3] = Math.max(b[3], coords[1]);
  } else coords.forEach(c => bounds(c, b));
  return b;
}
function makeProj(b) {
  const k = Math.cos((b[1] + b[3]) / 2 * Math.PI / 180), W = 1000;
  const sx = W / Math.max((b[2] - b[0]) * k, 1e-9);
  return { k, s: sx, x: lon => (lon - b[0]) * k * sx, y: lat => (b[3] - lat) * sx, m: 1 / (111320 * k) * k * sx };
}
function pathOf(ring) { return ring.map((c, i) => (i ? "L" : "M") + S.proj.x(c[0]).toFixed(2) + " " + S.proj.y(c[1]).toFixed(2)).join("") + "Z"; }
function hull(pts) {
  pts = pts.slice().sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const cross = (o, a, b) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const lo = [], up = [];
  for (const p of pts) { while (lo.length >= 2 && cross(lo[lo.length - 2], lo[lo.length - 1], p) <= 0) lo.pop(); lo.push(p); }
  for (const p of pts.reverse()) { while (up.length >= 2 && cross(up[up.length - 2], up[up.length - 1], p) <= 0) up.pop(); up.push(p); }
  return lo.slice(0, -1).concat(up.slice(0, -1));
}
function drawZones(gj) {
  const feats = (gj.features || []).filter(f => f && f.geometry);
  const b = [Infinity, Infinity, -Infinity, -Infinity];
  feats.forEach(f => bounds(f.geometry.coordinates, b));
  S.proj = makeProj(b);
  const gz = el("g", { id: "zones" }), go = el("g", { id: "outlines" }), gl = el("g", { id: "zlabels" });
  const groups = new Map();
  for (const f of feats) {
    const g = f.geometry, p = f.properties || {}, id = String(p.id || "");
    let shape;
    if (g.type === "Polygon") {
      shape = el("path", { d: g.coordinates.map(pathOf).join(""), class: "zone" });
      const key = id.split("-")[0];
      if (!groups.has(key)) groups.set(key, []);
      g.coordinates[0].forEach(c => groups.get(key).push(c));
    } else if (g.type === "LineString") {
      const w = Math.max(2, (p.width_m || 100) * S.proj.s / 111320);
      shape = el("path", { d: pathOf(g.coordinates).slice(0, -1), class: "zone line", "stroke-width": w.toFixed(2) });
    } else if (g.type === "Point") {
      const r = (p.radius_m || 200) * S.proj.s / 111320;
      shape = el("circle", { cx: S.proj.x(g.coordinates[0]), cy: S.proj.y(g.coordinates[1]), r: r.toFixed(2), class: "zone" });
    } else continue;
    shape.setAttribute("data-zone", id);
    shape.appendChild(el("title", {}, (p.name || id) + " (" + id + ")"));
    gz.appendChild(shape);
    const cb = bounds(g.coordinates, [Infinity, Infinity, -Infinity, -Infinity]);
    gl.appendChild(el("text", { x: S.proj.x((cb[0] + cb[2]) / 2), y: S.proj.y((cb[1] + cb[3]) / 2), class: "zlabel", "text-anchor": "middle" }, id));
  }
  for (const [name, pts] of groups) {     // a terminal outline: the hull of its zones
    if (pts.length < 3) continue;
    const hl = hull(pts);
    go.appendChild(el("path", { d: pathOf(hl), class: "outline", "data-terminal": name }));
    const top = hl.reduce((a, c) => c[1] > a[1] ? c : a);
    go.appendChild(el("text", { x: S.proj.x(top[0]), y: S.proj.y(top[1]) - 6, class: "olabel", "text-anchor": "middle" }, name + " terminal"));
  }
  svg.append(gz, go, gl, el("g", { id: "tracks" }), el("g", { id: "dots" }));
  S.zonesBox = [0, 0, 1000, S.proj.y(b[1])];
  setView(S.zonesBox, 0.03);
}
let view = [0, 0, 1000, 1000];
function setView(box, pad) {
  const w = box[2] - box[0], hh = box[3] - box[1], p = Math.max(w, hh) * pad;
  view = [box[0] - p, box[1] - p, w + 2 * p, hh + 2 * p];
  svg.setAttribute("viewBox", view.map(v => v.toFixed(2)).join(" "));
  svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
  // labels and markers keep their size on screen whatever the zoom
  const u = Math.max(view[2], view[3]) / 1000;
  for (const [id, fs] of [["zlabels", 11], ["outlines", 13]]) {
    const g = document.getElementById(id);
    if (g) { g.setAttribute("font-size", (fs * u).toFixed(3)); g.setAttribute("stroke-width", (3 * u).toFixed(3)); }
  }
  if (S.proj) render();
}
svg.addEventListener("wheel", ev => {
  ev.preventDefault();
  const f = ev.deltaY > 0 ? 1.25 : 0.8, r = svg.getBoundingClientRect();
  const cx = view[0] + view[2] * (ev.clientX - r.left) / r.width, cy = view[1] + view[3] * (ev.clientY - r.top) / r.height;
  setView([cx - (cx - view[0]) * f, cy - (cy - view[1]) * f, cx + (view[0] + view[2] - cx) * f, cy + (view[1] + view[3] - cy) * f], 0);
}, { passive: false });
let drag = null;
svg.addEventListener("mousedown", ev => { drag = [ev.clientX, ev.clientY, view.slice()]; });
window.addEventListener("mouseup", () => { drag = null; });
window.addEventListener("mousemove", ev => {
  if (!drag) return;
  const r = svg.getBoundingClientRect(), s = Math.max(drag[2][2] / r.width, drag[2][3] / r.height);
  const v = drag[2], dx = (ev.clientX - drag[0]) * s, dy = (ev.clientY - drag[1]) * s;
  setView([v[0] - dx, v[1] - dy, v[0] + v[2] - dx, v[1] + v[3] - dy], 0);
});
function fitContainers() {
  const b = [Infinity, Infinity, -Infinity, -Infinity];
  for (const c of S.containers.values()) c.track.forEach(p => bounds([S.proj.x(p[1]), S.proj.y(p[0])], b));
  if (b[0] === Infinity) return setView(S.zonesBox, 0.03);
  const m = 12;     // at least a kilometre or so around them
  setView([Math.min(b[0], (b[0] + b[2]) / 2 - m), Math.min(b[1], (b[1] + b[3]) / 2 - m), Math.max(b[2], (b[0] + b[2]) / 2 + m), Math.max(b[3], (b[1] + b[3]) / 2 + m)], 0.15);
}
document.getElementById("fit-zones").onclick = () => setView(S.zonesBox, 0.03);
document.getElementById("fit-containers").onclick = fitContainers;

// --- state ------------------------------------------------------------------------------
function container(id) {
  if (!S.containers.has(id)) S.containers.set(id, { container: id, track: [], last: null, last_event: null, alarm: false });
  return S.containers.get(id);
}
function remember(key) {
  if (S.seen.has(key)) return false;
  S.seen.add(key);
  if (S.seen.size > MAX_SEEN) S.seen.delete(S.seen.values().next().value);
  return true;
}
function apply(it, live) {
  if (!remember(it.key)) return;
  if (it.container) {
    const c = container(it.container);
    if (it.kind === "position" && it.lat !== undefined) {
      c.track.push([it.lat, it.lon, it.time]);
      c.track.sort((a, b) => (a[2] || "") < (b[2] || "") ? -1 : 1);
      if (c.track.length > MAX_TRACK) c.track.shift();
      if (!c.last || (it.time || "") >= (c.last.time || "")) c.last = it;
    }
    if (it.kind === "event" && (!c.last_event || (it.time || "") >= (c.last_event.time || ""))) c.last_event = it;
    if (it.alarm) c.alarm = true;
  }
  if (it.alarm) {
    it._new = live;
    S.alarms.unshift(it);
    if (S.alarms.length > MAX_ALARMS) S.alarms.pop();
  }
}
function loadState(st) {
  S.containers.clear(); S.alarms = []; S.seen.clear();
  for (const c of st.containers) {
    const x = container(c.container);
    x.track = c.track; x.last = c.last; x.last_event = c.last_event || null;
    c.track.forEach((p, i) => i === c.track.length - 1 && c.last && remember(c.last.key));
  }
  for (const a of st.alarms.slice().reverse()) apply(a, false);
  S.gateways = st.gateways; S.sources = st.sources;
  render();
}

// --- rendering ----------------------------------------------------------------------------
function render() {
  if (!S.proj) return;
  const tracks = document.getElementById("tracks"), dots = document.getElementById("dots");
  tracks.replaceChildren(); dots.replaceChildren();
  const ctb = document.querySelector("#containers tbody"); ctb.replaceChildren();
  for (const c of S.containers.values()) {
    if (c.track.length > 1) tracks.appendChild(el("polyline", { class: "track", "data-container": c.container,
      points: c.track.map(p => S.proj.x(p[1]).toFixed(2) + "," + S.proj.y(p[0]).toFixed(2)).join(" ") }));
    if (c.last && c.last.lat !== undefined) {
      const x = S.proj.x(c.last.lon), y = S.proj.y(c.last.lat);
      const u = Math.max(view[2], view[3]) / 1000;
      const dot = el("circle", { cx: x, cy: y, r: (6 * u).toFixed(3), class: "cdot" + (c.alarm ? " alarm" : ""), "data-container": c.container });
      dot.appendChild(el("title", {}, c.container + " " + shortTime(c.last.time)));
      dots.appendChild(dot);
      dots.appendChild(el("text", { x: x + 9 * u, y: y - 7 * u, class: "clabel", "font-size": (12 * u).toFixed(3), "stroke-width": (3 * u).toFixed(3) }, c.container));
    }
    const tr = h("tr");
    tr.append(h("td", c.alarm ? "holes" : "", c.container),
      h("td", "", c.last && c.last.lat !== undefined ? c.last.lat.toFixed(5) + ", " + c.last.lon.toFixed(5) : "-"),
      h("td", "", c.last ? shortTime(c.last.time) : "-"),
      h("td", "", c.last_event ? c.last_event.event + (c.last_event.zone ? " " + c.last_event.zone : "") : "-"));
    ctb.appendChild(tr);
  }
  const ul = document.getElementById("alarms"); ul.replaceChildren();
  for (const a of S.alarms) {
    const li = h("li", "alarm" + (a._new ? " new" : ""));
    li.setAttribute("data-key", a.key);
    li.append(h("b", "", a.container || "(no container)"), document.createTextNode(": " + a.alarm), h("br"),
      h("span", "t", shortTime(a.time) + " - " + a.gateway + " / " + a.source + " #" + a.seq));
    ul.appendChild(li);
  }
  document.getElementById("alarm-count").textContent = String(S.alarms.length);
  const src = new Map();
  for (const s of S.sources) {
    const k = s.site + "/" + s.gateway;
    const t = src.get(k) || { received: 0, declared: 0, undeclared: 0, holes: [] };
    t.received += s.received; t.declared += s.declared; t.undeclared += s.undeclared;
    if (s.undeclared > 0) t.holes.push(s.source + ": " + s.undeclared_gaps);
    src.set(k, t);
  }
  const gtb = document.querySelector("#gateways tbody"); gtb.replaceChildren();
  for (const g of S.gateways) {
    const tr = h("tr", g.state);
    tr.setAttribute("data-gateway", g.gateway);
    const st = h("span", "state " + g.state, g.state);
    const t = src.get(g.site + "/" + g.gateway) || { received: 0, declared: 0, undeclared: 0, holes: [] };
    const und = h("td", t.undeclared ? "holes" : "", String(t.undeclared));
    if (t.holes.length) und.title = t.holes.join("\n");
    const stc = h("td"); stc.appendChild(st);
    tr.append(h("td", "", g.site + "/" + g.gateway), stc,
      h("td", "", g.last_health ? shortTime(g.last_health) + (g.silent_s !== null ? " (" + g.silent_s + " s ago)" : "") : "never"),
      h("td", "", String(t.received)), h("td", "", String(t.declared)), und);
    gtb.appendChild(tr);
  }
  document.getElementById("counts").textContent = S.containers.size + " containers, " +
    S.gateways.filter(g => g.state === "offline").length + " of " + S.gateways.length + " gateways offline";
}

// --- live -------------------------------------------------------------------------------------
const conn = document.getElementById("conn");
let es = null;
function status(text, cls) { conn.textContent = text; conn.className = "conn " + cls; }
const SITE = new URLSearchParams(location.search).get("site");
const SCOPE = SITE === null ? "" : "site=" + encodeURIComponent(SITE);
if (SITE !== null) document.querySelector("h1").textContent = "e-port live map: site " + SITE;   // text, never markup
async function start() {
  if (es) es.close();
  let st;
  let r;
  try { r = await fetch("/map/state" + (SCOPE ? "?" + SCOPE : "")); st = await r.json(); } catch (e) { status("no state: retrying", "down"); setTimeout(start, 3000); return; }
  if (r.status >= 400 && r.status < 500) { status(String(st.error || r.status), "down"); return; }   // 400, 401, 403: retrying cannot help
  if (!st.cursor) { status("database unavailable: retrying", "down"); setTimeout(start, 3000); return; }
  loadState(st);
  es = new EventSource("/map/events?since=" + encodeURIComponent(st.cursor) + (SCOPE ? "&" + SCOPE : ""));
  es.onopen = () => status("live", "live");
  es.onerror = () => status("reconnecting", "down");
  es.addEventListener("readings", ev => { JSON.parse(ev.data).forEach(it => apply(it, true)); render(); });
  es.addEventListener("gateways", ev => { S.gateways = JSON.parse(ev.data); render(); });
  es.addEventListener("sources", ev => { S.sources = JSON.parse(ev.data); render(); });
  es.addEventListener("status", ev => { const d = JSON.parse(ev.data); status(d.db === "ok" ? "live" : String(d.db), d.db === "ok" ? "live" : "down"); });
  es.addEventListener("reset", () => { start(); });
}
fetch("/map/zones").then(r => r.json()).then(gj => { drawZones(gj); start(); }).catch(e => status("zones: " + e, "down"));
