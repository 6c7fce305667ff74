// greypit dashboard: reads the admin API with the token kept in this
// tab's sessionStorage. Everything it shows comes from /v1 and is put in
// the page as text, never as HTML.
"use strict";

const tokenKey = "greypit.token";
const refreshEvery = 5000;
const $ = (id) => document.getElementById(id);
let charts = {};
let timer = null;

class Unauthorized extends Error {}

async function api(path, opts = {}) {
  const token = sessionStorage.getItem(tokenKey) || "";
  const resp = await fetch(path, {
    ...opts,
    headers: { ...(opts.headers || {}), Authorization: "Bearer " + token },
    cache: "no-store",
  });
  let body = null;
  try { body = await resp.json(); } catch (e) { /* not JSON */ }
  if (resp.status === 401) throw new Unauthorized("wrong or missing token");
  if (!resp.ok) throw new Error((body && body.error) || resp.status + " " + resp.statusText);
  return body;
}

function showLogin(msg) {
  sessionStorage.removeItem(tokenKey);
  if (timer) clearInterval(timer);
  timer = null;
  for (const k in charts) charts[k].destroy();
  charts = {};
  networksAt = 0;
  $("dash").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = msg || "";
  $("status").textContent = "";
}

async function showDash() {
  $("login").hidden = true;
  $("dash").hidden = false;
  $("logout").hidden = false;
  await refresh();
  if (!timer) timer = setInterval(refresh, refreshEvery);
}

// The networks report reads a day of session history, so it is asked
// for less often than the counters.
const networksEvery = 30000;
let networksAt = 0;

async function refresh() {
  try {
    const now = Date.now();
    const wantNets = now - networksAt >= networksEvery;
    const [stats, nets] = await Promise.all([api("/v1/stats"), wantNets ? api("/v1/networks/top?since=24h&top=20") : null]);
    renderStats(stats);
    if (nets) { renderNetworks(nets); networksAt = now; }
    $("status").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    if (e instanceof Unauthorized) { showLogin("The token is no longer accepted."); return; }
    $("status").textContent = "update failed: " + e.message;
  }
}

function fmtSeconds(s) {
  if (s < 60) return s.toFixed(1) + " s";
  if (s < 3600) return (s / 60).toFixed(1) + " min";
  if (s < 86400) return (s / 3600).toFixed(1) + " h";
  return (s / 86400).toFixed(1) + " d";
}

// fmtBound writes a bucket bound short: 60 is "1m", 86400 is "1d".
function fmtBound(s) {
  for (const [n, u] of [[86400, "d"], [3600, "h"], [60, "m"]]) if (s >= n && s % n === 0) return s / n + u;
  return s + "s";
}

const paths = [["white", "#2a7"], ["grey", "#888"], ["black", "#c33"], ["none", "#e90"]];

function renderStats(s) {
  const now = s.now;
  for (const [p] of paths) $("sum-" + p).textContent = String(now.sessions[p] || 0);
  $("sum-passed").textContent = String(now.grey_passed);
  $("sum-tarpit").textContent = fmtSeconds(now.tarpit_seconds);
  $("sum-tarpit").dataset.seconds = String(now.tarpit_seconds);
  $("sum-tarpit-bytes").textContent = String(now.tarpit_bytes);
  $("sum-traps").textContent = String(now.trap_hits);

  const h = s.history;
  const xs = h.map((x) => Date.parse(x.t) / 1000);
  // Sessions per interval: the difference to the sample before.
  const per = (p) => h.map((x, i) => (i === 0 ? 0 : (x.sessions[p] || 0) - (h[i - 1].sessions[p] || 0)));
  draw("traffic", "chart-traffic", [xs, ...paths.map(([p]) => per(p))], {
    series: [{}, ...paths.map(([p, c]) => ({ label: p, stroke: c, width: 2 }))],
  });

  const d = s.greylist_delay;
  const labels = d.le.map(fmtBound).concat([">" + fmtBound(d.le[d.le.length - 1])]);
  const counts = d.counts.concat([d.over]);
  draw("delays", "chart-delays", [labels.map((_, i) => i), counts], {
    scales: { x: { time: false, range: [-0.5, labels.length - 0.5] } },
    axes: [{ splits: () => labels.map((_, i) => i), values: (u, splits) => splits.map((i) => labels[i]), size: 40 }, {}],
    series: [{ label: "delay up to", value: (u, v) => (v == null ? "–" : labels[v]) },
      { label: "passed retries", fill: "#48c8", stroke: "#48c", paths: uPlot.paths.bars({ size: [0.7, 60] }), points: { show: false } }],
  });

  draw("tarpit", "chart-tarpit", [xs, h.map((x) => x.tarpit_seconds)], {
    series: [{}, { label: "seconds held", stroke: "#c33", fill: "#c332", width: 2 }],
  });
  draw("traps", "chart-traps", [xs, h.map((x) => x.trap_hits)], {
    series: [{}, { label: "trap hits", stroke: "#a3c", width: 2 }],
  });
}

function draw(key, el, data, opts) {
  if (charts[key]) { charts[key].setData(data); return; }
  const box = $(el);
  charts[key] = new uPlot({ width: Math.max(box.clientWidth, 300), height: 220, ...opts }, data, box);
}

function cell(tr, text) {
  const td = document.createElement("td");
  td.textContent = text;
  tr.appendChild(td);
}

function renderNetworks(r) {
  const tb = $("networks").tBodies[0];
  tb.replaceChildren();
  for (const g of r.by_network || []) {
    const tr = document.createElement("tr");
    cell(tr, g.key);
    cell(tr, g.as ? "AS" + g.as.asn + (g.as.name ? " " + g.as.name : "") : "–");
    cell(tr, String(g.hosts));
    cell(tr, String(g.blocked));
    cell(tr, (100 * g.blocked_share).toFixed(1) + "%");
    cell(tr, String(g.trap_hits));
    cell(tr, fmtSeconds(g.tarpit_seconds));
    tb.appendChild(tr);
  }
  $("networks-empty").hidden = tb.rows.length > 0;
}

function showHost(h) {
  $("host").hidden = false;
  $("host-path").textContent = h.why.decision.path;
  $("host-text").textContent = h.text || JSON.stringify(h.why, null, 2);
  $("host-actions").hidden = h.why.decision.path !== "black";
  $("host-release").dataset.addr = h.why.address;
}

async function lookup(addr) {
  $("host-error").textContent = "";
  $("host-msg").textContent = "";
  try {
    showHost(await api("/v1/hosts/" + encodeURIComponent(addr)));
  } catch (e) {
    if (e instanceof Unauthorized) { showLogin("The token is no longer accepted."); return; }
    $("host").hidden = true;
    $("host-error").textContent = e.message;
  }
}

async function release() {
  const addr = $("host-release").dataset.addr;
  try {
    const r = await api("/v1/hosts/" + encodeURIComponent(addr) + "/release", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ white: $("host-white").checked, reason: "released from the dashboard" }),
    });
    showHost(r);
    const del = r.deleted.length ? "deleted " + r.deleted.join(", ") : "no black entry to delete";
    $("host-msg").textContent = "Released " + addr + ": " + del + (r.white ? ", whitelisted" : "") + "; now " + r.why.decision.path + ".";
  } catch (e) {
    if (e instanceof Unauthorized) { showLogin("The token is no longer accepted."); return; }
    $("host-msg").textContent = "Release failed: " + e.message;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(tokenKey, $("token").value.trim());
    $("token").value = "";
    try {
      await api("/v1/stats");
    } catch (e) {
      showLogin(e instanceof Unauthorized ? "Wrong token." : "Cannot reach greypit: " + e.message);
      return;
    }
    showDash();
  });
  $("logout").addEventListener("click", () => showLogin(""));
  $("host-form").addEventListener("submit", (ev) => { ev.preventDefault(); lookup($("host-addr").value.trim()); });
  $("host-release").addEventListener("click", release);
  if (sessionStorage.getItem(tokenKey)) showDash(); else showLogin("");
});
