// Links into the monitor page: /#job=ID opens that job's panel (the map's job cards link here).
// Kept apart from app.js; it calls app.js's openJob once the monitor has started.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const match = /^#job=([A-Za-z0-9_-]{1,128})$/.exec(location.hash);
  if (match && typeof openJob === "function") openJob(match[1]);
});
