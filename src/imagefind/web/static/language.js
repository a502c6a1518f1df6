// imagefind web page: the query-language picker, loaded before app.js. The server renders
// #lang only for models that read a query's language (NLLB-CLIP); it starts at the browser's.
"use strict";

function queryLanguage() {
  const select = document.querySelector("#lang");
  return select ? select.value : null;
}

// The option for a browser tag: the tag itself, else by script or region for Chinese, else
// its primary subtag (de-DE → de); null where none fits.
function matchLanguage(tag, values) {
  const lower = new Map(values.map((v) => [v.toLowerCase(), v]));
  const parts = String(tag || "").toLowerCase().replace(/_/g, "-").split("-");
  if (lower.has(parts.join("-"))) return lower.get(parts.join("-"));
  if (parts[0] === "zh") {
    const traditional = parts.includes("hant") || ["tw", "hk", "mo"].some((r) => parts.includes(r));
    return lower.get(traditional ? "zh-hant" : "zh-hans") || null;
  }
  return lower.get(parts[0]) || null;
}

function setupLanguage(onChange) {
  const select = document.querySelector("#lang");
  if (!select) return;
  const values = [...select.options].map((o) => o.value);
  const names = typeof Intl.DisplayNames === "function"
    ? new Intl.DisplayNames([navigator.language || "en"], { type: "language" }) : null;
  for (const option of select.options) {
    try {
      const name = names && names.of(option.value);
      if (name && name !== option.value) option.textContent = `${name} (${option.value})`;
    } catch (err) { /* an unnamed tag keeps its code */ }
  }
  const wanted = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language];
  for (const tag of wanted) {
    const match = matchLanguage(tag, values);
    if (match) { select.value = match; break; }
  }
  select.addEventListener("change", onChange);
}
