// mailrig's web page: the views the server-rendered shell (ui.rs) lays out,
// filled from the JSON API and kept live by the Server-Sent Events stream.
// Plain JavaScript, no build step, no libraries. Every value from a message
// goes into the page as text (textContent), never as markup; a message's
// HTML is shown only in a sandboxed iframe served under its own strict CSP.
"use strict";

const $ = (sel) => document.querySelector(sel);
const API = "/api/v1";

/** Creates an element with attributes and children (strings become text). */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

async function api(method, path, body, type) {
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.body = body;
    opts.headers["Content-Type"] = type || "application/json";
  }
  const r = await fetch(API + path, opts);
  const text = await r.text();
  let data;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!r.ok) {
    const msg = data && data.error ? data.error : `${r.status} ${r.statusText}`;
    const err = new Error(msg);
    err.status = r.status;
    throw err;
  }
  return data;
}

const enc = encodeURIComponent;
/** Today's times as HH:MM:SS, older ones with their date. */
function fmtTime(t) {
  if (!t) return "";
  const d = new Date(t);
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  return d.toDateString() === new Date().toDateString() ? time : `${d.toISOString().slice(0, 10)} ${time}`;
}
const fmtSize = (n) => (n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`);
const msgPath = (m) => `/mailboxes/${enc(m.mailbox)}/messages/${m.uid}`;
const folderQ = (m) => (m.folder && m.folder !== "INBOX" ? `?folder=${enc(m.folder)}` : "");

function debounce(fn, ms) {
  let t = null;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}

function flash(text) {
  const live = $("#live");
  live.dataset.note = text;
}

// ---------------------------------------------------------------- routing

const views = ["world", "messages", "faults", "journal"];

function route() {
  const h = location.hash.replace(/^#\/?/, "");
  const [view, ...rest] = h.split("/");
  const name = views.includes(view) ? view : view === "message" ? "messages" : "world";
  for (const v of views) {
    $(`#view-${v}`).hidden = v !== name;
    $(`#tab-${v}`).setAttribute("aria-current", v === name ? "page" : "false");
  }
  if (name === "world") loadGrid();
  if (name === "messages") {
    loadMessages();
    if (view === "message" && rest.length >= 2) openMessage(decodeURIComponent(rest[0]), rest[1]);
  }
  if (name === "faults") loadFaults();
  if (name === "journal") loadJournal();
}

// ---------------------------------------------------------------- world grid

let grid = null;
const collapsed = new Set();

async function loadGrid() {
  try { grid = await api("GET", "/grid"); } catch (e) { $("#grid").textContent = e.message; return; }
  drawGrid();
}

function cellState(m) {
  if (m.problems > 0) return "problem";
  if (m.messages > 0) return "mail";
  return "empty";
}

function drawGrid() {
  if (!grid) return;
  const filter = $("#grid-filter").value.trim().toLowerCase();
  const onlyProblems = $("#grid-problems").checked;
  const out = $("#grid");
  out.replaceChildren();
  let shown = 0, problems = 0, total = 0;
  for (const d of grid.domains) {
    const domainHit = !filter || d.name.toLowerCase().includes(filter);
    const cells = d.mailboxes.filter((m) =>
      (domainHit || m.address.toLowerCase().includes(filter)) && (!onlyProblems || m.problems > 0));
    total += d.mailboxes.length;
    problems += d.problem_mailboxes;
    if (cells.length === 0) continue;
    const isCollapsed = collapsed.has(d.name);
    const head = el("button", {
      class: "domain-head", type: "button", "aria-expanded": String(!isCollapsed),
      onclick: () => { isCollapsed ? collapsed.delete(d.name) : collapsed.add(d.name); drawGrid(); },
    }, `${isCollapsed ? "▸" : "▾"} ${d.name}`,
      el("span", { class: "counts" }, ` ${d.mailboxes.length} mailboxes · ${d.messages} messages`),
      d.problem_mailboxes ? el("span", { class: "bad-count" }, ` · ${d.problem_mailboxes} with problems`) : null);
    const box = el("div", { class: "domain", "data-domain": d.name }, head);
    if (!isCollapsed) {
      const cellsEl = el("div", { class: "cells" });
      // Draw at most 2000 cells per domain; the filter finds the rest.
      for (const m of cells.slice(0, 2000)) {
        const st = cellState(m);
        const p = m.last_problem;
        const tip = [m.address, `${m.messages} messages`,
          m.last_delivery ? `last delivery ${fmtTime(m.last_delivery)}` : "no delivery yet",
          p ? `${p.kind} at ${p.stage}${p.rule ? ` by rule ${p.rule}` : ""}: ${p.detail}` : ""].filter(Boolean).join("\n");
        cellsEl.append(el("button", {
          type: "button", class: `cell ${st}`, title: tip, "data-address": m.address, "data-state": st,
          onclick: () => showCell(m),
        }, el("span", { class: "local" }, m.address.split("@")[0]), el("span", { class: "count" }, m.messages)));
        shown++;
      }
      if (cells.length > 2000) cellsEl.append(el("span", { class: "more" }, `… ${cells.length - 2000} more: filter to see them`));
      box.append(cellsEl);
    }
    out.append(box);
  }
  $("#grid-summary").textContent = `${total} mailboxes, ${problems} with problems`;
}

function showCell(m) {
  const d = $("#grid-detail");
  const p = m.last_problem;
  d.hidden = false;
  d.replaceChildren(
    el("h2", {}, m.address),
    el("p", {}, `${m.messages} messages · ${m.delivered} delivered · `,
      m.last_delivery ? `last delivery ${fmtTime(m.last_delivery)}` : "no delivery yet"),
    p ? el("p", { class: "bad" }, `${m.problems} problem(s); latest: ${p.kind} at stage ${p.stage}`,
      p.rule ? [" by rule ", el("a", { href: "#/faults" }, p.rule)] : " (no rule: the world's own answer)",
      `: ${p.detail} (${fmtTime(p.time)})`) : el("p", {}, "No problems."),
    el("p", {},
      el("a", { href: "#/messages", onclick: () => { $("#f-mailbox").value = m.address; } }, "messages"), " · ",
      el("a", { href: "#/journal", onclick: () => { $("#j-mailbox").value = m.address; } }, "journal")),
  );
}

// ---------------------------------------------------------------- messages

const page = { offset: 0, limit: 50, total: 0 };

function searchQuery() {
  const p = new URLSearchParams();
  const q = $("#q").value.trim();
  if (q) p.set($("#search-field").value, q);
  const mb = $("#f-mailbox").value.trim();
  if (mb) p.set("mailbox", mb);
  const dom = $("#f-domain").value.trim();
  if (dom) p.set("domain", dom);
  if ($("#f-after").value) p.set("after", new Date($("#f-after").value + "T00:00:00").toISOString());
  if ($("#f-before").value) {
    const b = new Date($("#f-before").value + "T00:00:00");
    b.setDate(b.getDate() + 1);
    p.set("before", b.toISOString());
  }
  p.set("limit", page.limit);
  p.set("offset", page.offset);
  return p.toString();
}

let current = null; // the open message's summary

async function loadMessages() {
  let data;
  try { data = await api("GET", "/messages?" + searchQuery()); } catch (e) { flash(e.message); return; }
  page.total = data.total;
  const tbody = $("#messages tbody");
  tbody.replaceChildren();
  for (const m of data.messages) {
    const href = `#/message/${enc(m.mailbox)}/${m.uid}`;
    const open = current && current.mailbox === m.mailbox && current.uid === m.uid;
    const from = m.from || (m.envelope ? m.envelope.mail_from : "");
    const subject = m.subject || "(no subject)";
    tbody.append(el("tr", { class: open ? "open" : null, "data-uid": m.uid, "data-mailbox": m.mailbox },
      el("td", {}, el("a", { href }, fmtTime(m.internal_date))),
      el("td", { title: m.mailbox }, m.mailbox),
      el("td", { title: from }, from),
      el("td", { title: subject }, el("a", { href, class: "subject" }, subject)),
      el("td", { class: "n" }, fmtSize(m.size))));
  }
  if (data.messages.length === 0) tbody.append(el("tr", {}, el("td", { colspan: 5, class: "empty" }, "No messages.")));
  const last = Math.min(page.offset + data.messages.length, page.total);
  $("#page-info").textContent = page.total ? `${page.offset + 1}–${last} of ${page.total}` : "0";
  $("#prev").disabled = page.offset === 0;
  $("#next").disabled = last >= page.total;
}

async function openMessage(mailbox, uid) {
  const pane = $("#message");
  let p;
  try { p = await api("GET", `/mailboxes/${enc(mailbox)}/messages/${uid}/parsed`); } catch (e) {
    pane.replaceChildren(el("p", { class: "error" }, e.message));
    return;
  }
  const m = p.message;
  current = m;
  for (const tr of document.querySelectorAll("#messages tbody tr")) {
    tr.classList.toggle("open", tr.dataset.mailbox === m.mailbox && tr.dataset.uid === String(m.uid));
  }
  const base = API + msgPath(m);
  const tabs = [
    ["html", "HTML"], ["text", "Text"], ["headers", "Headers"], ["source", "Source"],
    ["attachments", `Attachments (${p.attachments.length})`], ["mime", "MIME"], ["history", "Journal"],
  ];
  const body = el("div", { class: "msg-body" });
  const tabBar = el("div", { class: "msg-tabs", role: "tablist" });
  const show = (id) => {
    for (const b of tabBar.children) b.setAttribute("aria-selected", String(b.dataset.tab === id));
    body.replaceChildren(renderTab(id, p, base));
  };
  for (const [id, label] of tabs) {
    tabBar.append(el("button", { type: "button", role: "tab", "data-tab": id, onclick: () => show(id) }, label));
  }
  pane.replaceChildren(
    el("div", { class: "msg-head" },
      el("h2", { id: "msg-subject" }, m.subject || "(no subject)"),
      el("dl", {},
        el("dt", {}, "From"), el("dd", {}, m.from || ""),
        el("dt", {}, "To"), el("dd", {}, m.to.join(", ")),
        el("dt", {}, "Mailbox"), el("dd", {}, `${m.mailbox} / ${m.folder} / UID ${m.uid}`),
        el("dt", {}, "Received"), el("dd", {}, fmtTime(m.internal_date)),
        m.envelope ? [el("dt", {}, "Envelope"), el("dd", {}, `MAIL FROM:<${m.envelope.mail_from}> from ${m.envelope.peer}${m.envelope.tls ? " (TLS)" : ""}`)] : null),
      el("div", { class: "actions" },
        el("a", { href: `${base}/raw?download=true${folderQ(m) ? "&" + folderQ(m).slice(1) : ""}`, download: "", id: "download-raw" }, "Download .eml"),
        el("button", { type: "button", class: "danger", id: "delete-message", onclick: () => deleteMessage(m) }, "Delete"),
        el("button", { type: "button", class: "danger", onclick: () => deleteMailbox(m.mailbox) }, `Delete all of ${m.mailbox}`))),
    tabBar, body);
  show(p.html ? "html" : "text");
}

function renderTab(id, p, base) {
  switch (id) {
    case "html": {
      if (!p.html) return el("p", { class: "empty" }, "This message has no HTML part.");
      const frame = el("iframe", {
        id: "html-frame", sandbox: "", referrerpolicy: "no-referrer", title: "message HTML",
        src: `${base}/html`,
      });
      const remote = el("button", {
        type: "button", id: "load-remote",
        onclick: () => { frame.src = `${base}/html?remote=true`; remote.disabled = true; },
      }, "Load remote content");
      return el("div", {}, el("p", { class: "hint" }, "Scripts are off; remote images and styles are blocked. ", remote), frame);
    }
    case "text":
      return el("pre", { class: "text", id: "text-body" }, p.text || "(no text part)");
    case "headers":
      return el("table", { class: "headers" }, p.headers.map((h) => el("tr", {}, el("th", {}, h.name), el("td", {}, h.value))));
    case "source": {
      const pre = el("pre", { class: "source", id: "source" }, "loading…");
      fetch(`${base}/raw`).then((r) => r.text()).then((t) => { pre.textContent = t; });
      return pre;
    }
    case "attachments":
      if (!p.attachments.length) return el("p", { class: "empty" }, "No attachments.");
      return el("ul", { class: "attachments" }, p.attachments.map((a) => el("li", {},
        el("a", { href: `${base}/attachments/${a.index}`, download: a.filename || "" }, a.filename || `attachment ${a.index}`),
        ` ${a.content_type}, ${fmtSize(a.size)}${a.inline ? ", inline" : ""}`)));
    case "mime": {
      const node = (n) => el("li", {}, `${n.content_type}`, el("span", { class: "dim" },
        ` ${fmtSize(n.size)}${n.filename ? ` · ${n.filename}` : ""}${n.encoding ? ` · ${n.encoding}` : ""}`),
        n.children.length ? el("ul", {}, n.children.map(node)) : null);
      return el("ul", { class: "mime" }, node(p.mime));
    }
    case "history": {
      const box = el("div", {}, "loading…");
      const m = p.message;
      const q = m.message_id ? `message_id=${enc(m.message_id)}` : `mailbox=${enc(m.mailbox)}`;
      api("GET", `/journal?${q}`).then((j) => {
        box.replaceChildren(j.entries.length ? journalTable(j.entries) : el("p", { class: "empty" }, "No journal entries."));
      });
      return box;
    }
  }
  return el("p", {}, "?");
}

async function deleteMessage(m) {
  if (!confirm(`Delete message ${m.uid} of ${m.mailbox}?`)) return;
  await api("DELETE", msgPath(m) + folderQ(m));
  current = null;
  $("#message").replaceChildren(el("p", { class: "empty" }, "Deleted."));
  location.hash = "#/messages";
  loadMessages();
}

async function deleteMailbox(address) {
  if (!confirm(`Delete every message of ${address}?`)) return;
  await api("DELETE", `/mailboxes/${enc(address)}/messages`);
  loadMessages();
}

// ---------------------------------------------------------------- faults

async function loadFaults() {
  let rules;
  try { rules = await api("GET", "/faults"); } catch (e) { flash(e.message); return; }
  const tbody = $("#faults tbody");
  tbody.replaceChildren();
  const selectorKeys = ["domain", "mailbox", "except", "sender", "client", "user", "nth", "first", "every", "after", "from_secs", "until_secs", "probability"];
  for (const r of rules) {
    const sel = selectorKeys.filter((k) => r.spec[k] !== undefined)
      .map((k) => `${k}=${Array.isArray(r.spec[k]) ? r.spec[k].join(",") : r.spec[k]}`).join(" ");
    const toggle = el("input", {
      type: "checkbox", checked: r.enabled, "aria-label": `enable ${r.name}`, "data-rule": r.name,
      onchange: async (ev) => {
        try { await api("POST", `/faults/${enc(r.name)}/${ev.target.checked ? "enable" : "disable"}`); } catch (e) { flash(e.message); }
        loadFaults();
      },
    });
    tbody.append(el("tr", { "data-rule": r.name, class: r.enabled ? null : "off" },
      el("td", {}, toggle),
      el("td", {}, el("strong", {}, r.name), r.spec.description ? el("div", { class: "dim" }, r.spec.description) : null),
      el("td", {}, r.stage), el("td", {}, r.action), el("td", { class: "mono" }, sel),
      el("td", { class: "n fired" }, r.fired),
      el("td", {}, el("button", {
        type: "button", class: "danger", "aria-label": `delete ${r.name}`,
        onclick: async () => { if (confirm(`Delete rule ${r.name}?`)) { await api("DELETE", `/faults/${enc(r.name)}`); loadFaults(); } },
      }, "Delete"))));
  }
  if (!rules.length) tbody.append(el("tr", {}, el("td", { colspan: 7, class: "empty" }, "No fault rules: mail flows normally.")));
}

async function addFault(ev) {
  ev.preventDefault();
  const errBox = $("#fault-error");
  errBox.hidden = true;
  try {
    const r = await api("POST", "/faults", $("#fault-text").value, $("#fault-format").value);
    if (r.warnings && r.warnings.length) { errBox.textContent = "Added, but: " + r.warnings.join("; "); errBox.hidden = false; }
    loadFaults();
  } catch (e) {
    errBox.textContent = e.message;
    errBox.hidden = false;
  }
}

function updateFaultCounters(list) {
  for (const f of list) {
    const row = document.querySelector(`#faults tr[data-rule="${CSS.escape(f.name)}"]`);
    if (!row) { if (!$("#view-faults").hidden) loadFaults(); return; }
    row.querySelector(".fired").textContent = f.fired;
    row.querySelector("input[type=checkbox]").checked = f.enabled;
    row.classList.toggle("off", !f.enabled);
  }
}

// ---------------------------------------------------------------- journal

function eventText(ev) {
  switch (ev.kind) {
    case "delivered": return `delivered to ${ev.mailbox} (UID ${ev.uid})`;
    case "rejected": return `rejected ${ev.code} ${ev.enhanced} ${ev.text}`;
    case "dropped": return "dropped (250, then thrown away)";
    case "misrouted": return `misrouted: ${ev.intended} → ${ev.actual}`;
    case "fault": return `fault: ${ev.action}`;
  }
  return ev.kind;
}

let hasHosts = false;

function journalRow(e) {
  if (e.host) { hasHosts = true; $("#j-host-col").hidden = false; }
  return el("tr", { class: `k-${e.event.kind}`, "data-seq": e.seq },
    el("td", { class: "n" }, e.seq), el("td", {}, fmtTime(e.time)), el("td", {}, e.stage),
    el("td", {}, eventText(e.event)), el("td", {}, e.rule || ""), el("td", {}, e.rcpt || ""),
    el("td", {}, e.mail_from || ""), el("td", {}, e.peer || ""),
    hasHosts ? el("td", {}, e.host || "") : null);
}

function journalTable(entries) {
  return el("table", { class: "list" }, el("tbody", {}, entries.map(journalRow)));
}

function journalQuery() {
  const p = new URLSearchParams();
  for (const k of ["mailbox", "rule", "stage", "message_id", "peer", "kind"]) {
    const v = $(`#j-${k}`).value.trim();
    if (v) p.set(k, v);
  }
  return p;
}

// The journal view pages back from the newest: JOURNAL_PAGE entries at a
// time, older ones on "older entries" or when scrolled to the bottom
// (`before` = the oldest seq shown).
const JOURNAL_PAGE = 200;
const NEWEST = "18446744073709551615";
const journalPage = { oldest: null, more: false, loading: false };

async function fetchJournal(before) {
  const p = journalQuery();
  p.set("before", before);
  p.set("limit", JOURNAL_PAGE);
  return api("GET", "/journal?" + p.toString());
}

function journalPaged(entries) {
  const tbody = $("#journal tbody");
  if (tbody.lastElementChild) journalPage.oldest = tbody.lastElementChild.dataset.seq;
  journalPage.more = entries.length === JOURNAL_PAGE;
  $("#journal-older").disabled = !journalPage.more;
  $("#journal-info").textContent = `${tbody.children.length} entries shown${journalPage.more ? "" : ", no older ones"}`;
}

async function loadJournal() {
  let j;
  try { j = await fetchJournal(NEWEST); } catch (e) { flash(e.message); return; }
  journalPage.oldest = null;
  // Newest first.
  $("#journal tbody").replaceChildren(...j.entries.slice().reverse().map(journalRow));
  journalPaged(j.entries);
}

async function loadOlderJournal() {
  if (journalPage.loading || !journalPage.more || journalPage.oldest === null) return;
  journalPage.loading = true;
  try {
    const j = await fetchJournal(journalPage.oldest);
    $("#journal tbody").append(...j.entries.slice().reverse().map(journalRow));
    journalPaged(j.entries);
  } catch (e) {
    flash(e.message);
  } finally {
    journalPage.loading = false;
  }
}

/** Whether a live entry passes the journal view's filters (as the server's). */
function journalMatches(e) {
  const p = journalQuery();
  const ci = (a, b) => (a || "").toLowerCase() === (b || "").toLowerCase();
  for (const [k, v] of p) {
    if (k === "mailbox" && !(ci(e.rcpt, v) || ci(e.event.mailbox, v) || ci(e.event.intended, v) || ci(e.event.actual, v))) return false;
    if (k === "rule" && e.rule !== v) return false;
    if (k === "stage" && e.stage !== v) return false;
    if (k === "message_id" && (e.message_id || "").replace(/[<>]/g, "") !== v.replace(/[<>]/g, "")) return false;
    if (k === "peer" && !(e.peer === v || (e.peer || "").replace(/:\d+$/, "").replace(/[[\]]/g, "") === v.replace(/[[\]]/g, ""))) return false;
    if (k === "kind" && e.event.kind !== v) return false;
  }
  return true;
}

// ---------------------------------------------------------------- live

const refreshGrid = debounce(() => { if (!$("#view-world").hidden) loadGrid(); }, 150);
const refreshMessages = debounce(() => { if (!$("#view-messages").hidden) loadMessages(); }, 150);

function connect() {
  const live = $("#live");
  const es = new EventSource(API + "/events");
  es.addEventListener("hello", () => { live.textContent = "live"; live.className = "live on"; });
  es.addEventListener("journal", (ev) => {
    const e = JSON.parse(ev.data);
    if (!$("#view-journal").hidden && $("#j-follow").checked && journalMatches(e)) {
      const tbody = $("#journal tbody");
      tbody.prepend(journalRow(e));
      // A wall display left open: keep 5000 rows; the cut ones load again as older.
      if (tbody.children.length > 5000) {
        while (tbody.children.length > 5000) tbody.lastChild.remove();
        journalPage.oldest = tbody.lastElementChild.dataset.seq;
        journalPage.more = true;
        $("#journal-older").disabled = false;
      }
    }
    refreshGrid();
  });
  es.addEventListener("delivery", () => { refreshMessages(); refreshGrid(); });
  es.addEventListener("store", () => { refreshMessages(); refreshGrid(); });
  es.addEventListener("faults", (ev) => updateFaultCounters(JSON.parse(ev.data)));
  es.onerror = () => { live.textContent = "reconnecting…"; live.className = "live off"; };
}

// ---------------------------------------------------------------- wiring

document.addEventListener("DOMContentLoaded", () => {
  $("#grid-filter").addEventListener("input", debounce(drawGrid, 100));
  $("#grid-problems").addEventListener("change", drawGrid);
  $("#search").addEventListener("submit", (ev) => { ev.preventDefault(); page.offset = 0; loadMessages(); });
  $("#prev").addEventListener("click", () => { page.offset = Math.max(0, page.offset - page.limit); loadMessages(); });
  $("#next").addEventListener("click", () => { page.offset += page.limit; loadMessages(); });
  $("#purge").addEventListener("click", async () => {
    if (!confirm("Delete every message of every mailbox?")) return;
    await api("DELETE", "/messages");
    loadMessages();
  });
  $("#add-fault").addEventListener("submit", addFault);
  $("#fault-format").addEventListener("change", () => {
    const t = $("#fault-text");
    if ($("#fault-format").value === "application/json" && !t.value.trim().startsWith("{")) {
      t.value = '{"name": "no-anna", "stage": "rcpt", "action": "reject", "mailbox": "anna", "code": 550, "enhanced": "5.1.1", "text": "no such user"}';
    }
  });
  $("#journal-filter").addEventListener("submit", (ev) => { ev.preventDefault(); loadJournal(); });
  $("#journal-older").addEventListener("click", loadOlderJournal);
  // Sign out with fetch: the page's `Referrer-Policy: no-referrer` makes a
  // plain form POST carry `Origin: null`, which the server refuses.
  const signout = document.querySelector("form.signout");
  if (signout) signout.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    await fetch("/logout", { method: "POST" });
    location.href = "/login";
  });
  window.addEventListener("scroll", debounce(() => {
    const atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 200;
    if (atBottom && !$("#view-journal").hidden) loadOlderJournal();
  }, 100));
  $("#clear-journal").addEventListener("click", async () => {
    if (!confirm("Empty the journal?")) return;
    await api("DELETE", "/journal");
    loadJournal();
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "/" && !/INPUT|TEXTAREA|SELECT/.test(document.activeElement.tagName)) {
      ev.preventDefault();
      location.hash = "#/messages";
      $("#q").focus();
    }
  });
  window.addEventListener("hashchange", route);
  route();
  connect();
});
