// Rampart dashboard: talks only to the admin API it was served by. The access token lives in memory only.
// Every value from the API is written with textContent, never as HTML: security events carry attack payloads.
"use strict";
let token = null, refreshToken = null, ws = null;
const $ = (id) => document.getElementById(id);
const attackers = new Map();
const xdpHistory = []; // [{t, byReason: {reason: packets}}]
const COLORS = ["#e5534b", "#c69026", "#539bf5", "#57ab5a", "#b083f0", "#8b95a5"];

async function api(method, path, body) {
  const headers = { "authorization": "Bearer " + token };
  if (body !== undefined) headers["content-type"] = "application/json";
  let r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (r.status === 401 && refreshToken) {
    const rr = await fetch("/admin/auth/refresh", { method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ refresh_token: refreshToken }) });
    if (rr.ok) { const p = await rr.json(); token = p.access_token; refreshToken = p.refresh_token; headers.authorization = "Bearer " + token;
      r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) }); }
  }
  const text = await r.text();
  let v = null; try { v = text ? JSON.parse(text) : null; } catch (_) { v = text; }
  if (!r.ok) throw new Error((v && v.error) || (r.status + " " + r.statusText));
  return v;
}

function row(tbody, cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const td = document.createElement("td");
    if (c instanceof Node) td.appendChild(c); else td.textContent = c === null || c === undefined ? "-" : String(c);
    tr.appendChild(td);
  }
  tbody.appendChild(tr);
  return tr;
}

function button(label, onClick, attrs) {
  const b = document.createElement("button");
  b.type = "button"; b.textContent = label; b.addEventListener("click", onClick);
  for (const [k, v] of Object.entries(attrs || {})) b.setAttribute(k, v);
  return b;
}

async function block(ip, duration) {
  await api("POST", "/admin/waf/blocked-ips", { ip, duration: duration || 0, reason: "dashboard" });
  await refreshBlocked();
}

async function unblock(ip) {
  await api("DELETE", "/admin/waf/blocked-ips?ip=" + encodeURIComponent(ip));
  await refreshBlocked();
}

async function refreshBlocked() {
  const v = await api("GET", "/admin/waf/blocked-ips");
  const tb = $("blocked-ips"); tb.replaceChildren();
  for (const b of v.blocked_ips) {
    const tr = row(tb, [b.ip, b.reason, b.expires || "never",
      button("Unblock", () => unblock(b.ip).catch(showBlockError), { "data-unblock": b.ip })]);
    tr.dataset.ip = b.ip;
  }
}

function showBlockError(e) { $("block-error").textContent = e.message; }

async function refreshStats() {
  const s = await api("GET", "/admin/waf/stats");
  $("inspected").textContent = s.requests_processed;
  $("blocked").textContent = s.requests_blocked;
  $("avgms").textContent = s.performance.avg_processing_time_ms.toFixed(3) + " ms";
  const tb = $("attack-types"); tb.replaceChildren();
  const types = Object.entries(s.attack_types).sort((a, b) => b[1] - a[1]);
  for (const [k, n] of types) row(tb, [k, n]);
}

async function refreshUpstreams() {
  const v = await api("GET", "/admin/proxy/upstreams");
  const tb = $("upstreams"); tb.replaceChildren();
  for (const u of v.upstreams) for (const s of u.servers) {
    const st = document.createElement("span");
    st.textContent = s.status; st.className = s.status === "healthy" ? "ok" : "bad";
    row(tb, [u.name, s.id, st, s.active_connections, s.latency_ms.toFixed(1) + " ms"]);
  }
}

async function refreshXdp() {
  const v = await api("GET", "/admin/xdp/status");
  if (!v.counters) { $("xdp-note").textContent = v.degraded ? "XDP not in force: " + v.degraded : "XDP is disabled"; return; }
  const byReason = {};
  for (const c of v.counters) if (c.action === "drop") byReason[c.reason] = c.packets;
  xdpHistory.push({ t: Date.now(), byReason });
  if (xdpHistory.length > 61) xdpHistory.shift();
  drawXdp();
}

function drawXdp() {
  const svg = $("xdp-chart"); svg.replaceChildren();
  const reasons = [...new Set(xdpHistory.flatMap((h) => Object.keys(h.byReason)))];
  const rates = reasons.map((r) => xdpHistory.slice(1).map((h, i) => {
    const prev = xdpHistory[i]; const dt = (h.t - prev.t) / 1000;
    return dt > 0 ? Math.max(0, ((h.byReason[r] || 0) - (prev.byReason[r] || 0)) / dt) : 0;
  }));
  const max = Math.max(1, ...rates.flat());
  const legend = $("xdp-legend"); legend.replaceChildren();
  reasons.forEach((r, i) => {
    const pts = rates[i].map((y, x) => (x * 10) + "," + (138 - (y / max) * 130)).join(" ");
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", pts); line.setAttribute("fill", "none");
    line.setAttribute("stroke", COLORS[i % COLORS.length]); line.setAttribute("stroke-width", "2");
    svg.appendChild(line);
    const l = document.createElement("span"); l.style.color = COLORS[i % COLORS.length];
    l.textContent = r + " " + (rates[i].length ? rates[i][rates[i].length - 1].toFixed(0) : 0);
    legend.appendChild(l);
  });
}

function addEvent(e) {
  const tb = $("events");
  const tr = document.createElement("tr");
  tb.prepend(tr);
  for (const c of [new Date().toLocaleTimeString(), e.client_ip, e.attack_type, e.action_taken, e.method + " " + e.path]) {
    const td = document.createElement("td"); td.textContent = c; tr.appendChild(td);
  }
  tr.className = "bad";
  while (tb.children.length > 200) tb.lastChild.remove();
  attackers.set(e.client_ip, (attackers.get(e.client_ip) || 0) + 1);
  const at = $("attackers"); at.replaceChildren();
  [...attackers.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10).forEach(([ip, n]) =>
    row(at, [ip, n, button("Block", () => block(ip, 3600).catch(showBlockError), { "data-block": ip })]));
}

function connectEvents() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  ws = new WebSocket(proto + "//" + location.host + "/admin/ws");
  ws.onopen = () => {
    ws.send(JSON.stringify({ type: "auth", token }));
    ws.send(JSON.stringify({ type: "subscribe", topics: ["security_events", "health_status"] }));
  };
  ws.onmessage = (m) => {
    const v = JSON.parse(m.data);
    if (v.type === "subscribed") { $("live").textContent = "connected"; $("live").className = "ok"; }
    if (v.type === "event" && v.topic === "security_events") { addEvent(v.data); refreshStats().catch(() => {}); }
    if (v.type === "event" && v.topic === "health_status") {
      $("status").textContent = v.data.status; $("status").className = v.data.status === "healthy" ? "ok" : "warn";
    }
  };
  ws.onclose = () => { $("live").textContent = "disconnected"; $("live").className = "bad"; if (token) setTimeout(connectEvents, 3000); };
}

async function start() {
  $("login").hidden = true; $("app").hidden = false; $("logout").hidden = false;
  connectEvents();
  const tick = () => Promise.all([refreshStats(), refreshBlocked(), refreshUpstreams(), refreshXdp()]).catch((e) => { $("status").textContent = e.message; });
  await tick();
  setInterval(tick, 5000);
}

$("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-error").textContent = "";
  const r = await fetch("/admin/auth/login", { method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: $("username").value, password: $("password").value }) });
  const v = await r.json().catch(() => ({}));
  if (!r.ok) { $("login-error").textContent = v.error || ("login failed: " + r.status); return; }
  token = v.access_token; refreshToken = v.refresh_token;
  $("password").value = "";
  $("who").textContent = $("username").value + " (" + v.role + ")";
  start();
});

$("block-form").addEventListener("submit", (ev) => {
  ev.preventDefault(); $("block-error").textContent = "";
  block($("block-ip").value.trim(), parseInt($("block-duration").value || "0", 10)).catch(showBlockError);
});

$("logout").addEventListener("click", async () => {
  await api("POST", "/admin/auth/logout").catch(() => {});
  token = null; refreshToken = null; if (ws) ws.close(); location.reload();
});
