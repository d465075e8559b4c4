// The training lab panel of mailrig's page in a real browser: headless Debian chromium driven by
// playwright-core against the `mailrig serve --lab DIR` of a running greylisting-deadline lab that
// crates/mailrig/tests/lab_panel.rs started, with one hint revealed and one failed check. The
// script answers the lab with `mailrig lab answer` and `lab check` as a trainee would, and
// checks the panel follows without a reload. Screenshots land in SCREENSHOT_DIR.
//
// argv: BASE_URL MAILRIG_BIN LAB_DIR SCREENSHOT_DIR
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [BASE, BIN, LAB, SHOTS] = process.argv.slice(2);
mkdirSync(SHOTS, { recursive: true });
const work = mkdtempSync(join(tmpdir(), "mailrig-lab-ui-"));

function assert(cond, msg) {
  if (!cond) throw new Error("assertion failed: " + msg);
}
function lab(...args) {
  try {
    return execFileSync(BIN, ["lab", ...args, "--dir", LAB], { encoding: "utf8" });
  } catch (e) {
    return (e.stdout || "") + (e.stderr || ""); // `lab check` exits 1 while unsolved
  }
}

const context = await chromium.launchPersistentContext(join(work, "profile"), {
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  viewport: { width: 1280, height: 800 },
});
const page = context.pages()[0] || (await context.newPage());
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
// The page's CSP forbids page.waitForFunction's eval: poll with page.evaluate.
async function waitFor(fn, arg, timeout = 15000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await page.evaluate(fn, arg)) return;
    if (Date.now() > deadline) throw new Error("timed out waiting for " + fn.toString() + " " + JSON.stringify(arg));
    await page.waitForTimeout(100);
  }
}
const panelText = () => page.evaluate(() => document.getElementById("lab-panel").innerText);
let steps = 0;

try {
  await page.goto(BASE + "/");
  await waitFor(() => !document.getElementById("lab-panel").hidden);
  let text = await panelText();
  for (const want of [
    "The court's deadline notice arrived 40 minutes late",
    "mailrig lab answer --delayed --stage STAGE MAILBOX",
    "Hints (1 of 2 revealed)",
    "Probe every mailbox: what does the server answer",
    "score 135 of 150",
    "not solved yet",
    "FAIL",
    "no answer yet",
    "28 deferred",
  ]) assert(text.includes(want), `panel shows '${want}':\n${text}`);
  assert(!text.includes("Send one message with swaks"), "the unrevealed hint stays hidden:\n" + text);
  await page.screenshot({ path: join(SHOTS, "lab-panel-unsolved.png") });
  steps++;

  // A wrong answer, checked: the panel shows the judge's words, counted, without a reload.
  lab("answer", "--delayed", "--stage", "data", "bernd@kanzlei.test");
  lab("check");
  await waitFor(() => document.getElementById("lab-panel").innerText.includes("the mail is not put off at stage 'data'"));
  text = await panelText();
  assert(text.includes("of the 1 mailbox you named, 1 gets mail late; 27 more mailboxes get mail late"), text);
  steps++;

  // The right answer: SOLVED and the score kept.
  lab("answer", "--delayed", "--stage", "rcpt", "anna@kanzlei.test", "bernd@kanzlei.test", "clara@kanzlei.test", "user01..user25@patente.test");
  const out = lab("check");
  assert(out.includes("SOLVED"), out);
  await waitFor(() => document.querySelector("#lab-panel .lab-badge")?.textContent === "SOLVED");
  text = await panelText();
  assert(text.includes("score 135 of 150") && text.includes("PASS"), text);
  assert(!text.includes("FAIL"), text);
  await page.screenshot({ path: join(SHOTS, "lab-panel-solved.png") });
  steps++;

  // The rest of the page still works under the panel.
  await waitFor(() => document.querySelectorAll("#grid .domain").length >= 2);
  steps++;
  assert(errors.length === 0, "no script errors: " + errors.join("; "));
  console.log(`lab panel tests passed: ${steps} steps`);
} finally {
  await context.close();
}
