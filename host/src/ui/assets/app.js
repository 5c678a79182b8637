// Switchyard dashboard: small enhancements. Every page works without this file.
"use strict";

// Copy buttons: <button class="copy" data-copy="element-id">.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button.copy");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (source && navigator.clipboard) {
    navigator.clipboard.writeText(source.textContent).then(() => { button.textContent = "Copied"; });
  }
});

// Confirmations: <button data-confirm="question">.
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
  }
});

// The live tail: server-sent events, polling when they stop arriving.
(function live() {
  const table = document.getElementById("live");
  if (!table) return;
  const body = table.tBodies[0];
  const dot = document.getElementById("live-state");
  const pauseButton = document.getElementById("live-pause");
  const filter = new URLSearchParams();
  if (table.dataset.source) filter.set("source", table.dataset.source);
  if (table.dataset.type) filter.set("type", table.dataset.type);
  let paused = false;
  let last = body.rows.length ? body.rows[0].dataset.id : "";
  let polling = null;
  const held = [];

  function cell(row, text, href) {
    const td = row.insertCell();
    if (href) {
      const a = document.createElement("a");
      a.href = href;
      a.textContent = text;
      td.appendChild(a);
    } else {
      td.textContent = text;
    }
  }
  function add(item) {
    if (document.querySelector('tr[data-id="' + CSS.escape(item.id) + '"]')) return;
    if (paused) { held.push(item); pauseButton.textContent = "Resume (" + held.length + " new)"; return; }
    const row = body.insertRow(0);
    row.dataset.id = item.id;
    row.className = "new";
    cell(row, item.id, "/ui/events/" + encodeURIComponent(item.id));
    cell(row, item.source);
    cell(row, item.type);
    cell(row, item.received);
    cell(row, item.size);
    while (body.rows.length > 200) body.deleteRow(body.rows.length - 1);
    last = item.id;
  }
  function connected(on) {
    dot.classList.toggle("on", on);
    dot.title = on ? "connected" : "not connected";
  }
  function poll() {
    const query = new URLSearchParams(filter);
    if (last) query.set("after", last);
    fetch("/ui/live/recent?" + query, { credentials: "same-origin" })
      .then((response) => response.ok ? response.json() : [])
      .then((items) => items.forEach(add))
      .catch(() => {});
  }
  pauseButton.hidden = false;
  pauseButton.addEventListener("click", () => {
    paused = !paused;
    pauseButton.textContent = paused ? "Resume" : "Pause";
    if (!paused) held.splice(0).forEach(add);
  });
  if (!window.EventSource) { polling = setInterval(poll, 5000); return; }
  const source = new EventSource("/ui/stream?" + filter);
  source.onopen = () => connected(true);
  source.onerror = () => connected(false);
  source.addEventListener("accepted", (message) => add(JSON.parse(message.data)));
  source.addEventListener("gap", () => window.location.reload());
  // While the stream is down (reconnecting or closed), poll every 5 s until it returns.
  setInterval(() => {
    const silent = source.readyState !== EventSource.OPEN;
    if (silent && !polling) { polling = setInterval(poll, 5000); poll(); }
    if (!silent && polling) { clearInterval(polling); polling = null; }
  }, 5000);
  document.body.dataset.live = "ready";
})();

// File fields read into a hidden base64 field: <input type="file" data-into="hidden-id">.
document.addEventListener("change", (event) => {
  const input = event.target;
  if (!input.dataset || !input.dataset.into || !input.files || !input.files[0]) return;
  const reader = new FileReader();
  reader.onload = () => {
    const url = String(reader.result);
    document.getElementById(input.dataset.into).value = url.slice(url.indexOf(",") + 1);
  };
  reader.readAsDataURL(input.files[0]);
});
