// The web page in a real browser: headless Debian chromium driven by
// playwright-core, against a `mailrig serve` (kanzlei-2-of-25) that
// crates/mailrig/tests/ui_browser.rs started. Mail is sent with swaks, as a
// user would. Every step saves a screenshot under target/ui-screenshots/.
//
// argv: BASE_URL SMTP_PORT SCREENSHOT_DIR
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, mkdirSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [BASE, SMTP_PORT, SHOTS] = process.argv.slice(2);
mkdirSync(SHOTS, { recursive: true });
const work = mkdtempSync(join(tmpdir(), "mailrig-ui-"));

function assert(cond, msg) {
  if (!cond) throw new Error("assertion failed: " + msg);
}

/** swaks to 127.0.0.1:SMTP_PORT; returns its transcript (throws on failure unless allowFail). */
function swaks(args, allowFail = false) {
  try {
    return execFileSync("swaks", ["--server", "127.0.0.1", "--port", SMTP_PORT, "--from", "tester@extern.test", "--hide-all", "--silent", "0", ...args], { encoding: "utf8" });
  } catch (e) {
    if (allowFail) return (e.stdout || "") + (e.stderr || "");
    throw e;
  }
}
/** swaks with the whole message (headers and body) from `data`, as written. */
function swaksData(to, data) {
  execFileSync("swaks", ["--server", "127.0.0.1", "--port", SMTP_PORT, "--from", "tester@extern.test", "--to", to, "--hide-all", "--data", "-"], { input: data.replace(/\r?\n/g, "\r\n") });
}
/** A multipart message: text and HTML alternatives, then attachments [{name, type, bytes}]. */
function mime(subject, text, html, attachments = []) {
  const b = "=_mailrig_outer", a = "=_mailrig_alt";
  let m = `From: Tester <tester@extern.test>\nTo: anna@kanzlei.test\nSubject: ${subject}\nMessage-ID: <${Date.now()}.${Math.random().toString(36).slice(2)}@extern.test>\nX-Mailer: ui_test.mjs\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="${b}"\n\n`;
  m += `--${b}\nContent-Type: multipart/alternative; boundary="${a}"\n\n`;
  m += `--${a}\nContent-Type: text/plain; charset=utf-8\n\n${text}\n`;
  m += `--${a}\nContent-Type: text/html; charset=utf-8\n\n${html}\n--${a}--\n`;
  for (const at of attachments) {
    const b64 = at.bytes.toString("base64").replace(/.{76}/g, "$&\n");
    m += `--${b}\nContent-Type: ${at.type}; name="${at.name}"\nContent-Disposition: attachment; filename="${at.name}"\nContent-Transfer-Encoding: base64\n\n${b64}\n`;
  }
  return m + `--${b}--\n`;
}
function swaksTranscript(args) {
  try {
    return execFileSync("swaks", ["--server", "127.0.0.1", "--port", SMTP_PORT, "--from", "tester@extern.test", ...args], { encoding: "utf8" });
  } catch (e) {
    return (e.stdout || "") + (e.stderr || "");
  }
}

async function api(path, opts) {
  const r = await fetch(BASE + "/api/v1" + path, opts);
  return r.json();
}

// A listener the hostile message's remote images point at: nothing may reach it.
const remoteHits = [];
const trap = createServer((req, res) => { remoteHits.push(req.url); res.end("x"); });
await new Promise((ok) => trap.listen(0, "127.0.0.1", ok));
const trapUrl = `http://127.0.0.1:${trap.address().port}`;

// A fresh user-data dir (playwright passes it as --user-data-dir).
const context = await chromium.launchPersistentContext(join(work, "profile"), {
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  viewport: { width: 1280, height: 800 },
  acceptDownloads: true,
});
const page = context.pages()[0] || (await context.newPage());
const consoleErrors = [];
page.on("pageerror", (e) => consoleErrors.push(String(e)));
const dialogs = [];
page.on("dialog", (d) => { dialogs.push(d.message()); d.accept(); });
// page.waitForFunction evals its predicate in the page, which the page's
// CSP forbids (as it should): poll with page.evaluate instead.
async function waitFor(fn, arg, timeout = 10000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await page.evaluate(fn, arg)) return;
    if (Date.now() > deadline) throw new Error("timed out waiting for " + fn.toString());
    await page.waitForTimeout(50);
  }
}
const shot = (name) => page.screenshot({ path: join(SHOTS, name + ".png"), fullPage: false });
const results = [];
async function step(name, fn) {
  await fn();
  await shot(name);
  results.push(name);
  console.log("ok:", name);
}

// First screen: usable (the grid drawn, live connected) — the time is printed, never asserted.
const t0 = Date.now();
await page.goto(BASE + "/");
await page.waitForSelector("#grid .cell");
await page.waitForSelector("#live.on");
console.log(`first screen usable after ${Date.now() - t0} ms`);
assert(!(await page.$("#signout")), "no Sign out button without a token");

await step("01-grid-seed-after-sends", async () => {
  // The seed incident: one message to every mailbox; 23 of patente.test are dropped.
  const grid = await api("/grid");
  for (const d of grid.domains) for (const m of d.mailboxes) swaks(["--to", m.address, "--header", "Subject: probe " + m.address]);
  await waitFor(() => document.querySelectorAll("#grid .cell.problem").length === 23, null, 15000);
  const marked = await page.$$eval("#grid .cell.problem", (cs) => cs.map((c) => c.dataset.address).sort());
  const want = [];
  for (let i = 3; i <= 25; i++) want.push(`user${String(i).padStart(2, "0")}@patente.test`);
  assert(JSON.stringify(marked) === JSON.stringify(want), "the 23 dropped mailboxes are marked: " + marked.join(","));
  const title = await page.getAttribute('#grid .cell[data-address="user03@patente.test"]', "title");
  assert(title.includes("patente-only-2-of-25") && title.includes("dropped"), "the rule shows on hover: " + title);
  await page.click('#grid .cell[data-address="user03@patente.test"]');
  assert((await page.textContent("#grid-detail")).includes("patente-only-2-of-25"), "the rule shows on click");
  const ok = await page.$$eval("#grid .cell.mail", (cs) => cs.length);
  assert(ok === 5, "5 mailboxes got mail: " + ok);
  await page.fill("#grid-filter", "user1");
  await waitFor(() => document.querySelectorAll("#grid .cell").length === 10);
});
await page.fill("#grid-filter", "");

// A message sent while the page is open appears without a reload.
const payload = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) % 256));
await page.click("#tab-messages");
await page.waitForSelector("#messages tbody tr");
await step("02-live-message-appears", async () => {
  swaksData("anna@kanzlei.test", mime("Vertrag Entwurf", "Bitte pruefen: Zitronenfalter im Anhang.",
    '<p>Der <b id="bold">Vertrag</b> liegt bei.</p>', [{ name: "vertrag.bin", type: "application/octet-stream", bytes: payload }]));
  await page.waitForSelector("#messages a.subject:text('Vertrag Entwurf')", { timeout: 10000 });
  const first = await page.textContent("#messages tbody tr:first-child a.subject");
  assert(first === "Vertrag Entwurf", "newest first: " + first);
});

await step("03-message-html", async () => {
  await page.click("#messages a.subject:text('Vertrag Entwurf')");
  await page.waitForSelector("#msg-subject:text('Vertrag Entwurf')");
  const frame = page.frameLocator("#html-frame");
  await frame.locator("#bold").waitFor();
  assert((await frame.locator("#bold").textContent()) === "Vertrag", "HTML rendered");
  // At 1280x800 with a message open, every row's subject starts inside the
  // list pane with room to be read (not pushed under the message pane).
  const boxes = await page.evaluate(() => {
    const pane = document.querySelector(".list-pane").getBoundingClientRect();
    return [...document.querySelectorAll("#messages tbody tr[data-uid]")].map((tr) => {
      const s = tr.children[3].getBoundingClientRect();
      return { left: s.left, right: s.right, pane: [pane.left, pane.right] };
    });
  });
  for (const b of boxes) {
    assert(b.left >= b.pane[0] && b.right <= b.pane[1] + 1 && b.right - b.left >= 120,
      "the subject column is inside the list pane, 120 px or wider: " + JSON.stringify(b));
  }
});
await step("04-message-text", async () => {
  await page.click(".msg-tabs button[data-tab=text]");
  assert((await page.textContent("#text-body")).includes("Zitronenfalter"), "text part");
});
await step("05-message-headers", async () => {
  await page.click(".msg-tabs button[data-tab=headers]");
  const h = await page.textContent("table.headers");
  assert(h.includes("Subject") && h.includes("Vertrag Entwurf") && h.includes("ui_test.mjs"), "headers");
});
await step("06-message-source", async () => {
  await page.click(".msg-tabs button[data-tab=source]");
  await waitFor(() => document.querySelector("#source").textContent.includes("Return-Path"));
  assert((await page.textContent("#source")).includes("Content-Type: multipart/mixed"), "source shown");
});
await step("07-message-attachment-download", async () => {
  await page.click(".msg-tabs button[data-tab=attachments]");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("ul.attachments a")]);
  assert(download.suggestedFilename() === "vertrag.bin", "file name: " + download.suggestedFilename());
  const saved = join(work, "downloaded.bin");
  await download.saveAs(saved);
  assert(Buffer.compare(readFileSync(saved), payload) === 0, "the attachment's bytes");
});
await step("08-message-mime-and-journal", async () => {
  await page.click(".msg-tabs button[data-tab=mime]");
  assert((await page.textContent("ul.mime")).includes("multipart/mixed"), "MIME tree");
  await page.click(".msg-tabs button[data-tab=history]");
  await page.waitForSelector(".msg-body tr.k-delivered");
});

await step("09-search-by-body", async () => {
  await page.selectOption("#search-field", "text");
  await page.fill("#q", "zitronenfalter");
  await page.press("#q", "Enter");
  await waitFor(() => document.querySelectorAll("#messages tbody tr").length === 1);
  assert((await page.textContent("#messages tbody tr a.subject")) === "Vertrag Entwurf", "found by body text");
  await page.fill("#q", "");
  await page.selectOption("#search-field", "q");
  await page.press("#q", "Enter");
});

// Toggling a fault in the UI changes what the next swaks gets.
await step("10-fault-added-and-toggled", async () => {
  await page.click("#tab-faults");
  await page.waitForSelector("#faults tr[data-rule='patente-only-2-of-25']");
  // A bad rule: the server's validation error shows inline.
  await page.fill("#fault-text", 'name = "bad"\nstage = "rcpt"\naction = "explode"');
  await page.click("#add-fault button[type=submit]");
  await page.waitForSelector("#fault-error:not([hidden])");
  assert((await page.textContent("#fault-error")).includes("explode"), "validation error inline");
  await page.fill("#fault-text", 'name = "no-bernd"\nstage = "rcpt"\naction = "reject"\nmailbox = "bernd"\ncode = 550\nenhanced = "5.7.1"\ntext = "bernd is on leave"');
  await page.click("#add-fault button[type=submit]");
  await page.waitForSelector("#faults tr[data-rule='no-bernd']");
  let t = swaksTranscript(["--to", "bernd@kanzlei.test"]);
  assert(t.includes("550 5.7.1 bernd is on leave"), "the fault's reply:\n" + t);
  await waitFor(() => document.querySelector("#faults tr[data-rule='no-bernd'] .fired").textContent === "1");
  await page.uncheck("#faults tr[data-rule='no-bernd'] input[type=checkbox]");
  await page.waitForSelector("#faults tr.off[data-rule='no-bernd']");
  t = swaksTranscript(["--to", "bernd@kanzlei.test"]);
  assert(!t.includes("bernd is on leave") && t.includes("250"), "disabled: delivered\n" + t);
  await page.check("#faults tr[data-rule='no-bernd'] input[type=checkbox]");
  await page.waitForSelector("#faults tr[data-rule='no-bernd']:not(.off)");
  t = swaksTranscript(["--to", "bernd@kanzlei.test"]);
  assert(t.includes("bernd is on leave"), "enabled again: refused\n" + t);
});

await step("11-journal-live", async () => {
  await page.click("#tab-journal");
  await page.waitForSelector("#journal tbody tr");
  swaks(["--to", "clara@kanzlei.test", "--header", "Subject: fuer den Journal-Test"]);
  await waitFor(() => [...document.querySelectorAll("#journal tbody tr")].some((r) => r.textContent.includes("delivered to clara@kanzlei.test")), null, 10000);
  await page.fill("#j-rule", "no-bernd");
  await page.press("#j-rule", "Enter");
  await waitFor(() => { const rs = document.querySelectorAll("#journal tbody tr"); return rs.length === 2 && [...rs].every((r) => r.textContent.includes("no-bernd")); });
});

await step("11b-journal-older-entries", async () => {
  // More entries than one page: 250 deliveries over one SMTP connection (Python's smtplib).
  await page.uncheck("#j-follow");
  execFileSync("python3", ["-c", `
import smtplib
with smtplib.SMTP("127.0.0.1", ${SMTP_PORT}) as s:
    for i in range(250):
        s.sendmail("bulk@extern.test", ["clara@kanzlei.test"], f"Subject: bulk {i}\\r\\n\\r\\nx\\r\\n")
`]);
  await page.fill("#j-rule", "");
  await page.press("#j-rule", "Enter");
  const total = (await api("/journal")).entries.length;
  assert(total > 250, "the journal holds the deliveries: " + total);
  await waitFor(() => document.querySelectorAll("#journal tbody tr").length === 200);
  assert((await page.textContent("#journal-info")).includes("200 entries shown"), "the first page says what it shows");
  for (let i = 0; i < 20 && !(await page.isDisabled("#journal-older")); i++) {
    const before = await page.$$eval("#journal tbody tr", (rs) => rs.length);
    await page.click("#journal-older");
    await waitFor((n) => document.querySelectorAll("#journal tbody tr").length > n || document.querySelector("#journal-older").disabled, before);
  }
  const seqs = await page.$$eval("#journal tbody tr", (rs) => rs.map((r) => Number(r.dataset.seq)));
  assert(seqs.length === total, `every entry loaded page by page: ${seqs.length} of ${total}`);
  assert(seqs.every((s, i) => i === 0 || s < seqs[i - 1]), "newest first, none twice");
  assert((await page.textContent("#journal-info")).includes("no older ones"), "the end is announced");
  await page.check("#j-follow");
});

// Hostile HTML: no script runs, nothing remote loads (until asked).
await step("12-hostile-html", async () => {
  const hostile = `<html><body><p id="hello">hostile</p>
<script>document.title = "pwned"; fetch("${trapUrl}/script"); parent.postMessage("pwned", "*");</script>
<img src="${trapUrl}/img.png" onerror="fetch('${trapUrl}/onerror')">
<img src="x" onerror="parent.document.body.dataset.pwned = '1'">
<div style="background: url(${trapUrl}/bg.png)">bg</div>
<link rel="stylesheet" href="${trapUrl}/style.css">
<iframe src="${trapUrl}/frame"></iframe>
<form action="${trapUrl}/form"><input name="a"></form>
</body></html>`;
  await page.click("#tab-messages");
  swaksData("clara@kanzlei.test", mime("hostile", "hostile text", hostile));
  await page.waitForSelector("#messages a.subject:text('hostile')", { timeout: 10000 });
  await page.click("#messages a.subject:text('hostile')");
  await page.frameLocator("#html-frame").locator("#hello").waitFor();
  await page.waitForTimeout(1000);
  assert(remoteHits.length === 0, "nothing remote loaded: " + remoteHits.join(","));
  assert(await page.evaluate(() => document.body.dataset.pwned === undefined), "no script touched the page");
  assert(consoleErrors.length === 0, "no page errors: " + consoleErrors.join("; "));
  assert((await page.title()).startsWith("mailrig"), "the page's title is untouched");
  // The reader may ask for remote content: images load, scripts still do not.
  await page.click("#load-remote");
  const deadline = Date.now() + 5000;
  while (!remoteHits.includes("/img.png") && Date.now() < deadline) await page.waitForTimeout(100);
  assert(remoteHits.includes("/img.png"), "remote image after the click: " + remoteHits.join(","));
  assert(!remoteHits.includes("/script") && !remoteHits.includes("/onerror"), "still no script: " + remoteHits.join(","));
});

await step("13-delete-message", async () => {
  await page.click("#delete-message");
  await waitFor(() => ![...document.querySelectorAll("#messages a.subject")].some((a) => a.textContent === "hostile"));
  assert(dialogs.some((d) => d.includes("Delete message")), "asked first");
});

await context.close();
trap.close();
console.log(`ui tests passed: ${results.length} steps`);
