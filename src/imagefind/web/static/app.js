// imagefind web page: plain JS over the JSON API, no build step.
"use strict";

const $ = (sel) => document.querySelector(sel);
const PAGE = 48;
const UPLOAD_CONCURRENCY = 3;

const state = {
  mode: "text",
  offset: 0,
  total: Number($("#count").dataset.count || 0),
  hits: [],
  lastQuery: null, // {kind: "text", q} | {kind: "image", blob, name} | {kind: "similar", id, name}
};

// ---- helpers -------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

// Writes carry the typed API token, or (signed in) the session's CSRF token from the page.
function authHeaders() {
  const input = $("#token");
  const token = input ? input.value.trim() : "";
  if (token) return { Authorization: `Bearer ${token}` };
  const csrf = document.querySelector('meta[name="csrf-token"]');
  return csrf ? { "X-CSRF-Token": csrf.content } : {};
}

// A session that expired while the page was open: log in again, then come back here.
function loginAgain(status) {
  if (status !== 401 || document.body.dataset.signedIn !== "true") return false;
  window.location.assign(`/login?next=${encodeURIComponent(window.location.pathname)}`);
  return true;
}

async function api(method, url, body) {
  const headers = method === "GET" ? {} : authHeaders();
  const response = await fetch(url, { method, body, headers });
  const data = await response.json().catch(() => ({}));
  if (loginAgain(response.status)) throw new Error("your session has ended: log in again");
  if (!response.ok) throw new Error(data.detail || `${response.status} ${response.statusText}`);
  return data;
}

let toastTimer = null;
function toast(message, isError = false) {
  const node = $("#toast");
  node.textContent = message;
  node.classList.toggle("error", isError);
  node.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { node.hidden = true; }, isError ? 7000 : 3500);
}

function displayName(image) {
  return image.name || `Upload #${image.id}`;
}

function setCount(total) {
  state.total = total;
  $("#count").textContent = `${total} image${total === 1 ? "" : "s"}`;
  $("#count").dataset.count = String(total);
  $("#empty").hidden = total > 0;
}

// ---- tiles ---------------------------------------------------------------------------------

function tile(image, score, testid) {
  const name = displayName(image);
  const thumb = el("a", { class: "thumb", href: `/api/images/${image.id}/file`, target: "_blank",
    rel: "noopener", "aria-label": `Open ${name}` },
    el("img", { src: `/api/images/${image.id}/thumbnail`, alt: name, loading: "lazy",
      width: "256", height: "192" }));
  if (score !== undefined) {
    thumb.append(el("span", { class: "score", "data-testid": "score", text: score.toFixed(3) }));
  }
  const card = el("article", { class: "tile", "data-testid": testid, "data-id": image.id },
    thumb,
    el("div", { class: "info" },
      el("p", { class: "name", title: image.source, text: name }),
      el("p", { class: "dims", text: `${image.width}×${image.height} · ${image.format}` }),
      el("p", { class: "when", "data-testid": "caption", text: cardCaption(image) })),
    el("div", { class: "actions" },
      el("button", { type: "button", "data-testid": "similar", "aria-label": `Find images similar to ${name}`,
        onclick: () => searchSimilar(image), text: "Similar" }),
      el("button", { type: "button", class: "danger", "data-testid": "delete",
        "aria-label": `Delete ${name}`, onclick: () => removeImage(image), text: "Delete" })));
  if (score !== undefined) card.dataset.score = String(score);
  card.dataset.month = monthOf(image);
  return card;
}

// ---- gallery -------------------------------------------------------------------------------

async function loadGallery(reset = true) {
  if (reset) state.offset = 0;
  try {
    const page = await api("GET", `/api/images?offset=${state.offset}&limit=${PAGE}&${galleryParams()}`);
    const grid = $("#gallery");
    if (reset) grid.replaceChildren();
    for (const image of page.items) grid.append(tile(image, undefined, "gallery-item"));
    state.offset += page.items.length;
    markTimeline(grid);
    if (!showFilterCount(page.total)) setCount(page.total);
    $("#load-more").hidden = state.offset >= page.total;
  } catch (err) {
    toast(`Could not load the gallery: ${err.message}`, true);
  }
}

// ---- search --------------------------------------------------------------------------------

function setMode(mode) {
  state.mode = mode;
  $("#mode-text").setAttribute("aria-pressed", String(mode === "text"));
  $("#mode-image").setAttribute("aria-pressed", String(mode === "image"));
  $("#text-form").hidden = mode !== "text";
  $("#image-form").hidden = mode !== "image";
}

function topK() { return Number($("#topk").value); }


async function runQuery(query) {
  state.lastQuery = query;
  const k = topK();
  let result;
  try {
    if (query.kind === "text") {
      const lang = queryLanguage();
      const langParam = lang ? `&lang=${encodeURIComponent(lang)}` : "";
      result = await api("GET", `/api/search?q=${encodeURIComponent(query.q)}&k=${k}${langParam}&${searchParams()}`);
    } else if (query.kind === "similar") {
      result = await api("GET", `/api/images/${query.id}/similar?k=${k}&${searchParams()}`);
    } else {
      const body = new FormData();
      body.append("file", query.blob, query.name);
      result = await api("POST", `/api/search/image?k=${k}&${searchParams()}`, body);
    }
  } catch (err) {
    toast(`Search failed: ${err.message}`, true);
    return;
  }
  const label = query.kind === "text" ? `“${query.q}”` : query.name;
  showResults(result.hits, label, query.kind === "text" ? "text" : "image");
}

function showResults(hits, label, kind) {
  state.hits = currentSort() === "score" ? [...hits].sort((a, b) => b.score - a.score) : [...hits];
  $("#results").hidden = false;
  $("#results").dataset.kind = kind;
  $("#results-title").textContent = `${kind === "text" ? "Text" : "Image"} results for ${label}`;
  const grid = $("#results-grid");
  grid.replaceChildren(...state.hits.map((hit) => tile(hit.image, hit.score, "result")));
  // The slider spans this result set's scores, so small differences are easy to pick apart.
  const slider = $("#threshold");
  if (state.hits.length) {
    const low = Math.floor(state.hits[state.hits.length - 1].score * 1000) / 1000;
    // Floor both ends: at the far right the best result still shows.
    const high = Math.floor(state.hits[0].score * 1000) / 1000;
    slider.min = String(low);
    slider.max = String(Math.max(high, low + 0.001));
    slider.value = String(low);
    slider.disabled = false;
  } else {
    slider.disabled = true;
  }
  applyThreshold();
  $("#results").scrollIntoView({ behavior: "smooth", block: "start" });
}

function applyThreshold() {
  const slider = $("#threshold");
  const min = Number(slider.value);
  const atBottom = slider.disabled || min <= Number(slider.min);
  let shown = 0;
  for (const card of $("#results-grid").children) {
    const visible = atBottom || Number(card.dataset.score) >= min;
    card.hidden = !visible;
    if (visible) shown += 1;
  }
  $("#threshold-value").textContent = atBottom ? "off" : min.toFixed(3);
  const total = state.hits.length;
  $("#results-meta").textContent = total === 0
    ? "No matches."
    : `${shown} of ${total} shown${shown < total ? ` (score ≥ ${min.toFixed(3)})` : ""}`;
}

function searchSimilar(image) {
  setMode("image");
  showQueryPreview(`/api/images/${image.id}/thumbnail`);
  runQuery({ kind: "similar", id: image.id, name: displayName(image) });
}

function searchByFile(file) {
  setMode("image");
  showQueryPreview(URL.createObjectURL(file));
  runQuery({ kind: "image", blob: file, name: file.name || "pasted image" });
}

function showQueryPreview(src) {
  const img = $("#query-preview");
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  img.src = src;
  img.hidden = false;
}

// ---- delete --------------------------------------------------------------------------------

async function removeImage(image) {
  if (!window.confirm(`Delete ${displayName(image)} from the library?`)) return;
  try {
    await api("DELETE", `/api/images/${image.id}`);
  } catch (err) {
    toast(`Delete failed: ${err.message}`, true);
    return;
  }
  for (const node of document.querySelectorAll(`[data-id="${image.id}"]`)) node.remove();
  state.hits = state.hits.filter((hit) => hit.id !== image.id);
  state.offset = Math.max(0, state.offset - 1);
  setCount(state.total - 1);
  if (!$("#results").hidden) applyThreshold();
  if (!$("#duplicates-view").hidden) loadDuplicates();
  toast(`Deleted ${displayName(image)}.`);
}

// ---- duplicates ----------------------------------------------------------------------------

function setTab(tab) {
  $("#tab-gallery").setAttribute("aria-pressed", String(tab === "gallery"));
  $("#tab-duplicates").setAttribute("aria-pressed", String(tab === "duplicates"));
  $("#gallery-view").hidden = tab !== "gallery";
  $("#duplicates-view").hidden = tab !== "duplicates";
  if (tab === "duplicates") loadDuplicates();
}

async function loadDuplicates() {
  let data;
  try {
    data = await api("GET", "/api/duplicates");
  } catch (err) {
    toast(`Could not find duplicates: ${err.message}`, true);
    return;
  }
  const groups = data.groups.map((group, i) => el("section",
    { class: "dup-group", "data-testid": "duplicate-group", "aria-label": `Duplicate group ${i + 1}` },
    el("h3", { text: `${group.kind === "exact" ? "Exact copies" : "Near duplicates"} · ` +
      `${group.images.length} images · similarity ≥ ${group.score.toFixed(3)}` }),
    el("div", { class: "row" }, ...group.images.map((image) => tile(image, undefined, "duplicate")))));
  $("#duplicates").replaceChildren(...groups);
  $("#duplicates-meta").textContent = groups.length
    ? `${groups.length} group${groups.length === 1 ? "" : "s"}: keep one of each, delete the rest.`
    : "No duplicates found.";
}

// ---- upload --------------------------------------------------------------------------------

function uploadOne(file, row) {
  return new Promise((resolve) => {
    const bar = row.querySelector("progress");
    const status = row.querySelector(".state");
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/images");
    for (const [key, value] of Object.entries(authHeaders())) xhr.setRequestHeader(key, value);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) bar.value = event.loaded / event.total;
    });
    const fail = (message) => {
      status.textContent = "failed";
      row.append(el("span", { class: "err", "data-testid": "upload-error", text: message }));
      resolve(false);
    };
    xhr.addEventListener("load", () => {
      bar.value = 1;
      let data = {};
      try { data = JSON.parse(xhr.responseText); } catch { /* not JSON: use the status */ }
      if (loginAgain(xhr.status)) return fail("your session has ended: log in again");
      if (xhr.status >= 400) return fail(data.detail || `${xhr.status} ${xhr.statusText}`);
      const dup = (data.duplicates || []).length > 0;
      status.textContent = dup ? "already here" : "added";
      status.className = "state ok";
      resolve(true);
    });
    xhr.addEventListener("error", () => fail("network error"));
    const body = new FormData();
    body.append("files", file, file.name);
    xhr.send(body);
  });
}

function summarise() {
  const rows = [...$("#upload-list").children];
  const count = (text) => rows.filter((r) => r.querySelector(".state").textContent === text).length;
  const parts = [
    [count("added"), "added"], [count("already here"), "already here"],
    [count("failed") + count("too large"), "failed"],
    [count("waiting") + count("uploading"), "in progress"],
  ].filter(([n]) => n > 0).map(([n, what]) => `${n} ${what}`);
  $("#upload-summary").textContent = `Uploads: ${parts.join(", ")}`;
}

async function uploadFiles(files) {
  const list = $("#upload-list");
  $("#upload-panel").hidden = false;
  const max = Number(document.body.dataset.maxUpload);
  const jobs = [];
  for (const file of files) {
    const row = el("li", { "data-testid": "upload-row" },
      el("span", { class: "fname", text: file.name }),
      el("progress", { max: "1", value: "0", "aria-label": `Upload progress of ${file.name}` }),
      el("span", { class: "state", text: "waiting" }));
    list.prepend(row);
    if (file.size > max) {
      row.querySelector(".state").textContent = "too large";
      row.append(el("span", { class: "err", "data-testid": "upload-error",
        text: `${file.name}: larger than the ${(max / 1048576).toFixed(1)} MB limit` }));
      continue;
    }
    jobs.push([file, row]);
  }
  const worker = async () => {
    while (jobs.length) {
      const [file, row] = jobs.shift();
      row.querySelector(".state").textContent = "uploading";
      await uploadOne(file, row);
      summarise();
    }
  };
  summarise();
  await Promise.all(Array.from({ length: UPLOAD_CONCURRENCY }, worker));
  await loadGallery(true);
}

function imageFiles(dataTransfer) {
  return [...(dataTransfer?.files || [])];
}

// ---- wiring --------------------------------------------------------------------------------

function init() {
  $("#mode-text").addEventListener("click", () => { setMode("text"); $("#q").focus(); });
  $("#mode-image").addEventListener("click", () => setMode("image"));
  $("#text-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const q = $("#q").value.trim();
    if (q) runQuery({ kind: "text", q });
    else $("#q").focus();
  });
  $("#query-file").addEventListener("change", (event) => {
    const [file] = event.target.files;
    event.target.value = "";
    if (file) searchByFile(file);
  });
  setupLanguage(() => {
    if (state.lastQuery && state.lastQuery.kind === "text") runQuery(state.lastQuery);
  });
  $("#topk").addEventListener("change", () => { if (state.lastQuery) runQuery(state.lastQuery); });
  $("#threshold").addEventListener("input", applyThreshold);
  $("#clear-results").addEventListener("click", () => {
    $("#results").hidden = true;
    state.hits = [];
    $("#threshold").disabled = true;
  });
  $("#load-more").addEventListener("click", () => loadGallery(false));
  $("#tab-gallery").addEventListener("click", () => setTab("gallery"));
  $("#tab-duplicates").addEventListener("click", () => setTab("duplicates"));
  $("#upload-button").addEventListener("click", () => $("#upload-input").click());
  $("#query-button").addEventListener("click", () => $("#query-file").click());
  $("#upload-clear").addEventListener("click", () => {
    $("#upload-list").replaceChildren();
    $("#upload-panel").hidden = true;
  });
  $("#upload-input").addEventListener("change", (event) => {
    const files = [...event.target.files];
    event.target.value = "";
    if (files.length) uploadFiles(files);
  });

  // Drag and drop anywhere on the page adds images.
  let depth = 0;
  const overlay = $("#drop-overlay");
  document.addEventListener("dragenter", (event) => {
    if (![...(event.dataTransfer?.types || [])].includes("Files")) return;
    depth += 1;
    overlay.hidden = false;
  });
  document.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) overlay.hidden = true;
  });
  document.addEventListener("dragover", (event) => event.preventDefault());
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    depth = 0;
    overlay.hidden = true;
    const files = imageFiles(event.dataTransfer);
    if (files.length) uploadFiles(files);
  });

  // Ctrl+V of an image runs an image search (text pastes into the search box stay text).
  document.addEventListener("paste", (event) => {
    const file = imageFiles(event.clipboardData).find((f) => f.type.startsWith("image/"));
    if (!file) return;
    event.preventDefault();
    searchByFile(file);
  });

  const token = $("#token");
  if (token) {
    token.value = sessionStorage.getItem("imagefind-token") || "";
    token.addEventListener("change", () => sessionStorage.setItem("imagefind-token", token.value));
  }
  loadGallery(true);
}

init();
