// capflow's page. Everything from the server is put in as text (textContent, attributes
// set from known URL shapes), never as markup: captions are model output.
"use strict";
const $ = (sel) => document.querySelector(sel);
const params = new URLSearchParams(location.search);
const token = params.get("token") || "";
let results = [], offset = 0, lastQuery = null;

function api(path) {
  const url = new URL(path, location.origin);
  if (token) url.searchParams.set("token", token);
  return fetch(url, { credentials: "same-origin" }).then((r) => {
    if (!r.ok) throw new Error(r.status + " " + r.statusText);
    return r.json();
  });
}
function mediaUrl(path) {
  if (!path) return "";
  const url = new URL(path, location.origin);
  if (token) url.searchParams.set("token", token);
  return url.pathname + url.search;
}
function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}
function show(view) {
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== "view-" + view;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.view === view);
}

function query(extra) {
  const form = new FormData($("#search-form"));
  const q = new URLSearchParams();
  for (const [k, v] of form.entries()) if (v !== "") q.set(k, v);
  for (const [k, v] of Object.entries(extra || {})) q.set(k, v);
  return q;
}
function card(hit) {
  const c = el("div", null, "card");
  c.dataset.clipId = hit.clip_id;
  const img = el("img");
  img.alt = "";
  img.loading = "lazy";
  if (hit.thumbnail_url) img.src = mediaUrl(hit.thumbnail_url);
  if (hit.preview_url) {
    c.addEventListener("mouseenter", () => { img.src = mediaUrl(hit.preview_url); });
    c.addEventListener("mouseleave", () => { if (hit.thumbnail_url) img.src = mediaUrl(hit.thumbnail_url); });
  }
  const meta = el("div", null, "meta");
  meta.append(el("div", hit.caption, "caption"));
  const bits = [hit.key || hit.source, hit.start_s != null && hit.end_s != null ? hit.start_s.toFixed(1) + "-" + hit.end_s.toFixed(1) + " s" : ""];
  if (hit.score != null) bits.push("score " + hit.score.toFixed(3));
  if (hit.aesthetic_score != null) bits.push("aesthetic " + Number(hit.aesthetic_score).toFixed(1));
  meta.append(el("div", bits.filter(Boolean).join(" · "), "score"));
  c.append(img, meta);
  c.addEventListener("click", () => openClip(hit.clip_id));
  return c;
}
async function search(extra, append) {
  if (!append) { offset = 0; results = []; $("#grid").replaceChildren(); }
  lastQuery = extra || {};
  const q = query({ ...lastQuery, k: 20, offset });
  $("#status").textContent = "searching…";
  try {
    const data = await api("/api/search?" + q.toString());
    results = results.concat(data.hits);
    offset += data.hits.length;
    for (const hit of data.hits) $("#grid").append(card(hit));
    $("#status").textContent = results.length ? results.length + " clip(s)" : "no clips";
    $("#more").hidden = data.hits.length < 20;
  } catch (e) { $("#status").textContent = "error: " + e.message; }
}
async function openClip(id) {
  const clip = await api("/api/clips/" + encodeURIComponent(id));
  show("clip");
  $("#clip-title").textContent = clip.source + "  " + clip.start_s.toFixed(2) + "-" + clip.end_s.toFixed(2) + " s";
  const player = $("#player");
  player.src = clip.clip_url ? mediaUrl(clip.clip_url) : "";
  $("#summary").textContent = clip.caption;
  const steps = $("#steps"), line = $("#timeline");
  steps.replaceChildren(); line.replaceChildren();
  const span = Math.max(clip.end_s - clip.start_s, 1e-6);
  for (const step of clip.differential_captions || []) {
    const li = el("li", step.t.toFixed(2) + " s  " + step.text);
    const at = Math.max(0, step.t - clip.start_s);
    li.addEventListener("click", () => { player.currentTime = at; });
    steps.append(li);
    const tick = el("div", null, "tick");
    tick.style.left = (100 * at / span).toFixed(2) + "%";
    tick.title = step.t.toFixed(2) + " s";
    tick.addEventListener("click", () => { player.currentTime = at; });
    line.append(tick);
  }
  player.ontimeupdate = () => {
    const now = clip.start_s + player.currentTime;
    const items = [...steps.children];
    items.forEach((li, i) => {
      const t = clip.differential_captions[i].t, next = clip.differential_captions[i + 1];
      li.classList.toggle("now", now >= t && (!next || now < next.t));
    });
  };
  const versions = $("#versions");
  versions.replaceChildren();
  for (const v of clip.caption_versions || []) versions.append(el("li", v.caption_model + " (" + v.caption_mode + "): " + v.caption));
  $("#like").onclick = () => { show("search"); search({ like: id, q: "" }); };
}
async function loadQuarantine() {
  const data = await api("/api/quarantine?limit=500");
  const body = $("#quarantine-rows");
  body.replaceChildren();
  for (const r of data.rows) {
    const tr = el("tr");
    const span = r.start_s != null ? r.start_s.toFixed(1) + "-" + r.end_s.toFixed(1) : "";
    for (const v of [r.key, r.stage, r.reason, span, r.detail]) tr.append(el("td", v));
    body.append(tr);
  }
}
function bars(title, edges, counts) {
  const ns = "http://www.w3.org/2000/svg", w = 300, h = 140, n = counts.length, top = Math.max(1, ...counts);
  const box = el("div", null, "plot");
  box.append(el("h3", title));
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", w); svg.setAttribute("height", h + 20);
  counts.forEach((c, i) => {
    const r = document.createElementNS(ns, "rect");
    const bh = (h - 10) * c / top;
    r.setAttribute("x", i * w / n + 1); r.setAttribute("width", w / n - 2);
    r.setAttribute("y", h - bh); r.setAttribute("height", bh);
    const label = document.createElementNS(ns, "title");
    label.textContent = edges[i] + "–" + edges[i + 1] + ": " + c;
    r.append(label);
    svg.append(r);
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", i * w / n + 2); t.setAttribute("y", h + 14);
    t.textContent = edges[i];
    svg.append(t);
  });
  box.append(svg);
  return box;
}
async function loadStats() {
  const s = await api("/api/stats");
  const objects = Object.entries(s.objects).map(([k, v]) => v + " " + k).join(", ") || "none";
  $("#totals").textContent = "objects: " + objects + "; clips: " + s.clips + " (" + s.duplicates + " duplicates); quarantined: " +
    (Object.entries(s.quarantine).map(([k, v]) => v + " " + k).join(", ") || "none");
  const plots = $("#plots");
  plots.replaceChildren();
  for (const [name, h] of Object.entries(s.histograms)) plots.append(bars(name, h.edges, h.counts));
  const sources = Object.entries(s.by_source);
  if (sources.length) plots.append(bars("clips per source (" + sources.length + ")", sources.map((_, i) => i), sources.map(([, v]) => v)));
}

$("#search-form").addEventListener("submit", (e) => { e.preventDefault(); search({}); });
$("#filters").addEventListener("change", () => search(lastQuery || {}));
$("#more").addEventListener("click", () => search(lastQuery, true));
$("#back").addEventListener("click", () => { $("#player").pause(); show("search"); });
for (const a of document.querySelectorAll("nav a")) {
  a.addEventListener("click", (e) => {
    e.preventDefault();
    show(a.dataset.view);
    if (a.dataset.view === "quarantine") loadQuarantine();
    if (a.dataset.view === "stats") loadStats();
  });
}
if (params.get("q")) $("#q").value = params.get("q");
search({});
