// imagefind web page: the gallery follows the library. Another writer (`imagefind serve
// --watch`, an `imagefind index` elsewhere) moves the library's generation counter; the page
// polls it and reloads the gallery's first page when it moves. Loaded after app.js.
"use strict";

const LIVE_EVERY_MS = 2000;
let liveGeneration = null;

async function livePoll() {
  if (document.hidden) return;
  let stats;
  try {
    stats = await api("GET", "/api/stats");
  } catch {
    return; // offline or signed out: the next poll tries again
  }
  const moved = liveGeneration !== null && stats.generation !== liveGeneration;
  liveGeneration = stats.generation;
  if (!moved) return;
  // Only the first page is reloaded, so a reader further down the gallery keeps their place.
  if (!$("#gallery-view").hidden && state.offset <= PAGE) await loadGallery(true);
  else setCount(stats.count);
}

setInterval(livePoll, LIVE_EVERY_MS);
livePoll();
