// The world grid at 10,000 mailboxes in a real browser (headless Debian
// chromium, playwright-core), against the `mailrig serve` that
// crates/mailrig/tests/ui_browser.rs started with four domains of 2,500
// mailboxes and a rule that drops mail for u0042 of every domain. Checks that
// the grid renders grouped per domain (each drawing at most 2,000 cells and
// saying how many more), that the filter narrows to the right cells, that a
// domain collapses and opens again, and that "only problems" shows the
// mailboxes the rule hit. Screenshots land in SCREENSHOT_DIR.
//
// argv: BASE_URL SMTP_PORT SCREENSHOT_DIR
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [BASE, SMTP_PORT, SHOTS] = process.argv.slice(2);
mkdirSync(SHOTS, { recursive: true });
const work = mkdtempSync(join(tmpdir(), "mailrig-grid10k-"));
const DOMAINS = ["d1.test", "d2.test", "d3.test", "d4.test"];

function assert(cond, msg) {
  if (!cond) throw new Error("assertion failed: " + msg);
}
function swaks(to, subject) {
  execFileSync("swaks", ["--server", "127.0.0.1", "--port", SMTP_PORT, "--from", "tester@extern.test", "--to", to,
    "--header", "Subject: " + subject, "--hide-all"]);
}

// Mail for three mailboxes of d2.test, and for u0042 of every domain (dropped by the rule).
for (const n of ["0001", "1234", "2500"]) swaks(`u${n}@d2.test`, "grid " + n);
for (const d of DOMAINS) swaks(`u0042@${d}`, "dropped");

const context = await chromium.launchPersistentContext(join(work, "profile"), {
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  viewport: { width: 1280, height: 800 },
});
const page = context.pages()[0] || (await context.newPage());
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
async function waitFor(fn, arg, timeout = 15000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await page.evaluate(fn, arg)) return;
    if (Date.now() > deadline) throw new Error("timed out waiting for " + fn.toString() + " " + JSON.stringify(arg));
    await page.waitForTimeout(50);
  }
}
const cells = () => page.$$eval("#grid .cell", (cs) => cs.map((c) => c.dataset.address));
let steps = 0;
async function step(name, fn) {
  await fn();
  await page.screenshot({ path: join(SHOTS, name + ".png") });
  steps++;
  console.log("ok:", name);
}

try {
  await step("grid10k-01-rendered", async () => {
    const t0 = Date.now();
    await page.goto(BASE + "/");
    await page.waitForSelector("#grid .cell");
    console.log(`10,000-mailbox grid drawn ${Date.now() - t0} ms after page.goto`);
    const summary = await page.textContent("#grid-summary");
    assert(summary.includes("10000 mailboxes") && summary.includes("4 with problems"), "the summary counts all: " + summary);
    const heads = await page.$$eval("#grid .domain-head", (hs) => hs.map((h) => h.textContent));
    assert(heads.length === 4 && DOMAINS.every((d, i) => heads[i].includes(d) && heads[i].includes("2500 mailboxes")),
      "one group per domain: " + heads.join(" | "));
    assert(heads[1].includes("3 messages"), "d2.test counts its messages: " + heads[1]);
    const drawn = (await cells()).length;
    assert(drawn === 4 * 2000, "at most 2000 cells drawn per domain: " + drawn);
    const more = await page.$$eval("#grid .more", (ms) => ms.map((m) => m.textContent));
    assert(more.length === 4 && more.every((m) => m.includes("500 more")), "the rest is announced: " + more.join(" | "));
  });

  await step("grid10k-02-filtered", async () => {
    await page.fill("#grid-filter", "u2500");
    await waitFor(() => document.querySelectorAll("#grid .cell").length === 4);
    const got = (await cells()).sort();
    assert(JSON.stringify(got) === JSON.stringify(DOMAINS.map((d) => `u2500@${d}`)), "the filter finds cells beyond the first 2000: " + got);
    const mail = await page.$eval('#grid .cell[data-address="u2500@d2.test"]', (c) => [c.dataset.state, c.textContent]);
    assert(mail[0] === "mail" && mail[1].includes("1"), "u2500@d2.test has its message: " + mail);
    await page.fill("#grid-filter", "d3.test");
    await waitFor(() => document.querySelectorAll("#grid .domain").length === 1);
    const head = await page.textContent("#grid .domain-head");
    assert(head.includes("d3.test"), "a domain name filters to that domain: " + head);
    await page.fill("#grid-filter", "");
    await waitFor(() => document.querySelectorAll("#grid .domain").length === 4);
  });

  await step("grid10k-03-collapsed", async () => {
    const head = 'section#view-world .domain[data-domain="d1.test"] .domain-head';
    await page.click(head);
    await waitFor(() => !document.querySelector('.domain[data-domain="d1.test"] .cell'));
    assert((await page.getAttribute(head, "aria-expanded")) === "false", "the head says it is collapsed");
    assert((await cells()).length === 3 * 2000, "the other domains stay drawn");
    // Keyboard: the head is a button; Enter opens it again.
    await page.focus(head);
    await page.keyboard.press("Enter");
    await waitFor(() => document.querySelectorAll('.domain[data-domain="d1.test"] .cell').length === 2000);
  });

  await step("grid10k-04-only-problems", async () => {
    await page.check("#grid-problems");
    await waitFor(() => document.querySelectorAll("#grid .cell").length === 4);
    const got = (await cells()).sort();
    assert(JSON.stringify(got) === JSON.stringify(DOMAINS.map((d) => `u0042@${d}`)), "the dropped mailboxes: " + got);
    const title = await page.getAttribute('#grid .cell[data-address="u0042@d4.test"]', "title");
    assert(title.includes("drop-0042") && title.includes("dropped"), "the rule on hover: " + title);
  });

  assert(errors.length === 0, "no script errors: " + errors.join("; "));
  console.log(`grid10k tests passed: ${steps} steps`);
} catch (e) {
  console.error("grid10k test failed:", e);
  process.exitCode = 1;
} finally {
  await context.close().catch(() => {});
}
