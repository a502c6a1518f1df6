// imagefind web page: the filter bar (dates, folder, camera, place, orientation, sort), the
// timeline view of the gallery, and the page's state in its URL so a search can be
// bookmarked and shared. Loaded before app.js, which asks it for query parameters
// (searchParams, galleryParams), for each card's caption and for the timeline's headers.
"use strict";

const FILTER_KEYS = ["after", "before", "in", "camera", "place", "orientation"];
const filterBar = document.querySelector("#filter-bar");

function filterControl(key) { return filterBar.querySelector(`[data-filter="${key}"]`); }

function currentFilters() {
  const params = new URLSearchParams();
  for (const key of FILTER_KEYS) {
    const value = filterControl(key).value.trim();
    if (value) params.append(key, value);
  }
  return params;
}

function currentSort() { return filterControl("sort").value; }
function timelineOn() { return filterControl("view").getAttribute("aria-pressed") === "true"; }

// What every search route takes: the filters and the sort (score, date, -date).
function searchParams() {
  const params = currentFilters();
  params.set("sort", currentSort());
  return params.toString();
}

// The gallery: the filters, in the order asked; the timeline is newest first unless asked
// oldest first, and "best match" means nothing without a query (newest added first).
function galleryParams() {
  const params = currentFilters();
  const sort = currentSort();
  params.set("sort", timelineOn() ? (sort === "date" ? "date" : "-date") : (sort === "score" ? "added" : sort));
  return params.toString();
}

// The URL holds the filters, the sort, the view and the text query: reload restores them.
function saveUrl(query) {
  const params = currentFilters();
  if (currentSort() !== "score") params.set("sort", currentSort());
  if (timelineOn()) params.set("view", "timeline");
  const q = query !== undefined ? query : new URLSearchParams(window.location.search).get("q");
  if (q) params.set("q", q);
  const search = params.toString();
  window.history.replaceState(null, "", search ? `?${search}` : window.location.pathname);
}

function restoreFromUrl() {
  const params = new URLSearchParams(window.location.search);
  for (const key of [...FILTER_KEYS, "sort"]) {
    const value = params.get(key);
    const control = filterControl(key);
    if (!value) continue;
    if (control.tagName === "SELECT" && ![...control.options].some((o) => o.value === value)) {
      control.append(new Option(value, value));
    }
    control.value = value;
  }
  filterControl("view").setAttribute("aria-pressed", String(params.get("view") === "timeline"));
  return params.get("q");
}

function fillSelect(key, entries) {
  const control = filterControl(key);
  const keep = control.value;
  const first = control.options[0];
  control.replaceChildren(first);
  for (const [value, label] of entries) control.append(new Option(label, value));
  if (keep && ![...control.options].some((o) => o.value === keep)) control.append(new Option(keep, keep));
  control.value = keep;
}

async function loadFacets() {
  let facets;
  try {
    facets = await api("GET", "/api/facets");
  } catch (err) {
    return; // the bar still takes typed values
  }
  const dates = document.querySelector("#filter-dates");
  dates.replaceChildren(...facets.years.flatMap((y) => [
    new Option(`${y.year} (${y.count})`, y.year),
    ...y.months.map((m) => new Option(`${m.value} (${m.count})`, m.value)),
  ]));
  fillSelect("in", facets.folders.map((f) => [f.value, `${f.value} (${f.count})`]));
  fillSelect("camera", facets.cameras.map((c) => [c.value, `${c.value} (${c.count})`]));
  const countries = new Map();
  for (const p of facets.places) {
    if (p.country) countries.set(p.country, (countries.get(p.country) || 0) + p.count);
  }
  fillSelect("place", [
    ...[...countries].map(([name, n]) => [name, `${name} (${n})`]),
    ...facets.places.filter((p) => p.city).map((p) => [p.city, `${p.city}, ${p.country_code || ""} (${p.count})`]),
  ]);
}

// A card's second line: when (local date taken) and where.
function cardCaption(image) {
  const when = (image.taken_local || image.taken_at || "").slice(0, 10);
  const place = typeof image.place === "string" ? image.place
    : [image.city, image.country].filter(Boolean).join(", ");
  return [when, place].filter(Boolean).join(" · ");
}

function monthOf(image) { return (image.taken_local || image.taken_at || "").slice(0, 7); }

function monthLabel(month) {
  if (!month) return "No date";
  const [year, m] = month.split("-").map(Number);
  return new Date(year, m - 1, 1).toLocaleDateString(undefined, { year: "numeric", month: "long" });
}

// The timeline: a header before the first card of each month (the gallery comes by date).
function markTimeline(grid) {
  for (const header of grid.querySelectorAll(".month")) header.remove();
  if (!timelineOn()) return;
  let last = null;
  for (const card of [...grid.children]) {
    const month = card.dataset.month || "";
    if (month === last) continue;
    last = month;
    card.before(el("h3", { class: "month", "data-testid": "month", "data-month": month, text: monthLabel(month) }));
  }
}

// With filters on, the gallery's total is what passes: said in the bar, not as the library's
// size. False without filters.
function showFilterCount(total) {
  const on = currentFilters().toString() !== "";
  const meta = document.querySelector("#filter-meta");
  meta.textContent = on ? `${total} image${total === 1 ? "" : "s"} pass` : "";
  return on;
}

function filtersChanged() {
  saveUrl();
  loadGallery(true);
  if (state.lastQuery) runQuery(state.lastQuery);
}

function setupFilters() {
  const q = restoreFromUrl();
  for (const key of [...FILTER_KEYS, "sort"]) filterControl(key).addEventListener("change", filtersChanged);
  filterControl("view").addEventListener("click", () => {
    filterControl("view").setAttribute("aria-pressed", String(!timelineOn()));
    filtersChanged();
  });
  filterBar.querySelector("#filter-clear").addEventListener("click", () => {
    for (const key of FILTER_KEYS) filterControl(key).value = "";
    filtersChanged();
  });
  document.querySelector("#text-form").addEventListener("submit", () => saveUrl(document.querySelector("#q").value.trim()));
  // After app.js has set the page up (api, runQuery): the facets, and the URL's query.
  document.addEventListener("DOMContentLoaded", () => {
    loadFacets();
    if (!q) return;
    document.querySelector("#q").value = q;
    runQuery({ kind: "text", q });
  });
}

setupFilters();
