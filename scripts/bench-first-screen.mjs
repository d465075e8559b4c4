// How soon the web page is usable in headless chromium: for RUNS fresh browser
// profiles each, the time from page.goto to the world grid drawn (first
// `#grid .cell`) and the live stream connected (`#live.on`), and, opening
// `/#/messages` directly, to the message list's first page drawn (a row with
// `data-uid`). Printed per run and as median and max, in milliseconds.
//
//   node scripts/bench-first-screen.mjs BASE_URL [RUNS]
//
// Uses playwright-core from crates/mailrig/tests/ui (`npm ci` there) and
// /usr/bin/chromium, started as the browser tests start it. Used by
// scripts/bench-search.sh with 100,000 messages stored.
import { createRequire } from "node:module";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const require = createRequire(new URL("../crates/mailrig/tests/ui/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const [BASE, RUNS = "5"] = process.argv.slice(2);
if (!BASE) {
  console.error("usage: node scripts/bench-first-screen.mjs BASE_URL [RUNS]");
  process.exit(2);
}

async function timed(path, selectors) {
  const dir = mkdtempSync(join(tmpdir(), "mailrig-first-screen-"));
  const context = await chromium.launchPersistentContext(join(dir, "profile"), {
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    viewport: { width: 1280, height: 800 },
  });
  try {
    const page = context.pages()[0] || (await context.newPage());
    const t0 = performance.now();
    await page.goto(BASE + path);
    const out = [];
    for (const s of selectors) {
      await page.waitForSelector(s, { timeout: 30000 });
      out.push(performance.now() - t0);
    }
    return out;
  } finally {
    await context.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const grid = [], live = [], list = [];
for (let i = 0; i < Number(RUNS); i++) {
  const [g, l] = await timed("/", ["#grid .cell", "#live.on"]);
  const [m] = await timed("/#/messages", ["#messages tbody tr[data-uid]"]);
  grid.push(g); live.push(l); list.push(m);
  console.log(`run ${i + 1}: grid ${g.toFixed(0)} ms, live ${l.toFixed(0)} ms, message list ${m.toFixed(0)} ms`);
}
const stat = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return `median ${s[Math.floor(s.length / 2)].toFixed(0)} ms, max ${s[s.length - 1].toFixed(0)} ms`;
};
console.log(`first screen over ${RUNS} fresh profiles: grid drawn ${stat(grid)}; live ${stat(live)}; message list ${stat(list)}`);
