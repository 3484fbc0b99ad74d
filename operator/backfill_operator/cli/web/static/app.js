// Page behaviour of kubectl backfill ui: the grid and its selection, the partition panel,
// the Launch modal with its preview, live refresh, and the Backfill buttons.
//
// Every state-changing request is a POST with the page's CSRF token (X-CSRF-Token) and the
// browser's Origin header; the server refuses it otherwise. Text from the server is written
// with textContent, never parsed as HTML; the only HTML inserted is the server's own
// escaped summary fragment of a Backfill.
"use strict";

(function () {
  const token = document.querySelector('meta[name="csrf-token"]').content;

  function flash(message, kind) {
    const box = document.getElementById("flash");
    if (!box) return;
    box.textContent = message;
    box.className = "flash " + (kind || "info");
    box.hidden = !message;
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": token, Accept: "application/json" },
      body: JSON.stringify(body || {}),
    });
    let doc = {};
    try { doc = await response.json(); } catch (e) { doc = { error: response.statusText }; }
    if (!response.ok) throw new Error(doc.error || ("HTTP " + response.status));
    return doc;
  }

  async function getJSON(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    const doc = await response.json();
    if (!response.ok) throw new Error(doc.error || ("HTTP " + response.status));
    return doc;
  }

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  function every(ms, fn) {
    if (!ms) return;
    let busy = false;
    setInterval(async () => {
      if (busy || document.visibilityState !== "visible") return;
      busy = true;
      try { await fn(); } catch (e) { flash(e.message, "error"); } finally { busy = false; }
    }, ms);
  }

  // ------------------------------------------------------------------ the partition panel

  const details = new Map();

  async function partitionDetail(base, position) {
    if (!details.has(position)) details.set(position, getJSON(base + position));
    try { return await details.get(position); } catch (e) { details.delete(position); throw e; }
  }

  function showDetail(panel, doc, logBase) {
    panel.textContent = "";
    panel.hidden = false;
    const close = el("button", "×", "close");
    close.type = "button";
    close.addEventListener("click", () => { panel.hidden = true; });
    panel.append(close, el("h3", doc.key));
    const facts = el("dl", null, "facts");
    const add = (k, v) => { facts.append(el("dt", k), el("dd", v)); };
    add("State", doc.state.replace("_", " "));
    if (doc.start) add("Data interval", doc.start + " → " + doc.end);
    add("Index", doc.index);
    for (const s of doc.steps) add("Step " + s.name, s.state.replace("_", " "));
    panel.append(facts);
    if (doc.runs.length) {
      panel.append(el("h4", "Recorded by"));
      const list = el("ul");
      for (const r of doc.runs) list.append(el("li", r.backfill + ": " + r.state.replace("_", " ") + " (" + r.phase + ")"));
      panel.append(list);
    }
    panel.append(el("h4", doc.jobs.length ? "Jobs" : "No Job of it exists (never run, or deleted by the history limits)"));
    const log = el("pre", null, "log");
    log.hidden = true;
    for (const j of doc.jobs) {
      const row = el("div", null, "job-row");
      row.append(el("span", j.name, "mono"), el("span",
        " " + [j.run, j.step ? "step " + j.step : "", "attempt " + j.attempt, j.state].filter(Boolean).join(" · ")));
      if (j.message) row.append(el("div", j.message, "dim small"));
      const btn = el("button", "Log");
      btn.type = "button";
      btn.addEventListener("click", async () => {
        log.hidden = false;
        log.textContent = "loading…";
        const response = await fetch(logBase + encodeURIComponent(j.name));
        log.textContent = await response.text();
      });
      row.append(btn);
      panel.append(row);
    }
    panel.append(log);
  }

  // --------------------------------------------------------------------------- the grid

  function setupGrid(onSelect) {
    const box = document.getElementById("grid");
    if (!box || !window.BackfillGrid) return null;
    const panel = document.getElementById("detail");
    const partitionBase = box.dataset.partition;
    const grid = new window.BackfillGrid.Grid(box, {
      src: box.dataset.src,
      count: parseInt(box.dataset.count || "1", 10),
      rows: parseInt(box.dataset.rows || "1", 10),
      selectable: box.dataset.selectable === "1",
      onSelect: onSelect,
      onPick: async (at) => {
        if (!partitionBase || !panel) return;
        try { showDetail(panel, await partitionDetail(partitionBase, at.position), box.dataset.log); }
        catch (e) { flash(e.message, "error"); }
      },
      onHover: (at, tip) => {
        if (!partitionBase) return;
        clearTimeout(grid.hoverTimer);
        grid.hoverTimer = setTimeout(async () => {
          try {
            const doc = await partitionDetail(partitionBase, at.position);
            if (tip.hidden) return;
            tip.textContent = "";
            tip.append(el("b", doc.key), document.createTextNode(
              " · " + at.state.replace("_", " ") + (at.step ? " · step " + at.step : "") +
              (doc.start ? " · " + doc.start + " → " + doc.end : "")));
          } catch (e) { /* the tooltip keeps what it has */ }
        }, 120);
      },
    });
    box.grid = grid;  // for the browser tests and the benchmark: box.grid.counts(), cellCentre()
    grid.load().catch((e) => { flash(e.message, "error"); });
    every(parseInt(box.dataset.refresh || "0", 10), async () => { details.clear(); await grid.load(); });
    return grid;
  }

  // ---------------------------------------------------------------------- a job's page

  function setupJobPage() {
    const dialog = document.getElementById("launch");
    if (!dialog) return;
    const count = document.getElementById("selected-count");
    const open = document.getElementById("launch-open");
    const grid = setupGrid((g) => {
      const n = g.selectedCount();
      count.textContent = n ? n.toLocaleString("en") + " selected" : "none selected";
      open.disabled = n === 0;
    });
    if (!grid) return;
    const box = document.getElementById("grid");
    const base = box.dataset.src.replace(/grid\.json$/, "");
    // The header's counts follow the grid's roll-up row at every refresh.
    const header = document.getElementById("job-counts");
    box.addEventListener("grid:drawn", () => {
      const counts = grid.counts()[0] || {};
      header.textContent = "";
      for (const state of ["succeeded", "failed", "running", "queued", "waiting", "missing"]) {
        if (!counts[state]) continue;
        const item = el("span", null, "count");
        item.append(el("span", null, "swatch s-" + state),
          document.createTextNode(counts[state].toLocaleString("en") + " " + state));
        header.append(item);
      }
    });
    const runList = document.getElementById("job-backfills");
    every(parseInt(box.dataset.refresh || "0", 10), async () => {
      const response = await fetch(runList.dataset.src);
      if (response.ok) runList.innerHTML = await response.text();  // the server's escaped HTML
    });
    document.getElementById("toolbar").addEventListener("click", async (e) => {
      const what = e.target.dataset ? e.target.dataset.select : undefined;
      if (!what) return;
      if (what === "missing" || what === "failed") grid.selectState(what);
      else if (what === "clear") grid.clear();
      else if (what === "range") {
        const from = document.getElementById("range-from").value.trim();
        const to = document.getElementById("range-to").value.trim();
        try {
          const doc = await getJSON(base + "range.json?from=" + encodeURIComponent(from) + "&to=" + encodeURIComponent(to));
          grid.selectPositions(doc.positions);
        } catch (err) { flash(err.message, "error"); }
      }
    });

    const form = document.getElementById("launch-form");
    const previewBox = document.getElementById("preview");
    const go = document.getElementById("launch-go");
    let seq = 0;
    let pending = null;   // the preview in flight
    let runs = 0;         // partitions the last preview would run

    function body() {
      const data = new FormData(form);
      const steps = data.getAll("steps");
      return {
        positions: grid.selection(),
        concurrency: data.get("concurrency"),
        order: data.get("order"),
        reprocess: data.get("reprocess"),
        retries: data.get("retries"),
        retryBackoffSeconds: data.get("retryBackoffSeconds"),
        maxFailed: data.get("maxFailed"),
        name: data.get("name"),
        dryRun: data.get("dryRun") === "on",
        steps: steps.length ? steps : null,
        includeUpstream: data.get("includeUpstream") === "on",
        includeDownstream: data.get("includeDownstream") === "on",
      };
    }

    async function preview() {
      const mine = ++seq;
      // Keep the last preview in place (greyed) so the buttons do not move under the mouse.
      previewBox.classList.add("stale");
      if (!previewBox.firstChild) previewBox.append(el("p", "Previewing…", "dim"));
      let resolve;
      pending = new Promise((r) => { resolve = r; });
      try {
        const doc = await post(dialog.dataset.preview, body());
        if (mine !== seq) return;
        runs = doc.count;
        previewBox.textContent = "";
        const head = el("p", null, "preview-count");
        head.append(el("b", doc.count.toLocaleString("en")), document.createTextNode(
          " of " + doc.selected.toLocaleString("en") + " selected partitions run"));
        head.id = "preview-count";
        head.dataset.count = String(doc.count);
        previewBox.append(head);
        const facts = el("dl", null, "facts");
        const add = (k, v) => { facts.append(el("dt", k), el("dd", v)); };
        if (doc.count && doc.last.length) {
          add("First", doc.first.join(", "));
          add("Last", doc.last.join(", "));
        } else if (doc.count) {
          add("Partitions", doc.first.join(", "));
        }
        const skipped = doc.skipped;
        add("Skipped by reprocess", skipped.count + (skipped.keys.length ? " (" +
          skipped.keys.join(", ") + (skipped.count > skipped.keys.length ? ", …" : "") + ")" : ""));
        if (doc.steps) add("Steps", doc.steps.join(" → "));
        previewBox.append(facts);
        if (doc.note) previewBox.append(el("p", doc.note, "warn"));
        if (!doc.count) {
          previewBox.append(el("p", "Nothing to run: every selected partition has an outcome " +
            "(choose another Reprocess).", "warn"));
        }
      } catch (e) {
        if (mine !== seq) return;
        runs = 0;
        previewBox.textContent = "";
        previewBox.append(el("p", e.message, "error-message"));
      } finally {
        if (mine === seq) {
          previewBox.classList.remove("stale");
          go.disabled = runs === 0;
          resolve();
        }
      }
    }

    open.addEventListener("click", () => { go.disabled = true; dialog.showModal(); preview(); });
    form.addEventListener("change", preview);
    document.getElementById("launch-cancel").addEventListener("click", () => dialog.close());
    go.addEventListener("click", async () => {
      // An option changed as the button was pressed: launch what the new preview shows.
      if (pending) await pending;
      if (!runs) return;
      go.disabled = true;
      try {
        const doc = await post(dialog.dataset.launch, body());
        window.location.assign(doc.url);
      } catch (e) {
        previewBox.append(el("p", e.message, "error-message"));
        go.disabled = false;
      }
    });
  }

  // ----------------------------------------------------------------- a Backfill's page

  function setupBackfillPage() {
    const actions = document.getElementById("actions");
    const summary = document.getElementById("summary");
    if (!actions || !summary) return;
    setupGrid(null);

    function sync() {
      const s = summary.querySelector(".summary");
      if (!s) return;
      const set = (action, on) => {
        const b = actions.querySelector('[data-action="' + action + '"]');
        if (b) b.disabled = !on;
      };
      set("suspend", s.dataset.canSuspend === "true");
      set("resume", s.dataset.canResume === "true");
      set("retry", s.dataset.canRetry === "true");
    }

    async function refresh() {
      const response = await fetch(summary.dataset.src);
      if (response.status === 404) { flash("This Backfill no longer exists.", "error"); return; }
      if (!response.ok) throw new Error("HTTP " + response.status);
      // The server's own fragment, every value escaped by its templates.
      summary.innerHTML = await response.text();
      sync();
    }

    every(parseInt(summary.dataset.refresh || "0", 10), refresh);
    actions.addEventListener("click", async (e) => {
      const action = e.target.dataset ? e.target.dataset.action : undefined;
      if (!action) return;
      const question = e.target.dataset.confirm;
      if (question && !window.confirm(question)) { flash("Nothing done.", "info"); return; }
      e.target.disabled = true;
      try {
        const doc = await post(actions.dataset.base + "/" + action);
        if (action === "cancel" || action === "retry") { window.location.assign(doc.url); return; }
        flash(action === "suspend" ? "Suspended: nothing new is launched; running Jobs finish." : "Resumed.", "info");
        await refresh();
      } catch (err) {
        flash(err.message, "error");
        e.target.disabled = false;
      }
    });
  }

  setupJobPage();
  setupBackfillPage();
})();
