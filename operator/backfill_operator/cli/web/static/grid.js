// The partitions grid of kubectl backfill ui: one canvas, one box (or pixel) per partition.
//
// The server sends a grid document (cli/web/data.py, grid_document): per row (the roll-up,
// then one row per step) compact index sets in positions ("0-41,57"). They are decoded into
// one Uint8Array of state codes per row with TypedArray.fill over each interval, then drawn
// into an ImageData and put on the canvas in one call: O(partitions + pixels), no DOM node
// per partition. Every text drawn on the canvas is drawn with fillText (never parsed as HTML).
"use strict";

(function () {
  const STATES = ["missing", "succeeded", "failed", "running", "queued", "waiting",
    "upstream_failed", "skipped", "marked"];
  const COLORS = {
    missing: [226, 229, 233], succeeded: [46, 157, 77], failed: [215, 58, 58],
    running: [47, 127, 216], queued: [138, 99, 210], waiting: [224, 180, 60],
    upstream_failed: [232, 131, 58], skipped: [154, 165, 177], marked: [127, 191, 143],
  };
  const NONE = [255, 255, 255];
  const LABEL_WIDTH = 150;      // px left of the cells, for the key a line starts at
  const TITLE_HEIGHT = 20;      // px above a row's block, for the step name
  const BLOCK_GAP = 10;         // px between blocks
  const MAX_CELL = 14;          // px, the largest box
  const TARGET_HEIGHT = 640;    // px the whole grid aims at

  function decode(text, into, code) {
    if (!text) return;
    for (const part of text.split(",")) {
      const dash = part.indexOf("-", 1);
      const lo = parseInt(dash < 0 ? part : part.slice(0, dash), 10);
      const hi = dash < 0 ? lo : parseInt(part.slice(dash + 1), 10);
      into.fill(code, lo, hi + 1);
    }
  }

  function encode(flags) {
    const out = [];
    let start = -1;
    for (let i = 0; i <= flags.length; i++) {
      const on = i < flags.length && flags[i] !== 0;
      if (on && start < 0) start = i;
      if (!on && start >= 0) {
        out.push(start === i - 1 ? String(start) : start + "-" + (i - 1));
        start = -1;
      }
    }
    return out.join(",");
  }

  // Layout: cell size and columns for `count` partitions in `rows` blocks, `width` px wide.
  function layout(count, rows, width) {
    const room = Math.max(100, width - LABEL_WIDTH);
    let cell = MAX_CELL;
    while (cell > 1) {
      const columns = Math.floor(room / cell);
      const lines = Math.ceil(count / columns) * rows;
      if (lines * cell <= TARGET_HEIGHT * Math.max(1, rows / 2) || cell === 1) break;
      cell -= 1;
    }
    const columns = Math.max(1, Math.floor(room / cell));
    return { cell: cell, columns: columns, gap: cell >= 6 ? 1 : 0 };
  }

  class Grid {
    // container: the element to draw in; options: {src, count, selectable, onSelect,
    // onHover, onPick}
    constructor(container, options) {
      this.container = container;
      this.options = options;
      this.doc = null;
      this.states = [];
      this.selected = null;
      this.anchor = null;
      this.drag = null;
      this.base = null;
      this.canvas = document.createElement("canvas");
      this.canvas.className = "grid-canvas";
      this.canvas.setAttribute("role", "img");
      this.status = document.createElement("p");
      this.status.className = "dim small grid-note";
      this.tooltip = document.createElement("div");
      this.tooltip.className = "tooltip";
      this.tooltip.hidden = true;
      container.textContent = "";
      container.append(this.status, this.canvas, this.tooltip);
      this.geometry = layout(options.count || 1, options.rows || 1, container.clientWidth || 1000);
      this.requestColumns = this.geometry.columns;
      this.bind();
    }

    url() {
      const sep = this.options.src.indexOf("?") < 0 ? "?" : "&";
      return this.options.src + sep + "columns=" + this.requestColumns;
    }

    async load() {
      const started = performance.now();
      const response = await fetch(this.url(), { headers: { Accept: "application/json" } });
      const doc = await response.json();
      if (!response.ok) throw new Error(doc.error || response.statusText);
      const fetched = performance.now();
      this.apply(doc);
      const drawn = performance.now();
      this.timing = { fetch: fetched - started, draw: drawn - fetched, total: drawn - started };
      this.container.dataset.states = JSON.stringify(this.counts());
      this.container.dataset.drawnAt = String(Date.now());
      this.container.dataset.count = String(doc.count);
      this.container.dispatchEvent(new CustomEvent("grid:drawn", { detail: this.timing }));
      return doc;
    }

    width() {
      return this.container.clientWidth || 1000;
    }

    apply(doc) {
      const rows = Math.max(1, doc.rows.length);
      const wanted = layout(doc.count || 1, rows, this.width());
      const room = Math.max(100, this.width() - LABEL_WIDTH);
      // The labels are the server's for doc.columns: draw with those columns, and ask again
      // with the columns this count wants (once) when they differ.
      const cell = Math.max(1, Math.min(MAX_CELL, Math.floor(room / Math.max(1, doc.columns))));
      this.geometry = { cell: cell, columns: Math.max(1, doc.columns), gap: cell >= 6 ? 1 : 0 };
      this.options.count = doc.count;
      this.options.rows = rows;
      if (doc.count > 0 && wanted.columns !== doc.columns && !this.relayout) {
        this.relayout = true;
        this.requestColumns = wanted.columns;
        setTimeout(() => this.load().catch(() => {}), 0);
      } else {
        this.relayout = false;
      }
      this.doc = doc;
      this.states = doc.rows.map((row) => {
        const codes = new Uint8Array(doc.count);
        STATES.forEach((state, code) => { if (code) decode(row.sets[state], codes, code); });
        return codes;
      });
      if (!this.selected || this.selected.length !== doc.count) {
        this.selected = new Uint8Array(doc.count);
      }
      const note = [];
      if (doc.count) note.push(doc.count.toLocaleString("en") + " partitions, " + doc.first + " … " + doc.last);
      if (doc.note) note.push(doc.note);
      this.status.textContent = note.join(" · ");
      this.draw();
    }

    blockHeight() {
      const lines = Math.ceil(this.doc.count / this.geometry.columns);
      return TITLE_HEIGHT + lines * this.geometry.cell;
    }

    draw() {
      const doc = this.doc;
      const g = this.geometry;
      if (!doc || !doc.count) {
        this.canvas.width = 0;
        this.canvas.height = 0;
        return;
      }
      const lines = Math.ceil(doc.count / g.columns);
      const blockHeight = this.blockHeight();
      const width = LABEL_WIDTH + g.columns * g.cell;
      const height = this.states.length * (blockHeight + BLOCK_GAP);
      this.canvas.width = width;
      this.canvas.height = height;
      const ctx = this.canvas.getContext("2d");
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(0, 0, width, height);
      const image = ctx.createImageData(g.columns * g.cell, lines * g.cell);
      const px = image.data;
      const rowWidth = g.columns * g.cell;
      const sel = this.selected;
      this.states.forEach((codes, b) => {
        px.fill(255);
        for (let p = 0; p < doc.count; p++) {
          const line = Math.floor(p / g.columns);
          const col = p - line * g.columns;
          let color = COLORS[STATES[codes[p]]];
          const picked = sel[p] !== 0;
          const x0 = col * g.cell;
          const y0 = line * g.cell;
          const size = g.cell - g.gap;
          for (let dy = 0; dy < size; dy++) {
            let o = ((y0 + dy) * rowWidth + x0) * 4;
            for (let dx = 0; dx < size; dx++, o += 4) {
              let c = color;
              if (picked) {
                const edge = size >= 4 && (dx === 0 || dy === 0 || dx === size - 1 || dy === size - 1);
                c = edge ? [20, 24, 30] : (size < 4 ? [color[0] * 0.45, color[1] * 0.45, color[2] * 0.45] : color);
              }
              px[o] = c[0]; px[o + 1] = c[1]; px[o + 2] = c[2]; px[o + 3] = 255;
            }
          }
        }
        const top = b * (blockHeight + BLOCK_GAP);
        ctx.putImageData(image, LABEL_WIDTH, top + TITLE_HEIGHT);
        ctx.fillStyle = "#1b1f24";
        ctx.font = "bold 12px sans-serif";
        const name = doc.rows[b].name;
        ctx.fillText(name ? "step " + name : (doc.rows.length > 1 ? "all steps" : "partitions"), 4, top + 14);
        this.drawLabels(ctx, top + TITLE_HEIGHT, lines);
      });
      this.canvas.setAttribute("aria-label", this.status.textContent);
    }

    drawLabels(ctx, top, lines) {
      const doc = this.doc;
      const g = this.geometry;
      let every = Math.max(1, Math.round(doc.labelEvery / g.columns));
      while (every * g.cell < 14) every *= 2;
      ctx.fillStyle = "#57606a";
      ctx.font = "11px sans-serif";
      for (let line = 0; line < lines; line += every) {
        const label = doc.labels[Math.floor(line * g.columns / doc.labelEvery)];
        if (label === undefined) continue;
        ctx.fillText(String(label).slice(0, 24), 4, top + line * g.cell + Math.min(11, Math.max(9, g.cell)));
      }
    }

    // (row, position) under a mouse event, or null.
    locate(event) {
      if (!this.doc || !this.doc.count) return null;
      const rect = this.canvas.getBoundingClientRect();
      const x = (event.clientX - rect.left) * (this.canvas.width / rect.width) - LABEL_WIDTH;
      const y = (event.clientY - rect.top) * (this.canvas.height / rect.height);
      const g = this.geometry;
      const blockHeight = this.blockHeight();
      const row = Math.floor(y / (blockHeight + BLOCK_GAP));
      const within = y - row * (blockHeight + BLOCK_GAP) - TITLE_HEIGHT;
      if (x < 0 || row < 0 || row >= this.states.length || within < 0) return null;
      const col = Math.floor(x / g.cell);
      const line = Math.floor(within / g.cell);
      if (col >= g.columns) return null;
      const position = line * g.columns + col;
      if (position >= this.doc.count) return null;
      return { row: row, position: position, step: this.doc.rows[row].name,
        state: STATES[this.states[row][position]] };
    }

    bind() {
      const c = this.canvas;
      c.addEventListener("mousemove", (e) => {
        const at = this.locate(e);
        if (this.drag !== null && at) {
          this.setRange(this.drag, at.position, this.base);
          this.moved = this.moved || at.position !== this.drag;
        }
        this.hover(at, e);
      });
      c.addEventListener("mouseleave", () => { this.tooltip.hidden = true; });
      c.addEventListener("mousedown", (e) => {
        const at = this.locate(e);
        if (!at || !this.options.selectable || e.button !== 0) return;
        e.preventDefault();
        this.moved = false;
        if (e.shiftKey && this.anchor !== null) {
          this.setRange(this.anchor, at.position, this.selected.slice());
          return;
        }
        this.drag = at.position;
        this.base = (e.ctrlKey || e.metaKey) ? this.selected.slice() : new Uint8Array(this.doc.count);
        if (e.ctrlKey || e.metaKey) {
          this.base[at.position] = this.selected[at.position] ? 0 : 1;
          this.selected = this.base.slice();
        } else {
          this.setRange(at.position, at.position, this.base);
        }
        this.anchor = at.position;
        this.draw();
        this.changed();
      });
      window.addEventListener("mouseup", (e) => {
        if (this.drag === null) return;
        const at = this.locate(e);
        this.drag = null;
        if (at && !this.moved && this.options.onPick) this.options.onPick(at);
      });
      c.addEventListener("click", (e) => {
        if (this.options.selectable) return;
        const at = this.locate(e);
        if (at && this.options.onPick) this.options.onPick(at);
      });
    }

    setRange(a, b, base) {
      const lo = Math.min(a, b);
      const hi = Math.max(a, b);
      const next = base.slice();
      next.fill(1, lo, hi + 1);
      this.selected = next;
      this.draw();
      this.changed();
    }

    hover(at, event) {
      const t = this.tooltip;
      if (!at) { t.hidden = true; return; }
      const g = this.geometry;
      const line = Math.floor(at.position / g.columns);
      const label = this.doc.labels[Math.floor(line * g.columns / this.doc.labelEvery)];
      t.textContent = "";
      const head = document.createElement("b");
      head.textContent = at.state.replace("_", " ");
      t.append(head, document.createTextNode(
        (at.step ? " · step " + at.step : "") + " · #" + at.position +
        (label !== undefined ? " (line from " + label + ")" : "")));
      const rect = this.container.getBoundingClientRect();
      t.style.left = (event.clientX - rect.left + 14) + "px";
      t.style.top = (event.clientY - rect.top + 14) + "px";
      t.hidden = false;
      if (this.options.onHover) this.options.onHover(at, t);
    }

    // Select every partition whose roll-up state is `state`.
    selectState(state) {
      const code = STATES.indexOf(state);
      const rollup = this.states[0];
      if (!rollup) return;
      const next = new Uint8Array(this.doc.count);
      for (let p = 0; p < next.length; p++) if (rollup[p] === code) next[p] = 1;
      this.selected = next;
      this.draw();
      this.changed();
    }

    selectPositions(text) {
      const next = new Uint8Array(this.doc.count);
      decode(text, next, 1);
      this.selected = next;
      this.draw();
      this.changed();
    }

    clear() {
      this.selected = new Uint8Array(this.doc ? this.doc.count : 0);
      this.anchor = null;
      this.draw();
      this.changed();
    }

    // Partitions per state of each row: [{state: n}], roll-up first (for people and tests).
    counts() {
      return this.states.map((codes) => {
        const n = new Array(STATES.length).fill(0);
        for (let p = 0; p < codes.length; p++) n[codes[p]]++;
        const out = {};
        STATES.forEach((state, code) => { if (n[code]) out[state] = n[code]; });
        return out;
      });
    }

    // Centre of the cell of `position` in `row`, in CSS pixels relative to the canvas.
    cellCentre(row, position) {
      const g = this.geometry;
      const line = Math.floor(position / g.columns);
      const col = position - line * g.columns;
      const top = row * (this.blockHeight() + BLOCK_GAP) + TITLE_HEIGHT;
      return { x: LABEL_WIDTH + col * g.cell + g.cell / 2, y: top + line * g.cell + g.cell / 2 };
    }

    selection() {
      return this.selected ? encode(this.selected) : "";
    }

    selectedCount() {
      let n = 0;
      if (this.selected) for (let p = 0; p < this.selected.length; p++) n += this.selected[p];
      return n;
    }

    changed() {
      if (this.options.onSelect) this.options.onSelect(this);
    }
  }

  window.BackfillGrid = { Grid: Grid, decode: decode, encode: encode, layout: layout };
})();
