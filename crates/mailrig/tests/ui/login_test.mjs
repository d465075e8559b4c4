// Signing in to a `mailrig serve --http-token` in a real browser: headless
// Debian chromium driven by playwright-core, against the server that
// crates/mailrig/tests/ui_browser.rs started with a token. Checks the 401
// paths (the page without a token shows the login form, a wrong token says
// so, the API answers 401 JSON), signing in with the form, the live event
// stream and the messages list working with the cookie, signing out, and
// `/?token=` as a link. Screenshots land in SCREENSHOT_DIR.
//
// argv: BASE_URL SMTP_PORT SCREENSHOT_DIR TOKEN
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [BASE, SMTP_PORT, SHOTS, TOKEN] = process.argv.slice(2);
mkdirSync(SHOTS, { recursive: true });
const work = mkdtempSync(join(tmpdir(), "mailrig-login-"));

function assert(cond, msg) {
  if (!cond) throw new Error("assertion failed: " + msg);
}

const context = await chromium.launchPersistentContext(join(work, "profile"), {
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  viewport: { width: 1280, height: 800 },
});
const page = await context.newPage();
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
const shot = (name) => page.screenshot({ path: join(SHOTS, name + ".png") });
let steps = 0;
async function step(name, fn) {
  await fn();
  await shot(name);
  steps++;
  console.log("ok:", name);
}
async function waitFor(fn, arg, timeout = 10000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await page.evaluate(fn, arg)) return;
    if (Date.now() > deadline) throw new Error("timed out waiting for " + fn.toString());
    await page.waitForTimeout(50);
  }
}

try {
  await step("login-01-page-without-token", async () => {
    const r = await page.goto(BASE + "/");
    assert(r.status() === 401, "the page without a token is a 401: " + r.status());
    await page.waitForSelector("form[action='/login'] input#token");
    assert(!(await page.$("#grid")), "no world grid before signing in");
    // The API stays JSON for programs.
    const res = await fetch(BASE + "/api/v1/health");
    const api = [res.status, (await res.json()).error];
    assert(api[0] === 401 && api[1].includes("token"), "the API is a 401 with a JSON error: " + api);
  });

  await step("login-02-wrong-token", async () => {
    await page.fill("#token", TOKEN + "-wrong");
    await Promise.all([page.waitForNavigation(), page.click("form button[type=submit]")]);
    assert((await page.textContent("p.error")).includes("wrong"), "a wrong token says so");
    assert(!(await page.$("#grid")), "still no grid");
  });

  await step("login-03-signed-in-live", async () => {
    await page.fill("#token", TOKEN);
    await Promise.all([page.waitForNavigation(), page.click("form button[type=submit]")]);
    assert(new URL(page.url()).pathname === "/", "back on the page: " + page.url());
    await page.waitForSelector("#grid .cell");
    // The event stream carries the cookie: the page is live.
    await page.waitForSelector("#live.on");
    const cookies = await context.cookies();
    const c = cookies.find((c) => c.name === "mailrig_token");
    assert(c && c.httpOnly && c.sameSite === "Strict", "an HttpOnly, SameSite=Strict cookie: " + JSON.stringify(cookies));
    // A delivery shows up without a reload, through the stream.
    execFileSync("swaks", ["--server", "127.0.0.1", "--port", SMTP_PORT, "--from", "tester@extern.test", "--to", "anna@kanzlei.test",
      "--header", "Subject: signed in and live", "--hide-all"]);
    await page.click("#tab-messages");
    await waitFor(() => [...document.querySelectorAll("#messages tbody tr")].some((r) => r.textContent.includes("signed in and live")));
  });

  await step("login-04-signed-out", async () => {
    // The page's own "Sign out" button, visible in the header.
    const button = await page.waitForSelector("header.top #signout", { state: "visible" });
    assert((await button.textContent()).includes("Sign out"), "the button says Sign out");
    await Promise.all([page.waitForNavigation(), button.click()]);
    assert(new URL(page.url()).pathname === "/login", "signed out onto the form: " + page.url());
    await page.waitForSelector("form[action='/login'] input#token");
    const left = (await context.cookies()).filter((c) => c.name === "mailrig_token");
    assert(left.length === 0, "the cookie is gone: " + JSON.stringify(left));
    const r = await page.goto(BASE + "/");
    assert(r.status() === 401, "after signing out the page is a 401 again: " + r.status());
    await page.waitForSelector("form[action='/login']");
  });

  await step("login-05-token-link", async () => {
    const wrong = await page.goto(BASE + "/?token=nope");
    assert(wrong.status() === 401, "a wrong ?token= is a 401: " + wrong.status());
    await page.goto(BASE + "/?token=" + encodeURIComponent(TOKEN));
    assert(!page.url().includes("token="), "the token leaves the address bar: " + page.url());
    await page.waitForSelector("#grid .cell");
    await page.waitForSelector("#live.on");
  });

  assert(errors.length === 0, "no script errors: " + errors.join("; "));
  console.log(`login tests passed: ${steps} steps`);
} catch (e) {
  console.error("login test failed:", e);
  process.exitCode = 1;
} finally {
  await context.close().catch(() => {});
}
