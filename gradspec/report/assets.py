"""The HTML report's inline stylesheet and script: no fonts, images or code from anywhere else."""

from __future__ import annotations

__all__ = ["CSP", "SCRIPT", "STYLE"]

# The page may load nothing at all: only its own inline style and script, and data: images.
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

STYLE = """
:root {
  --fg: #1f2937; --muted: #6b7280; --bg: #ffffff; --panel: #f9fafb; --line: #e5e7eb; --accent: #2563eb;
  --pass: #059669; --fail: #dc2626; --convention: #d97706; --imprecise: #ca8a04; --skip: #9ca3af; --xfail: #7c3aed; --error: #9f1239;
}
@media (prefers-color-scheme: dark) {
  :root { --fg: #e5e7eb; --muted: #9ca3af; --bg: #111827; --panel: #1f2937; --line: #374151; --accent: #60a5fa; }
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       background: var(--bg); }
header, main, footer { max-width: 1200px; margin: 0 auto; padding: 0 20px; }
header { padding-top: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 14px; margin: 18px 0 6px; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
pre { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px;
      white-space: pre-wrap; word-break: break-word; margin: 6px 0; }
.meta, .muted, .caption { color: var(--muted); }
.caption { font-size: 13px; max-width: 860px; }
nav { display: flex; gap: 16px; flex-wrap: wrap; margin: 12px 0 0; font-size: 13px; }
.totals { display: flex; gap: 8px; flex-wrap: wrap; margin-top: 12px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600;
         color: #fff; background: var(--skip); white-space: nowrap; }
.badge.pass { background: var(--pass); } .badge.fail { background: var(--fail); }
.badge.convention { background: var(--convention); } .badge.imprecise { background: var(--imprecise); } .badge.skip { background: var(--skip); }
.badge.xfail { background: var(--xfail); } .badge.error { background: var(--error); }
.totals .badge { font-size: 13px; padding: 3px 12px; }
.status { font-weight: 700; }
.status.ok { color: var(--pass); } .status.bad { color: var(--fail); }
table { border-collapse: collapse; width: 100%; margin: 6px 0; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; background: var(--panel); white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.zero { color: var(--muted); }
td.hot { color: var(--fail); font-weight: 700; }
.wrap { overflow-x: auto; }
table.sortable th { cursor: pointer; user-select: none; position: sticky; top: 0; z-index: 1; }
table.sortable th::after { content: " \\2195"; color: var(--muted); font-weight: 400; }
table.sortable th[aria-sort="ascending"]::after { content: " \\2191"; color: var(--accent); }
table.sortable th[aria-sort="descending"]::after { content: " \\2193"; color: var(--accent); }
tr.check-row td.msg { max-width: 420px; overflow-wrap: anywhere; }
tr.check-row:hover td { background: var(--panel); }
.stack { display: flex; height: 8px; min-width: 120px; border-radius: 4px; overflow: hidden; background: var(--line); }
.stack span { display: block; height: 100%; }
.stack .pass { background: var(--pass); } .stack .fail { background: var(--fail); }
.stack .convention { background: var(--convention); } .stack .imprecise { background: var(--imprecise); } .stack .skip { background: var(--skip); }
.stack .xfail { background: var(--xfail); } .stack .error { background: var(--error); }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 16px; }
svg.chart { width: 100%; height: auto; background: var(--panel); border: 1px solid var(--line); border-radius: 6px; }
.wide-chart { max-width: 860px; }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .axis { stroke: var(--muted); stroke-width: 1; }
svg .marker { stroke: var(--muted); stroke-dasharray: 4 3; }
svg rect.over { stroke: #1f2937; stroke-width: 0.6; }
svg rect.worst { stroke: #2563eb; stroke-width: 2.5; }
svg text { fill: var(--fg); font-size: 10px; font-family: inherit; }
svg .chart-title { font-size: 12px; font-weight: 600; }
svg .axis-label, svg .marker-label { fill: var(--muted); font-size: 10.5px; }
.legend { list-style: none; padding: 0; margin: 8px 0; font-size: 12.5px; }
.legend li { margin: 2px 0; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 6px;
          vertical-align: -1px; }
details { border: 1px solid var(--line); border-radius: 6px; margin: 8px 0; background: var(--bg); }
details > summary { cursor: pointer; padding: 6px 10px; background: var(--panel); border-radius: 6px; }
details[open] > summary { border-bottom: 1px solid var(--line); border-radius: 6px 6px 0 0; }
details > .body { padding: 6px 12px 10px; }
.controls { display: flex; gap: 16px; align-items: center; flex-wrap: wrap; margin: 8px 0; }
.controls input[type="search"] { padding: 5px 8px; min-width: 280px; border: 1px solid var(--line);
                                 border-radius: 6px; background: var(--bg); color: var(--fg); }
table.matrix td.cell, table.matrix td.case { white-space: nowrap; }
table.matrix td.cell .detail { white-space: normal; overflow-wrap: anywhere; }
table.matrix tr.matrix-row:hover td { filter: brightness(0.97); }
.cell { --tone: var(--skip); }
.cell.pass { --tone: var(--pass); } .cell.fail { --tone: var(--fail); } .cell.convention { --tone: var(--convention); } .cell.imprecise { --tone: var(--imprecise); }
.cell.skip { --tone: var(--skip); } .cell.xfail { --tone: var(--xfail); } .cell.error { --tone: var(--error); }
td.cell { background: color-mix(in srgb, var(--tone) 14%, transparent); box-shadow: inset 3px 0 0 var(--tone);
          max-width: 340px; font-size: 13px; }
td.cell.none { background: none; box-shadow: none; color: var(--muted); text-align: center; }
.cell .sym { color: var(--tone); font-weight: 700; }
.cell .count { font-variant-numeric: tabular-nums; }
.cell .detail { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
.cell .others { color: var(--muted); font-size: 12px; }
.matrix-legend span.cell { display: inline-block; width: 22px; text-align: center; border-radius: 3px;
                           background: color-mix(in srgb, var(--tone) 14%, transparent); }
ul.errors li { font-family: ui-monospace, monospace; font-size: 12.5px; color: var(--error); }
footer { margin: 40px auto 24px; color: var(--muted); font-size: 12px; }
"""

SCRIPT = """
(function () {
  "use strict";
  var collator = new Intl.Collator(undefined, {numeric: true, sensitivity: "base"});

  function key(row, i, numeric) {
    var cell = row.cells[i];
    var v = cell.getAttribute("data-sort");
    if (v === null) { v = cell.textContent; }
    if (!numeric) { return v; }
    var n = parseFloat(v);
    return isNaN(n) ? -Infinity : n;
  }

  // A sortable table: click (or Enter on) a header to sort by it, again to reverse.
  function sortable(table) {
    var body = table.tBodies[0];
    var heads = table.tHead.rows[0].cells;
    function sortBy(i) {
      var th = heads[i];
      var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
      var numeric = th.getAttribute("data-type") === "number";
      for (var j = 0; j < heads.length; j++) { heads[j].setAttribute("aria-sort", "none"); }
      th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a, i, numeric), y = key(b, i, numeric);
        return dir * (numeric ? (x < y ? -1 : (x > y ? 1 : 0)) : collator.compare(x, y));
      });
      var frag = document.createDocumentFragment();
      rows.forEach(function (r) { frag.appendChild(r); });
      body.appendChild(frag);
    }
    Array.prototype.forEach.call(heads, function (th, i) {
      th.tabIndex = 0;
      th.setAttribute("aria-sort", "none");
      th.addEventListener("click", function () { sortBy(i); });
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(i); }
      });
    });
  }

  // Its filter: rows containing the text, optionally only those whose data-verdict is fail or error.
  function filterable(table, filter, only, shown) {
    if (!filter || !only || !shown) { return; }
    var body = table.tBodies[0];
    function apply() {
      var q = filter.value.toLowerCase(), n = 0;
      Array.prototype.forEach.call(body.rows, function (r) {
        var v = r.getAttribute("data-verdict");
        var keep = (!only.checked || v === "fail" || v === "error") &&
                   (!q || r.textContent.toLowerCase().indexOf(q) >= 0);
        r.hidden = !keep;
        if (keep) { n++; }
      });
      shown.textContent = String(n);
    }
    filter.addEventListener("input", apply);
    only.addEventListener("change", apply);
  }

  function setup(id, prefix) {
    var table = document.getElementById(id);
    if (!table) { return; }
    sortable(table);
    filterable(table, document.getElementById(prefix + "filter"), document.getElementById(prefix + "only-failing"),
               document.getElementById(prefix + "shown"));
    table.setAttribute("data-sortable", "ready");
  }

  setup("checks-table", "");
  setup("matrix-table", "matrix-");
})();
"""
