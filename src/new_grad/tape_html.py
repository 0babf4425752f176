"""The tape in a browser: a notebook table and a page that plays backpropagation step by step.

:func:`tape_html` turns an engine's operation list into one self-contained HTML page (no
server, no network): it steps forward through the ops, then backward — the op being
processed, the gradient it sends to each input, and the memory buffer's slots filling —
with play and step controls, the numbers of small arrays and the shapes and norms of large
ones. :func:`tape_table_html` is the static table behind ``Autograd._repr_html_`` (what a
Jupyter notebook shows for an engine).

The backward steps are computed here, by calling each op's own backward function in tape
order reversed, the way the engine's loop does, into a private buffer: making the page
changes nothing in the engine (build it before ``engine.backward()``, which consumes the
tape). Part of the engine layer: it imports nothing of new_grad but the engine's modules.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .autograd_engine import is_constant, no_grad
from .backends import is_array, to_numpy
from .tape_view import human_bytes, tape_rows

if TYPE_CHECKING:
    from .autograd_engine import Autograd

SMALL = 24  # arrays with at most this many numbers are shown in full; larger ones by shape and norm


# -- summaries of arrays ------------------------------------------------------------------------------


def _number(v: float, digits: int = 6) -> float | str:
    if math.isfinite(v):
        return float(f"{v:.{digits}g}")
    return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")


def summarize(x: Any, small: int = SMALL) -> dict[str, Any]:
    """Shape, norm, min and max of an array, and its numbers when it has at most ``small`` of them."""
    a = np.asarray(to_numpy(x))
    out: dict[str, Any] = {"shape": list(a.shape), "dtype": str(a.dtype)}
    if a.dtype.kind in "biuf" and a.size:
        f = a.astype(np.float64)
        out["norm"] = _number(float(np.sqrt(np.sum(f * f))))
        out["min"], out["max"] = _number(float(f.min())), _number(float(f.max()))
        if a.size <= small:
            four = np.vectorize(lambda v: _number(v, 4), otypes=[object])  # enough to follow by eye
            out["values"] = four(f).tolist() if f.ndim else _number(float(f), 4)
    return out


def _shape_text(shape: list[int]) -> str:
    return "(" + ",".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


# -- the trace ----------------------------------------------------------------------------------------


def _gets_gradient(engine: Autograd, x: Any, upd: Any) -> bool:
    return is_array(x) and (upd is not None or id(x) in engine.memory_buffer.memory) and not is_constant(x)


def tape_trace(engine: Autograd, names: Mapping[int, str] | None = None, small: int = SMALL) -> dict[str, Any]:
    """Everything the page shows: the ops, the buffer's slots, and one entry per forward and backward step."""
    names = dict(names or {})
    ops = list(engine.operation_list)
    producers = {id(op.output): i for i, op in enumerate(ops)}
    rows = tape_rows(engine, names)
    slots: list[dict[str, Any]] = []
    slot_of: dict[int, int] = {}

    def label(x: Any) -> str:
        k = id(x)
        if k in names:
            return names[k]
        if k in producers:
            return f"#{producers[k]}"
        return "const" if is_constant(x) else "leaf"

    def add_slot(x: Any, kind: str) -> int:
        if id(x) not in slot_of:
            slot_of[id(x)] = len(slots)
            slots.append({"label": label(x), "shape": _shape_text(list(x.shape)), "kind": kind,
                          "bytes": human_bytes(int(getattr(x, "nbytes", 0)))})
        return slot_of[id(x)]

    table = []
    for i, op in enumerate(ops):
        inputs = []
        for x, upd in zip(op.inputs, op.gradients_to_update):
            if not is_array(x):
                continue
            slot = None
            if _gets_gradient(engine, x, upd):
                kind = "intermediate" if id(x) in producers else ("parameter" if upd is not None or id(x) in names
                                                                  else "leaf")
                slot = add_slot(x, kind)
            inputs.append({"label": label(x), "shape": _shape_text(list(x.shape)), "slot": slot,
                           "from": producers.get(id(x)) if producers.get(id(x), i) < i else None})
        _, name, ins, shape, dtype, held = rows[i]
        table.append({"index": i, "op": op.name, "inputs_text": ins, "inputs": inputs, "shape": shape,
                      "dtype": dtype, "held": held})
    if ops and is_array(ops[-1].output):
        add_slot(ops[-1].output, "output")

    steps: list[dict[str, Any]] = [{"phase": "start"}]
    for i, op in enumerate(ops):
        steps.append({"phase": "forward", "op": i, "value": summarize(op.output, small)})
    if ops:
        steps += _backward_steps(engine, ops, slot_of, small)
    steps.append({"phase": "done"})
    return {"ops": table, "slots": slots, "steps": steps, "small": small,
            "consumed": bool(not ops and getattr(engine, "_consumed", False))}


def _backward_steps(engine: Autograd, ops: list[Any], slot_of: dict[int, int], small: int) -> list[dict[str, Any]]:
    """Run each op's backward, last to first, into a private buffer (the engine's own is left alone)."""
    out = ops[-1].output
    dtype = out.dtype if getattr(out, "dtype", np.dtype("O")).kind in "fc" else np.dtype(np.float64)
    seed = np.ones(np.shape(out), dtype=dtype)
    grads: dict[int, Any] = {}
    steps: list[dict[str, Any]] = []
    if id(out) in slot_of:
        grads[slot_of[id(out)]] = seed
        steps.append({"phase": "seed", "slot": slot_of[id(out)], "updates": {slot_of[id(out)]: summarize(seed, small)}})
    with no_grad():
        for i in range(len(ops) - 1, -1, -1):
            op = ops[i]
            g = grads.get(slot_of.get(id(op.output), -1))
            if g is None:
                steps.append({"phase": "backward", "op": i, "skipped": True, "sent": [], "updates": {}})
                continue
            if op.needs is not None:
                got = op.backward_operation(g, *op.inputs, op.output, op.needs)
            else:
                got = op.backward_operation(g, *op.inputs)
            if not isinstance(got, (tuple, list)):
                got = (got,)
            sent, updates = [], {}
            for j, (x, gx) in enumerate(zip(op.inputs, got)):
                s = slot_of.get(id(x)) if is_array(x) else None
                if gx is None or s is None:
                    continue
                gx = np.asarray(to_numpy(gx))
                if gx.shape != tuple(x.shape):
                    gx = np.broadcast_to(gx, x.shape)
                grads[s] = gx.copy() if s not in grads else grads[s] + gx
                sent.append({"input": j, "slot": s, "value": summarize(gx, small)})
                updates[s] = summarize(grads[s], small)
            steps.append({"phase": "backward", "op": i, "grad": summarize(g, small), "sent": sent,
                          "updates": updates})
    return steps


# -- the page -----------------------------------------------------------------------------------------


def tape_html(engine: Autograd, names: Mapping[int, str] | None = None, title: str | None = None,
              small: int = SMALL) -> str:
    """One self-contained HTML page that plays the tape forward, then backward, filling the memory buffer.

    ``names`` maps ``id(array)`` to a label (``fc1.W``, ``x``); arrays of at most ``small``
    numbers are shown in full. Build it after the forward pass and before ``backward()``.
    """
    trace = tape_trace(engine, names, small)
    data = json.dumps(trace, separators=(",", ":")).replace("</", "<\\/")
    heading = html.escape(title or f"The tape: {len(trace['ops'])} ops")
    return _PAGE.replace("__TITLE__", heading).replace("__DATA__", data).replace("__CSS__", _CSS).replace(
        "__JS__", _JS)


def write_tape_html(engine: Autograd, path: str | Path, names: Mapping[int, str] | None = None,
                    title: str | None = None, small: int = SMALL) -> Path:
    """Write :func:`tape_html` to ``path`` (UTF-8); returns the path."""
    path = Path(path)
    path.write_text(tape_html(engine, names, title, small), encoding="utf-8")
    return path


def tape_table_html(engine: Autograd, names: Mapping[int, str] | None = None) -> str:
    """The tape as an HTML table (ops, shapes, bytes held) and the buffer's slots with what they hold."""
    esc = html.escape
    ops = engine.operation_list
    if not ops:
        state = "consumed by backward" if getattr(engine, "_consumed", False) else "empty"
        head = f"<p><b>Autograd tape</b>: {state}</p>"
    else:
        cells = "".join(
            "<tr>" + "".join(f"<td style='text-align:{a}'>{esc(c)}</td>" for c, a in zip(r, _ALIGN)) + "</tr>"
            for r in tape_rows(engine, names)
        )
        head = (f"<p><b>Autograd tape</b>: {len(ops)} ops, in the order they ran; backward walks them last to first."
                "</p><table><thead><tr>" + "".join(f"<th>{h}</th>" for h in ("#", "op", "inputs", "output", "dtype",
                                                                            "held")) +
                f"</tr></thead><tbody>{cells}</tbody></table>")
    producers = {id(op.output): i for i, op in enumerate(ops)}
    labels = dict(names or {})
    rows = []
    for k, g in engine.memory_buffer.memory.items():
        x = engine.memory_buffer.tracked.get(k) if hasattr(engine.memory_buffer, "tracked") else None
        who = labels.get(k) or (f"#{producers[k]}" if k in producers else "leaf")
        shape = _shape_text(list(x.shape)) if x is not None and hasattr(x, "shape") else ""
        held = "empty (no gradient yet)" if g is None else _norm_text(g)
        rows.append((who, shape, held))
    bound: set[int] = set()
    for op in ops:
        for x, upd in zip(op.inputs, op.gradients_to_update):
            if upd is not None and id(x) not in engine.memory_buffer.memory and id(x) not in bound:
                bound.add(id(x))
                rows.append((labels.get(id(x), "parameter"), _shape_text(list(x.shape)),
                             "bound gradient array: " + _norm_text(upd)))
    slots = "".join(f"<tr><td>{esc(a)}</td><td>{esc(b)}</td><td>{esc(c)}</td></tr>" for a, b, c in rows)
    buffer = (f"<p><b>Memory buffer</b>: {len(rows)} gradient slot{'s' if len(rows) != 1 else ''}</p><table><thead><tr><th>array</th><th>shape</th>"
              f"<th>gradient</th></tr></thead><tbody>{slots}</tbody></table>")
    return f"<div class='new-grad-tape'>{head}{buffer}</div>"


_ALIGN = ("right", "left", "left", "left", "left", "right")


def _norm_text(g: Any) -> str:
    s = summarize(g)
    return f"{_shape_text(s['shape'])} norm {s['norm']}" if "norm" in s else _shape_text(s["shape"])


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>__CSS__</style>
</head>
<body>
<header>
  <h1>__TITLE__</h1>
  <p class="lead">Forward, every op writes one row on the tape. Backward is one loop over the same rows, last to
  first: each op turns the gradient of its output into gradients of its inputs, and the memory buffer's slots fill.</p>
</header>
<nav id="controls" aria-label="steps">
  <button id="first" title="first step (Home)">&laquo; first</button>
  <button id="prev" title="step back (&larr;)">&#x25C0; back</button>
  <button id="play" title="play / pause (space)">&#x25B6; play</button>
  <button id="next" title="step forward (&rarr;)">step &#x25B6;</button>
  <button id="last" title="last step (End)">last &raquo;</button>
  <input id="scrub" type="range" min="0" max="0" value="0" aria-label="step">
  <label>speed <select id="speed"><option value="1600">slow</option><option value="800" selected>normal</option>
  <option value="300">fast</option></select></label>
  <span id="step-label"></span>
</nav>
<main>
  <section id="tape-panel">
    <h2>Operation list <span class="hint">(#i in the inputs is the output of op i)</span></h2>
    <table id="tape"><thead><tr><th>#</th><th>op</th><th>inputs</th><th>output</th><th>dtype</th><th>held</th>
    </tr></thead><tbody></tbody></table>
  </section>
  <section id="buffer-panel">
    <h2>Memory buffer <span class="hint">(one gradient slot per array that needs one)</span></h2>
    <div id="buffer"></div>
  </section>
  <section id="side">
    <h2>This step</h2>
    <div id="detail"></div>
  </section>
</main>
<script id="tape-data" type="application/json">__DATA__</script>
<script>__JS__</script>
</body>
</html>
"""

_CSS = """
:root { --fw: #2563eb; --bw: #d9480f; --fill: #fff4e6; --ink: #1f2328; --mute: #656d76; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); margin: 0;
  background: #f6f8fa; }
header { padding: 14px 22px 4px; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 14px; margin: 14px 0 6px; }
.hint, .lead { color: var(--mute); font-weight: normal; }
.lead { margin: 0; max-width: 70em; }
#controls { position: sticky; top: 0; z-index: 2; display: flex; gap: 8px; align-items: center; flex-wrap: wrap;
  padding: 8px 22px; background: #fff; border-bottom: 1px solid var(--line); }
button { font: inherit; padding: 4px 10px; border: 1px solid var(--line); border-radius: 6px; background: #f6f8fa;
  cursor: pointer; }
button:hover { background: #eaeef2; }
#scrub { flex: 1 1 160px; }
#step-label { font-weight: 600; min-width: 18em; }
#step-label.forward { color: var(--fw); } #step-label.backward, #step-label.seed { color: var(--bw); }
main { display: grid; grid-template-columns: minmax(0, 3fr) minmax(280px, 2fr); grid-template-areas:
  "tape side" "buffer side"; gap: 0 18px; padding: 4px 22px 22px; align-items: start; }
#tape-panel { grid-area: tape; } #buffer-panel { grid-area: buffer; }
#side { grid-area: side; position: sticky; top: 52px; }
@media (max-width: 900px) { main { grid-template-columns: 1fr; grid-template-areas: "tape" "side" "buffer"; }
  #side { position: static; } }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
th, td { padding: 3px 8px; border-bottom: 1px solid #eaeef2; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
td.num { text-align: right; color: var(--mute); font-variant-numeric: tabular-nums; }
td.opname { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-weight: 600; }
tr.op.done-forward td { color: var(--ink); }
tr.op.pending td { color: #8c959f; }
tr.op.done-backward td { background: #fbfbfb; color: #8c959f; }
tr.op.current.forward td { background: #dbeafe; }
tr.op.current.backward td { background: #ffe8cc; }
tr.op.target td:first-child { box-shadow: inset 4px 0 0 var(--bw); }
tr.op.target td.num:first-child::after { content: " ←"; color: var(--bw); font-weight: 700; }
.ref { color: #9a6700; font-weight: 600; }
.ref.hot { color: #fff; background: var(--bw); border-radius: 4px; padding: 0 3px; }
#detail { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; min-height: 90px; }
#detail .what { font-weight: 600; margin-bottom: 6px; }
#detail .send { margin: 4px 0; }
#buffer { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 8px; }
.slot { background: #fff; border: 1px dashed #afb8c1; border-radius: 8px; padding: 6px 8px; transition: background .3s; }
.slot .name { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-weight: 600; }
.slot .kind { color: var(--mute); font-size: 12px; }
.slot .val { font-size: 12px; margin-top: 2px; color: var(--mute); overflow-x: auto; }
#side, #tape-panel, #buffer-panel { min-width: 0; }
.vals { overflow-x: auto; max-width: 100%; }
#detail .arr, #detail .mono { overflow-x: auto; max-width: 100%; }
.slot[data-state="filled"] { border: 1px solid #f59f00; background: var(--fill); }
.slot[data-state="filled"] .val { color: var(--ink); }
.slot[data-state="fresh"] { border: 2px solid var(--bw); background: #ffd8a8; }
.slot[data-state="fresh"] .val { color: var(--ink); }
.slot.active { outline: 2px solid var(--fw); }
table.arr { width: auto; border: none; background: transparent; margin-top: 2px; }
table.arr td { border: none; padding: 0 4px; text-align: right; font-family: ui-monospace, Menlo, monospace;
  font-size: 12px; }
.mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }
"""

_JS = r"""
(function () {
  "use strict";
  var T = JSON.parse(document.getElementById("tape-data").textContent);
  var steps = T.steps, ops = T.ops, slots = T.slots;
  var k = 0, timer = null;
  var $ = function (id) { return document.getElementById(id); };
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function shape(s) { return "(" + s.shape.join(",") + (s.shape.length === 1 ? "," : "") + ")"; }
  function fmt(v) { return typeof v === "number" ? String(v) : String(v); }
  function valueNode(s) {
    var box = el("div", "vals");
    if (!s) { box.textContent = "empty"; return box; }
    if (s.values !== undefined) {
      var v = s.values;
      if (!Array.isArray(v)) { box.appendChild(el("span", "mono", fmt(v))); return box; }
      var rows = Array.isArray(v[0]) ? v : [v];
      var deep = rows.length && Array.isArray(rows[0][0]);
      if (deep) { box.appendChild(el("span", "mono", shape(s) + " norm " + s.norm)); return box; }
      var t = el("table", "arr");
      rows.forEach(function (r) {
        var tr = el("tr");
        r.forEach(function (x) { tr.appendChild(el("td", null, fmt(x))); });
        t.appendChild(tr);
      });
      box.appendChild(t);
      return box;
    }
    box.textContent = shape(s) + (s.norm !== undefined ? "  norm " + s.norm + "  [" + s.min + ", " + s.max + "]" : "");
    return box;
  }

  // the table and the buffer, built once
  var body = document.querySelector("#tape tbody");
  ops.forEach(function (op) {
    var tr = el("tr", "op pending");
    tr.dataset.index = op.index;
    tr.appendChild(el("td", "num", String(op.index)));
    tr.appendChild(el("td", "opname", op.op));
    var ins = el("td", "inputs");
    op.inputs_text.split(/(#\d+)/).forEach(function (part) {
      if (/^#\d+$/.test(part)) { var r = el("span", "ref", part); r.dataset.ref = part.slice(1); ins.appendChild(r); }
      else ins.appendChild(document.createTextNode(part));
    });
    tr.appendChild(ins);
    tr.appendChild(el("td", "mono", op.shape));
    tr.appendChild(el("td", null, op.dtype));
    tr.appendChild(el("td", "num", op.held));
    body.appendChild(tr);
  });
  var rowsEl = body.querySelectorAll("tr.op");
  var buffer = $("buffer");
  slots.forEach(function (s, i) {
    var d = el("div", "slot");
    d.dataset.slot = i;
    d.dataset.state = "empty";
    d.appendChild(el("div", "name", s.label + " " + s.shape));
    d.appendChild(el("div", "kind", s.kind + ", " + s.bytes));
    var v = el("div", "val", "empty");
    d.appendChild(v);
    buffer.appendChild(d);
  });
  var slotEls = buffer.querySelectorAll(".slot");
  var scrub = $("scrub");
  scrub.max = String(steps.length - 1);

  function bufferAt(n) {
    var state = {}, fresh = {};
    for (var i = 0; i <= n; i++) {
      var u = steps[i].updates || {};
      Object.keys(u).forEach(function (s) { state[s] = u[s]; if (i === n) fresh[s] = true; });
    }
    return { state: state, fresh: fresh };
  }

  function describe(st) {
    var d = $("detail");
    d.textContent = "";
    var what = el("div", "what");
    d.appendChild(what);
    if (st.phase === "start" && T.consumed) {
      what.textContent = "This engine's tape was consumed by backward(), so there is nothing to play: write the " +
        "page after the forward pass and before backward().";
    } else if (st.phase === "start") {
      what.textContent = "The tape holds " + ops.length + " ops; the memory buffer has " + slots.length +
        " empty slots. Step forward to run the ops in order.";
    } else if (st.phase === "forward") {
      var op = ops[st.op];
      what.textContent = "Forward #" + st.op + " " + op.op + "(" + op.inputs_text + ") \u2192 " + op.shape;
      d.appendChild(el("div", "hint", "its output, kept on the tape for backward:"));
      d.appendChild(valueNode(st.value));
    } else if (st.phase === "seed") {
      what.textContent = "Backward starts: the gradient of the last output with respect to itself is 1.";
      d.appendChild(valueNode(st.updates[st.slot]));
    } else if (st.phase === "backward") {
      var o = ops[st.op];
      what.textContent = "Backward #" + st.op + " " + o.op + ": gradient of its output " + o.shape +
        (st.skipped ? " never arrived (nothing after it used it)" : " \u2192 its inputs");
      if (!st.skipped) {
        d.appendChild(el("div", "hint", "gradient of the output:"));
        d.appendChild(valueNode(st.grad));
        if (!st.sent.length) d.appendChild(el("div", "send", "no input needs a gradient (all constants)"));
        st.sent.forEach(function (s) {
          var line = el("div", "send");
          line.dataset.slot = s.slot;
          line.appendChild(el("span", "mono", "\u2192 input " + s.input + ": " + slots[s.slot].label + " " +
            slots[s.slot].shape));
          line.appendChild(valueNode(s.value));
          d.appendChild(line);
        });
      }
    } else {
      what.textContent = "Done: one reverse loop over the tape put a gradient in every slot that needed one.";
    }
  }

  function show(n) {
    k = Math.max(0, Math.min(steps.length - 1, n));
    var st = steps[k];
    scrub.value = String(k);
    var lab = $("step-label");
    lab.className = st.phase;
    var name = st.op !== undefined ? " #" + st.op + " " + ops[st.op].op : "";
    lab.textContent = "step " + k + " / " + (steps.length - 1) + ": " + st.phase + name;
    lab.dataset.phase = st.phase;
    lab.dataset.op = st.op !== undefined ? String(st.op) : "";
    var targets = {};
    (st.sent || []).forEach(function (s) {
      var src = ops[st.op].inputs[s.input];
      if (src && src.from !== null && src.from !== undefined) targets[src.from] = true;
    });
    rowsEl.forEach(function (tr, i) {
      var c = "op";
      if (st.phase === "start") c += " pending";
      else if (st.phase === "forward") c += i < st.op ? " done-forward" : (i === st.op ? " current forward" : " pending");
      else if (st.phase === "backward") c += i > st.op ? " done-backward" : (i === st.op ? " current backward" : "");
      else if (st.phase === "done") c += " done-backward";
      if (targets[i]) c += " target";
      tr.className = c;
      tr.querySelectorAll(".ref").forEach(function (r) {
        r.className = "ref" + (i === st.op && st.phase === "backward" && targets[r.dataset.ref] ? " hot" : "");
      });
    });
    var buf = bufferAt(k);
    slotEls.forEach(function (d, i) {
      var s = buf.state[i];
      d.dataset.state = s ? (buf.fresh[i] ? "fresh" : "filled") : "empty";
      d.dataset.norm = s && s.norm !== undefined ? String(s.norm) : "";
      var v = d.querySelector(".val");
      v.textContent = "";
      if (s) v.appendChild(valueNode(s)); else v.textContent = "empty";
      d.classList.toggle("active", st.op !== undefined && ops[st.op].inputs.some(function (x) { return x.slot === i; }));
    });
    describe(st);
  }

  function stop() { if (timer) { clearInterval(timer); timer = null; } $("play").textContent = "\u25B6 play"; }
  function play() {
    if (timer) { stop(); return; }
    if (k >= steps.length - 1) show(0);
    $("play").textContent = "\u275A\u275A pause";
    timer = setInterval(function () { if (k >= steps.length - 1) stop(); else show(k + 1); }, +$("speed").value);
  }
  $("first").onclick = function () { stop(); show(0); };
  $("prev").onclick = function () { stop(); show(k - 1); };
  $("next").onclick = function () { stop(); show(k + 1); };
  $("last").onclick = function () { stop(); show(steps.length - 1); };
  $("play").onclick = play;
  $("speed").onchange = function () { if (timer) { stop(); play(); } };
  scrub.oninput = function () { stop(); show(+scrub.value); };
  document.addEventListener("keydown", function (e) {
    if (e.target && e.target.tagName === "SELECT") return;
    if (e.key === "ArrowRight") { stop(); show(k + 1); e.preventDefault(); }
    else if (e.key === "ArrowLeft") { stop(); show(k - 1); e.preventDefault(); }
    else if (e.key === "Home") { stop(); show(0); }
    else if (e.key === "End") { stop(); show(steps.length - 1); }
    else if (e.key === " ") { play(); e.preventDefault(); }
  });
  window.tapeViewer = { show: show, step: function () { return k; }, steps: steps.length };
  show(0);
})();
"""
