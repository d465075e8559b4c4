// The training lab panel of mailrig's page: title, task, hints revealed, last check and score of
// the lab `mailrig serve --lab DIR` points at (GET /api/v1/lab), refreshed every 2 s. Without a
// lab the endpoint answers 404 and the panel stays hidden. Built with the DOM only (no innerHTML):
// every text comes from the lab's files and the check.
"use strict";

(function () {
  const panel = document.getElementById("lab-panel");
  if (!panel) return;

  function node(tag, cls, ...children) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    for (const c of children) {
      if (c === undefined || c === null) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function checkList(check) {
    const ul = node("ul", "lab-checks");
    for (const c of check.checks || []) {
      const mark = c.passed ? "PASS" : c.required ? "FAIL" : "info";
      const li = node("li", c.passed ? "pass" : c.required ? "fail" : "info",
        node("span", "lab-mark", mark), " ", c.name);
      if (c.summary) li.append(node("span", "dim", " — " + c.summary));
      if (!c.passed && c.required && c.problems && c.problems.length) {
        const p = node("ul", "lab-problems");
        for (const t of c.problems) p.append(node("li", null, t));
        li.append(p);
      }
      ul.append(li);
    }
    return ul;
  }

  function render(lab) {
    const s = lab.score || {};
    const status = lab.solved ? "SOLVED" : lab.running ? "running" : "stopped";
    const head = node("div", "lab-head",
      node("span", "lab-badge " + (lab.solved ? "ok" : lab.running ? "run" : "off"), status),
      node("h2", null, lab.title),
      node("span", "dim", `lab ${lab.lab} · ${lab.kind} · ${lab.level}`),
      node("span", "lab-score", `score ${s.score} of ${s.points}`,
        node("span", "dim", ` · ${s.hints_used} hint${s.hints_used === 1 ? "" : "s"} used (-${s.hint_cost})`)));
    const body = node("div", "lab-body", node("h3", null, "Task"), node("p", "lab-task", lab.task));
    const hints = (lab.hints && lab.hints.revealed) || [];
    const total = lab.hints ? lab.hints.total : 0;
    body.append(node("h3", null, `Hints (${hints.length} of ${total} revealed)`));
    if (hints.length) {
      const ol = node("ol", "lab-hints");
      for (const h of hints) ol.append(node("li", null, h));
      body.append(ol);
    } else {
      body.append(node("p", "dim", "none revealed: `mailrig lab hint`"));
    }
    const last = lab.last_check;
    if (last) {
      const when = new Date(last.at);
      body.append(node("h3", null, "Last check ",
        node("span", last.solved ? "ok" : "bad", last.solved ? "solved" : "not solved yet"),
        node("span", "dim", " at " + (isNaN(when) ? last.at : when.toLocaleTimeString()))));
      body.append(checkList(last));
    } else {
      body.append(node("h3", null, "Last check"), node("p", "dim", "no check yet: `mailrig lab check`"));
    }
    panel.replaceChildren(head, body);
    panel.hidden = false;
  }

  let last = "";
  async function refresh() {
    try {
      const r = await fetch("/api/v1/lab", { cache: "no-store" });
      if (r.status === 404) { panel.hidden = true; last = ""; return; }
      if (!r.ok) return;
      const text = await r.text();
      if (text !== last) { last = text; render(JSON.parse(text)); }
    } catch (e) {
      // The server went away (the lab stopped): keep what is shown.
    }
  }
  refresh();
  setInterval(refresh, 2000);
})();
