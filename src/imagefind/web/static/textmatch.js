// imagefind web page: text read in images (OCR), loaded before app.js. The search mode
// picker (#search-mode: hybrid, clip or text; empty = the library's default) and each hit's
// snippet, whose ⟦…⟧ marks become <mark> elements (built as text nodes: never HTML).
"use strict";

const MARK_OPEN = "\u27e6";
const MARK_CLOSE = "\u27e7";

function searchModeParam() {
  const select = document.querySelector("#search-mode");
  return select && select.value ? `&mode=${encodeURIComponent(select.value)}` : "";
}

// The snippet as a paragraph with the matches marked, or null for a hit without one.
function textMatchElement(hit) {
  const snippet = hit.text_match || hit.text;
  if (!snippet) return null;
  const p = document.createElement("p");
  p.className = "text-match";
  p.dataset.testid = "text-match";
  p.title = hit.text || "";
  let rest = snippet;
  while (rest) {
    const open = rest.indexOf(MARK_OPEN);
    const close = open < 0 ? -1 : rest.indexOf(MARK_CLOSE, open);
    if (open < 0 || close < 0) { p.append(rest); break; }
    p.append(rest.slice(0, open));
    const mark = document.createElement("mark");
    mark.textContent = rest.slice(open + 1, close);
    p.append(mark);
    rest = rest.slice(close + 1);
  }
  return p;
}

// A result tile with its hit's text under the name.
function withTextMatch(card, hit) {
  const p = textMatchElement(hit);
  const info = card.querySelector(".info");
  if (p && info) info.append(p);
  return card;
}
