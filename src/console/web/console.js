// console.js: the helpers every page script uses (one global, SG). No framework and no build step: the DOM is
// built with SG.el (text is always set as text, never parsed as HTML), the API is called with SG.api (the session
// cookie goes along; a non-GET call carries the page's CSRF token), money is integer fen everywhere and turned
// into yuan text and back with string arithmetic only (no floating point).
"use strict";
(function () {
  var ctxNode = document.getElementById("sg-context");
  var ctx = ctxNode ? JSON.parse(ctxNode.textContent) : { lang: "zh", strings: {} };
  var strings = Object.assign({}, ctx.strings || {});
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');

  var SG = {
    ctx: ctx,
    lang: ctx.lang || "zh",
    user: ctx.user || null,
    csrf: csrfMeta ? csrfMeta.getAttribute("content") : "",
  };

  // A page's own strings: {zh: {...}, en: {...}}, both languages with the same keys. A key that only one language
  // has is listed in SG.stringProblems (and logged), which the browser tests check is empty.
  SG.stringProblems = [];
  SG.strings = function (dict) {
    var zh = Object.keys(dict.zh || {}), en = Object.keys(dict.en || {});
    zh.filter(function (k) { return en.indexOf(k) < 0; }).forEach(function (k) { SG.stringProblems.push("en lacks " + k); });
    en.filter(function (k) { return zh.indexOf(k) < 0; }).forEach(function (k) { SG.stringProblems.push("zh lacks " + k); });
    if (SG.stringProblems.length) console.error("SG.strings:", SG.stringProblems.join(", "));
    Object.assign(strings, dict[SG.lang] || dict.zh || {});
  };
  // What the Content-Security-Policy refused on this page (an inline style, a foreign script): the browser tests
  // check it stays empty.
  SG.cspViolations = [];
  document.addEventListener("securitypolicyviolation", function (e) {
    SG.cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + (e.sourceFile || "") + ":" + (e.lineNumber || ""));
  });
  // Script errors and rejected promises no one handled (tests/browser_layout.rs checks it stays empty).
  window.SG_ERRORS = [];
  window.addEventListener("error", function (e) {
    window.SG_ERRORS.push((e.message || "error") + " " + (e.filename || "") + ":" + (e.lineno || ""));
  });
  window.addEventListener("unhandledrejection", function (e) {
    window.SG_ERRORS.push("unhandled rejection: " + String(e.reason));
  });

  // The string `key` in the page's language, with {name} placeholders filled from `vars`.
  SG.t = function (key, vars) {
    var s = Object.prototype.hasOwnProperty.call(strings, key) ? strings[key] : key;
    if (vars) {
      Object.keys(vars).forEach(function (k) { s = s.split("{" + k + "}").join(String(vars[k])); });
    }
    return s;
  };

  // An element: SG.el("td", {class: "num", "data-field": "x"}, "text", childNode, ...). `on*` attributes given
  // as functions become listeners.
  SG.el = function (tag, attrs) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (typeof v === "function" && k.slice(0, 2) === "on") node.addEventListener(k.slice(2), v);
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : String(v));
    });
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  };
  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(node, c); }); return; }
    node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
  SG.clear = function (node) { while (node.firstChild) node.removeChild(node.firstChild); return node; };
  // Replaces a node's children with these (nodes, text, arrays of them; null skipped, as SG.el takes them).
  SG.fill = function (node) {
    SG.clear(node);
    for (var i = 1; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  };

  // ---- money: fen (integer) <-> yuan text, exactly ----
  // 123456 -> "1,234.56"; -5 -> "-0.05". Accepts a Number (a safe integer) or a BigInt.
  SG.yuan = function (fen) {
    if (fen === null || fen === undefined || fen === "") return "";
    var n = BigInt(fen);
    var neg = n < 0n;
    if (neg) n = -n;
    var whole = (n / 100n).toString();
    var cents = (n % 100n).toString().padStart(2, "0");
    whole = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return (neg ? "-" : "") + whole + "." + cents;
  };
  // "1,234.5" -> 123450; "" or anything else -> null. At most two decimals; the result is a safe integer.
  SG.parseYuan = function (text) {
    var s = String(text).trim().replace(/[,，\s]/g, "");
    var m = /^(-?)(\d{1,14})(?:\.(\d{1,2}))?$/.exec(s);
    if (!m) return null;
    var fen = BigInt(m[2]) * 100n + BigInt((m[3] || "").padEnd(2, "0"));
    if (m[1] === "-") fen = -fen;
    if (fen > BigInt(Number.MAX_SAFE_INTEGER) || fen < -BigInt(Number.MAX_SAFE_INTEGER)) return null;
    return Number(fen);
  };
  // part/whole as a percentage with one decimal ("81.3"), integer arithmetic; "" when whole is 0.
  SG.percent = function (part, whole) {
    if (!whole) return "";
    var permille = (BigInt(part) * 1000n) / BigInt(whole);
    return (permille / 10n).toString() + "." + (permille % 10n).toString().replace("-", "");
  };
  // The warning level of a share: "ok", "warn80", "warn90" or "full" (>= 100 %).
  SG.level = function (part, whole) {
    if (!whole) return "ok";
    var p = BigInt(part) * 100n;
    var w = BigInt(whole);
    if (p >= w * 100n) return "full";
    if (p >= w * 90n) return "warn90";
    if (p >= w * 80n) return "warn80";
    return "ok";
  };
  SG.int = function (n) { return n === null || n === undefined ? "" : String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ","); };
  // Basis points as a percentage, exactly: 9000 -> "90", 9050 -> "90.5", 125 -> "1.25".
  SG.bpPercent = function (bp) {
    if (bp === null || bp === undefined || bp === "") return "";
    var n = BigInt(bp), neg = n < 0n;
    if (neg) n = -n;
    var frac = (n % 100n).toString().padStart(2, "0").replace(/0+$/, "");
    return (neg ? "-" : "") + (n / 100n).toString() + (frac ? "." + frac : "");
  };
  // "90", "90.5", "-5" (percent, at most two decimals) -> basis points (9000, 9050, -500); anything else -> null.
  SG.parsePercent = function (text) {
    var m = /^(-?)(\d{1,7})(?:\.(\d{1,2}))?$/.exec(String(text).trim().replace(/[%％\s]/g, ""));
    if (!m) return null;
    var bp = Number(m[2]) * 100 + Number((m[3] || "").padEnd(2, "0"));
    return m[1] === "-" ? -bp : bp;
  };
  // Fen as a Number of yuan, for drawing only (charts); figures shown as text always come from SG.yuan.
  SG.yuanNumber = function (fen) { return fen === null || fen === undefined ? null : Number(fen) / 100; };
  // A usage bar: part/whole in the warning colour of SG.level (width set from script: CSP allows that).
  SG.bar = function (part, whole) {
    var level = SG.level(part, whole);
    var fill = SG.el("span", { class: "lvl-" + level });
    var permille = whole ? Number((BigInt(part) * 1000n) / BigInt(whole)) : 0;
    fill.style.width = Math.max(0, Math.min(1000, permille)) / 10 + "%";
    return SG.el("div", { class: "bar", role: "presentation", "data-level": level }, fill);
  };

  // ---- dates ----
  SG.today = function () { return ctx.today || new Date().toISOString().slice(0, 10); };
  SG.monthStart = function (day) { return day.slice(0, 8) + "01"; };
  // An RFC 3339 time of the gateway ("2026-12-02T10:15:02.123+08:00") as its local wall time "2026-12-02 10:15:02".
  SG.time = function (rfc3339) { return rfc3339 ? String(rfc3339).slice(0, 19).replace("T", " ") : ""; };
  // Its UTC offset in minutes (+08:00 -> 480); 0 when it has none.
  SG.utcOffset = function (rfc3339) {
    var m = /([+-])(\d\d):(\d\d)$/.exec(String(rfc3339 || ""));
    return m ? (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 0;
  };

  // ---- the API ----
  // SG.api("GET", "/admin/v1/pools") -> Promise of {status, ok, data, text, headers}. A 401 (the session expired)
  // goes back to the login page.
  SG.api = function (method, path, body, opts) {
    opts = opts || {};
    var headers = { "accept": opts.accept || "application/json" };
    if (method !== "GET" && method !== "HEAD") headers["x-csrf-token"] = SG.csrf;
    var init = { method: method, headers: headers, credentials: "same-origin" };
    if (body !== undefined && body !== null) {
      if (typeof body === "string" || body instanceof Blob) {
        init.body = body;
        headers["content-type"] = opts.contentType || "application/x-ndjson";
      } else {
        init.body = JSON.stringify(body);
        headers["content-type"] = "application/json";
      }
    }
    return fetch("/api" + path, init).then(function (resp) {
      if (resp.status === 401) { window.location.assign("/login?expired=1"); }
      return resp.text().then(function (text) {
        var data = null;
        var type = resp.headers.get("content-type") || "";
        if (type.indexOf("json") >= 0 && type.indexOf("ndjson") < 0 && text) {
          try { data = JSON.parse(text); } catch (e) { data = null; }
        }
        return { status: resp.status, ok: resp.ok, data: data, text: text, headers: resp.headers };
      });
    });
  };
  // NDJSON text -> array of objects.
  SG.ndjson = function (text) {
    return text.split("\n").filter(function (l) { return l.trim() !== ""; }).map(function (l) { return JSON.parse(l); });
  };
  // A query string from an object, skipping empty values.
  SG.query = function (o) {
    var parts = Object.keys(o).filter(function (k) { return o[k] !== "" && o[k] !== null && o[k] !== undefined; })
      .map(function (k) { return encodeURIComponent(k) + "=" + encodeURIComponent(o[k]); });
    return parts.length ? "?" + parts.join("&") : "";
  };

  // ---- errors ----
  // A problem+json answer as a message element (role=alert, data-code = the API's code).
  SG.problem = function (r) {
    var p = r.data || {};
    var msg = r.status === 503 ? SG.t("common.unavailable") : (p.detail || p.title || (SG.t("common.error") + " (" + r.status + ")"));
    return SG.el("p", { class: "error", role: "alert", "data-code": p.code || String(r.status) }, msg);
  };
  // Marks the inputs of a form named by a 400's `errors` ([{field, message}]): an input whose data-field equals the
  // error's field (or starts it) gets aria-invalid and the message next to it. Returns the errors no input took.
  // (A field "programs[0].require_tags[2]" lands on the input "programs[0].require_tags"; the first input that
  // takes an error gets the focus.)
  SG.fieldErrors = function (root, errors) {
    root.querySelectorAll(".field-error").forEach(function (n) { n.remove(); });
    root.querySelectorAll("[aria-invalid]").forEach(function (n) { n.removeAttribute("aria-invalid"); });
    var rest = [];
    var first = null;
    (errors || []).forEach(function (e) {
      var field = String(e.field || "");
      var input = root.querySelector('[data-field="' + CSS.escape(field) + '"]');
      if (!input) {
        var best = null;
        root.querySelectorAll("[data-field]").forEach(function (n) {
          var f = n.getAttribute("data-field");
          var next = field.charAt(f.length);
          if (f && field.indexOf(f) === 0 && (next === "." || next === "[") && (!best || f.length > best.getAttribute("data-field").length)) best = n;
        });
        input = best;
      }
      if (!input) { rest.push(e); return; }
      if (!first) first = input;
      if (input.getAttribute("aria-invalid") === "true") {
        var prev = root.querySelector('.field-error[data-for="' + CSS.escape(input.getAttribute("data-field")) + '"]');
        if (prev) { prev.textContent += "; " + e.message; return; }
      }
      var at = input.getAttribute("data-field");
      input.setAttribute("aria-invalid", "true");
      var id = "err-" + at.replace(/[^a-zA-Z0-9_-]/g, "_");
      input.setAttribute("aria-describedby", id);
      input.insertAdjacentElement("afterend", SG.el("span", { class: "field-error", id: id, role: "alert", "data-for": at }, e.message));
    });
    if (first) first.focus();
    return rest;
  };

  // ---- tables ----
  // columns: [{key, label, fen: true (shown in yuan, right-aligned), num: true, rowHeader: true (a <th scope=row>),
  // render: function(row) -> node|text}]. Each cell carries data-col = its column's key. opts.rowAttrs(row) -> the
  // attributes of a row (e.g. {"data-program": "charity"}).
  SG.unitLabel = function (label, unit) { return SG.lang === "zh" ? label + "（" + unit + "）" : label + " (" + unit + ")"; };
  SG.table = function (columns, rows, attrs, opts) {
    opts = opts || {};
    var head = SG.el("tr", {}, columns.map(function (c) {
      return SG.el("th", { scope: "col", class: c.fen || c.num ? "num" : null }, c.fen ? SG.unitLabel(c.label, SG.t("common.yuan")) : c.label);
    }));
    var body = rows.map(function (row) {
      return SG.el("tr", opts.rowAttrs ? opts.rowAttrs(row) : {}, columns.map(function (c) {
        var v = c.render ? c.render(row) : row[c.key];
        if (c.fen && !c.render) v = SG.yuan(v);
        else if (c.num && !c.render) v = SG.int(v);
        var cell = { class: c.fen || c.num ? "num" : null, "data-col": c.key || null };
        if (c.rowHeader) cell.scope = "row";
        return SG.el(c.rowHeader ? "th" : "td", cell, v);
      }));
    });
    return SG.el("table", attrs || {}, SG.el("thead", {}, head), SG.el("tbody", {}, body));
  };

  // ---- charts (uPlot, vendored) ----
  // Charts are pictures of figures a table next to them shows exactly; their numbers are for drawing only.
  var palette = ["#2f6fb3", "#d9822b", "#3c9d5d", "#b5443d", "#7a5ab8", "#8a8a8a"];
  SG.palette = palette;
  SG.chartWidth = function (node) { return Math.max(320, Math.min(node.clientWidth || 900, 1600)); };
  var font = '12px "Noto Sans CJK SC", "Noto Sans SC", "Microsoft YaHei", "PingFang SC", system-ui, sans-serif';
  // An axis number: 1234567.5 -> "1,234,567.5".
  SG.axisNumber = function (v) {
    return v === null || v === undefined ? "" : Number(v).toLocaleString("en-US", { maximumFractionDigits: 2 });
  };
  // A scale from 0 to a little above the largest value (1 when there is none).
  function fromZero(u, min, max) {
    var top = max !== null && isFinite(max) && max > 0 ? max * 1.12 : 1;
    var bottom = min !== null && isFinite(min) && min < 0 ? min * 1.12 : 0;
    return [bottom, top];
  }
  SG.fromZero = fromZero;

  // Grouped bars: one group per label on x, one bar per entry of `series` ([{label, values}]) inside each group,
  // side by side in the series' order; values in yuan (or any unit), drawn from 0. opts: {height, format (axis
  // and legend numbers), yLabel}. Returns the uPlot instance.
  SG.bars = function (node, labels, series, opts) {
    opts = opts || {};
    var fmt = opts.format || SG.axisNumber;
    var xs = labels.map(function (_, i) { return i; });
    var n = Math.max(series.length, 1);
    var group = n === 1 ? 0.6 : 0.8; // share of a category's width its group of bars takes
    var bar = group / n;
    var data = [xs].concat(series.map(function (s) { return s.values.map(function (v) { return v === undefined ? null : v; }); }));
    var width = SG.chartWidth(node);
    // at most one label per 90 px (a month of days stays readable at 1280 wide)
    var every = Math.max(1, Math.ceil(labels.length / Math.max(1, Math.floor(width / 90))));
    var o = {
      width: width, height: opts.height || 260,
      scales: { x: { time: false, range: function () { return [-0.5, Math.max(labels.length, 1) - 0.5]; } }, y: { range: fromZero } },
      axes: [
        { font: font, splits: function () { return xs.filter(function (i) { return i % every === 0; }); }, grid: { show: false }, ticks: { show: false },
          values: function (u, splits) { return splits.map(function (v) { return labels[v] === undefined ? "" : labels[v]; }); } },
        { font: font, size: 80, label: opts.yLabel, labelFont: font, labelSize: opts.yLabel ? 20 : 0,
          values: function (u, vals) { return vals.map(fmt); } },
      ],
      cursor: { drag: { x: false, y: false }, points: { show: false } },
      legend: { live: false },
      series: [{ label: opts.xLabel || "", value: function (u, v) { return v === null || labels[v] === undefined ? "" : labels[v]; } }]
        .concat(series.map(function (s, k) {
          var color = palette[k % palette.length];
          return {
            label: s.label, stroke: color, fill: color, width: 0, points: { show: false },
            value: function (u, v) { return v === null || v === undefined ? "" : fmt(v); },
            paths: uPlot.paths.bars({
              align: 0,
              disp: {
                // the centre of bar k of each group, and its width, in units of the x scale
                x0: { unit: 1, values: function (u) { return u.data[0].map(function (x) { return x - group / 2 + bar * (k + 0.5); }); } },
                size: { unit: 1, values: function () { return [bar * 0.9]; } },
              },
            }),
          };
        })),
    };
    SG.clear(node);
    var chart = new uPlot(o, data, node);
    node.setAttribute("data-chart", "bars");
    return chart;
  };

  function xSeries(opts) {
    var x = {};
    if (opts.xLabel) x.label = opts.xLabel;
    if (opts.xValue) x.value = function (u, v) { return v === null || v === undefined ? "—" : opts.xValue(v); };
    return x;
  }
  // A time series: xs in Unix seconds, series [{label, values, scale, bars: true (drawn as bars), value:
  // function(v) -> legend text}]. opts: {height, scales, axes, xLabel, xValue: function(x) -> legend text, utcOffsetMinutes: the wall time shown on the time
  // axis is at this offset (the gateway's zone), not the browser's}. Returns the uPlot instance; new figures go in
  // with its setData([xs, values...]).
  SG.line = function (node, xs, series, opts) {
    opts = opts || {};
    var o = {
      width: SG.chartWidth(node), height: opts.height || 220,
      scales: opts.scales || {},
      axes: (opts.axes || [{}, { size: 60 }]).map(function (a) { return Object.assign({ font: font, labelFont: font }, a); }),
      cursor: { drag: { x: false, y: false } },
      series: [xSeries(opts)].concat(series.map(function (s, i) {
        var color = s.color || palette[i % palette.length];
        var one = { label: s.label, stroke: color, width: s.bars ? 0 : 2, scale: s.scale, spanGaps: false };
        if (s.value) one.value = function (u, v) { return v === null || v === undefined ? "—" : s.value(v); };
        if (s.bars) {
          one.fill = color + "b3";
          one.paths = uPlot.paths.bars({ size: [0.7, 24], align: 0 });
          one.points = { show: false };
        } else {
          one.points = { show: true, size: 5, fill: color };
        }
        return one;
      })),
    };
    if (opts.utcOffsetMinutes !== undefined) {
      var off = opts.utcOffsetMinutes;
      // a Date whose local fields read the wall time at `off`, which is what uPlot formats
      o.tzDate = function (ts) {
        var d = new Date(ts * 1000 + off * 60000);
        return new Date(d.getTime() + d.getTimezoneOffset() * 60000);
      };
    }
    SG.clear(node);
    var chart = new uPlot(o, [xs].concat(series.map(function (s) { return s.values; })), node);
    node.setAttribute("data-chart", "line");
    return chart;
  };

  // ---- page start ----
  SG.page = function (draw) {
    var run = function () {
      var app = document.getElementById("app");
      if (app) draw(app);
    };
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run);
    else run();
  };

  // The language switch: zh <-> en, kept in a cookie, the page reloaded in it.
  document.addEventListener("DOMContentLoaded", function () {
    var toggle = document.getElementById("lang-toggle");
    if (toggle) {
      toggle.addEventListener("click", function () {
        var next = SG.lang === "zh" ? "en" : "zh";
        document.cookie = "sg_lang=" + next + "; Path=/; Max-Age=31536000; SameSite=Strict; Secure";
        window.location.reload();
      });
    }
  });

  window.SG = SG;
})();

// ---- console-fe2 ----
// Helpers of the Cardholders, Clearing, Reports and Audit pages (branch console-fe2): a confirmation dialog, a
// download made in the browser, CSV text and a timestamp shown as local wall time (charts: SG.bars above).
(function (SG) {
  "use strict";
  SG.strings({
    zh: {
      "fe2.confirm.title": "请确认", "fe2.empty_key": "（未标注）", "fe2.sep": "、",
      "fe2.bad_date": "请按 YYYY-MM-DD 填写日期，例如 2026-11-30", "fe2.bad_month": "请按 YYYY-MM 填写月份，例如 2026-11",
      "fe2.required": "此项必填",
      // the categories RULES.md names (free labels: another one is shown as it is)
      "cat.tekun": "特困", "cat.dibao": "低保", "cat.dibao_edge": "低保边缘", "cat.low_income": "低收入",
      "cat.illness_poverty": "因病致贫",
    },
    en: {
      "fe2.confirm.title": "Please confirm", "fe2.empty_key": "(none)", "fe2.sep": ", ",
      "fe2.bad_date": "Enter a date as YYYY-MM-DD, e.g. 2026-11-30", "fe2.bad_month": "Enter a month as YYYY-MM, e.g. 2026-11",
      "fe2.required": "Required",
      "cat.tekun": "Extreme poverty", "cat.dibao": "Minimum living allowance", "cat.dibao_edge": "Near minimum allowance",
      "cat.low_income": "Low income", "cat.illness_poverty": "Poverty due to illness",
    },
  });

  // A modal confirmation (<dialog>, keyboard: Tab between the two buttons, Esc cancels; Cancel has the focus).
  // opts: {title, body (text or node), ok (label), danger (a red OK button)}. Resolves true when confirmed.
  SG.confirm = function (opts) {
    return new Promise(function (resolve) {
      var old = document.getElementById("confirm-dialog");
      if (old) old.remove();
      var cancel = SG.el("button", { type: "submit", value: "cancel", class: "secondary", id: "confirm-cancel" }, SG.t("common.cancel"));
      var ok = SG.el("button", { type: "submit", value: "ok", id: "confirm-ok", class: opts.danger ? "danger" : null }, opts.ok || SG.t("common.confirm"));
      var dlg = SG.el("dialog", { id: "confirm-dialog", "aria-labelledby": "confirm-title", "aria-describedby": "confirm-body" },
        SG.el("form", { method: "dialog" },
          SG.el("h2", { id: "confirm-title" }, opts.title || SG.t("fe2.confirm.title")),
          SG.el("div", { id: "confirm-body" }, opts.body),
          SG.el("p", { class: "dialog-buttons" }, ok, " ", cancel)));
      dlg.addEventListener("close", function () {
        var yes = dlg.returnValue === "ok";
        dlg.remove();
        resolve(yes);
      });
      document.body.appendChild(dlg);
      dlg.showModal();
      cancel.focus();
    });
  };

  // Offers `text` as a file named `name` (a Blob link with `download`, clicked and then released).
  SG.download = function (name, text, type) {
    var blob = new Blob([text], { type: type || "text/plain;charset=utf-8" });
    var url = URL.createObjectURL(blob);
    var a = SG.el("a", { href: url, download: name, class: "hidden-link" });
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(url); a.remove(); }, 1000);
    return blob;
  };

  // RFC 4180 text from rows of cells (a BOM first, so spreadsheet programs read the UTF-8 Chinese right).
  SG.csv = function (rows) {
    return "\ufeff" + rows.map(function (r) {
      return r.map(function (c) {
        var s = c === null || c === undefined ? "" : String(c);
        return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
      }).join(",");
    }).join("\r\n") + "\r\n";
  };

  // fen as a plain decimal yuan text without separators ("1234.56"), for CSV cells.
  SG.yuanPlain = function (fen) { return SG.yuan(fen).replace(/,/g, ""); };

  // An RFC 3339 time of the gateway ("2026-12-02T10:15:02.123+08:00") as its wall time "2026-12-02 10:15:02".
  SG.at = function (s) { return s ? String(s).slice(0, 19).replace("T", " ") : ""; };

  // YYYY-MM-DD plus n days (n may be negative), in calendar arithmetic (UTC, so no time zone moves the day).
  SG.addDays = function (day, n) {
    var d = new Date(day + "T00:00:00Z");
    d.setUTCDate(d.getUTCDate() + n);
    return d.toISOString().slice(0, 10);
  };
  // The month before "YYYY-MM".
  SG.prevMonth = function (period) {
    var y = Number(period.slice(0, 4)), m = Number(period.slice(5, 7)) - 1;
    if (m === 0) { y -= 1; m = 12; }
    return String(y).padStart(4, "0") + "-" + String(m).padStart(2, "0");
  };

  // A date (YYYY-MM-DD) or, with `month`, a month (YYYY-MM) field: text in the API's one format, the same in every
  // browser and language (a browser's own date control shows the format of its locale, not the page's).
  SG.dateInput = function (attrs, month) {
    return SG.el("input", Object.assign({
      type: "text", inputmode: "numeric", autocomplete: "off", spellcheck: "false", class: "date-text",
      maxlength: month ? 7 : 10, placeholder: month ? "YYYY-MM" : "YYYY-MM-DD", "data-format": month ? "month" : "date",
    }, attrs));
  };
  // The {field, message} errors of `root`'s date fields (SG.dateInput) that are not a real day or month, or empty
  // and required: for SG.fieldErrors before anything is sent.
  SG.dateErrors = function (root) {
    var errors = [];
    root.querySelectorAll("input.date-text").forEach(function (input) {
      var v = input.value.trim();
      input.value = v;
      var month = input.getAttribute("data-format") === "month";
      var field = input.getAttribute("data-field") || input.name;
      if (v === "") {
        if (input.required) errors.push({ field: field, message: SG.t("fe2.required") });
        return;
      }
      var day = month ? v + "-01" : v;
      var ok = (month ? /^\d{4}-\d{2}$/ : /^\d{4}-\d{2}-\d{2}$/).test(v) && !isNaN(Date.parse(day + "T00:00:00Z")) &&
        new Date(day + "T00:00:00Z").toISOString().slice(0, 10) === day;
      if (!ok) errors.push({ field: field, message: SG.t(month ? "fe2.bad_month" : "fe2.bad_date") });
    });
    return errors;
  };
})(window.SG);
