// reports page (统计报表): the relief report over a range of days, grouped by street, community, category,
// program, hospital or day: a bar chart of the relief per key (every day of the range for `day`) and the table with its
// total row; CSV is the API's own (a plain link, the session cookie goes along). A street account's report holds
// only its street's lines (the API scopes it).
"use strict";
SG.strings({
  zh: {
    "rep.query": "查询条件",
    "rep.by": "分组方式",
    "rep.by.street": "按街道",
    "rep.by.community": "按社区",
    "rep.by.category": "按救助类别",
    "rep.by.program": "按救助项目",
    "rep.by.hospital": "按医院",
    "rep.by.day": "按日",
    "rep.key.street": "街道",
    "rep.key.community": "社区",
    "rep.key.category": "救助类别",
    "rep.key.program": "救助项目",
    "rep.key.hospital": "医院",
    "rep.key.day": "日期",
    "rep.this_month": "本月",
    "rep.last_month": "上月",
    "rep.csv": "下载 CSV",
    "rep.chart": "救助金额（元）",
    "rep.chart_title": "{from} 至 {to} 救助金额{by}",
    "rep.table": "明细",
    "rep.settled": "结算笔数",
    "rep.reversed": "冲正笔数",
    "rep.cards": "救助人数",
    "rep.relief": "救助金额",
    "rep.none": "此期间没有结算。",
    "rep.street_scope": "本报表只含 {street} 的数据。",
    "rep.program_note": "按项目分组时，一笔结算涉及几个项目就计入几行，各行笔数之和可能大于合计；金额之和等于合计。",
    "rep.cards_note": "救助人数为期间内有结算的不同卡号数，合计不是各行之和。",
    "rep.total": "合计",
  },
  en: {
    "rep.query": "Report",
    "rep.by": "Group by",
    "rep.by.street": "Street",
    "rep.by.community": "Community",
    "rep.by.category": "Category",
    "rep.by.program": "Program",
    "rep.by.hospital": "Hospital",
    "rep.by.day": "Day",
    "rep.key.street": "Street",
    "rep.key.community": "Community",
    "rep.key.category": "Category",
    "rep.key.program": "Program",
    "rep.key.hospital": "Hospital",
    "rep.key.day": "Day",
    "rep.this_month": "This month",
    "rep.last_month": "Last month",
    "rep.csv": "Download CSV",
    "rep.chart": "Relief (yuan)",
    "rep.chart_title": "Relief {from} to {to}, {by}",
    "rep.table": "Figures",
    "rep.settled": "Settled",
    "rep.reversed": "Reversed",
    "rep.cards": "Cards",
    "rep.relief": "Relief",
    "rep.none": "No settlements in this period.",
    "rep.street_scope": "This report holds only the lines of {street}.",
    "rep.program_note": "Grouped by program, a settlement counts in the row of each program it paid from, so the rows' counts may add up to more than the total; their amounts add up to it.",
    "rep.cards_note": "Cards: distinct cards with a settlement in the period; the total is not the sum of the rows.",
    "rep.total": "Total",
  },
});

SG.page(function (app) {
  var today = SG.today();
  var isAdmin = SG.user && SG.user.role === "admin";
  var names = {};
  var latest = 0; // the newest request: an older answer arriving after it is dropped
  var BYS = ["street", "community", "category", "program", "hospital", "day"];
  var params = new URLSearchParams(window.location.search);

  var from = SG.dateInput({ id: "rep-from", required: true, value: params.get("from") || SG.monthStart(today), "data-field": "from" });
  var to = SG.dateInput({ id: "rep-to", required: true, value: params.get("to") || today, "data-field": "to" });
  var by = SG.el("select", { id: "rep-by", "data-field": "by" },
    BYS.map(function (b) { return SG.el("option", { value: b, selected: (params.get("by") || "street") === b }, SG.t("rep.by." + b)); }));
  var csv = SG.el("a", { id: "rep-csv", class: "button-link", href: "#" }, SG.t("rep.csv"));
  var form = SG.el("form", { id: "rep-form", class: "inline", novalidate: true },
    SG.el("label", { for: "rep-from" }, SG.t("common.from"), from),
    SG.el("label", { for: "rep-to" }, SG.t("common.to"), to),
    SG.el("label", { for: "rep-by" }, SG.t("rep.by"), by),
    SG.el("button", { type: "submit", id: "rep-run" }, SG.t("common.search")),
    SG.el("button", { type: "button", class: "secondary", id: "rep-this-month", onclick: function () { from.value = SG.monthStart(today); to.value = today; run(); } }, SG.t("rep.this_month")),
    SG.el("button", { type: "button", class: "secondary", id: "rep-last-month", onclick: function () {
      var first = SG.prevMonth(today.slice(0, 7)) + "-01";
      from.value = first; to.value = SG.addDays(SG.monthStart(today), -1); run();
    } }, SG.t("rep.last_month")),
    csv);
  form.addEventListener("submit", function (ev) { ev.preventDefault(); run(); });
  by.addEventListener("change", run);

  var out = SG.el("div", { id: "rep-out" });
  app.append(SG.el("section", { class: "section", "aria-labelledby": "rep-q-h" }, SG.el("h2", { id: "rep-q-h", class: "visually-hidden" }, SG.t("rep.query")), form));
  if (!isAdmin && SG.user && SG.user.street) app.append(SG.el("p", { class: "notice", id: "rep-scope" }, SG.t("rep.street_scope", { street: SG.user.street })));
  app.append(out);

  (isAdmin ? SG.api("GET", "/admin/v1/rulesets") : Promise.resolve(null)).then(function (r) {
    if (r && r.ok) (r.data.rulesets || []).forEach(function (rs) { rs.programs.forEach(function (p) { names[p.id] = p.name; }); });
  }).then(run);

  function keyText(b, key) {
    if (key === "") return SG.t("fe2.empty_key");
    if (b === "program") return names[key] || key;
    if (b === "category") { var t = SG.t("cat." + key); return t === "cat." + key ? key : t; }
    return key;
  }
  function keyNode(b, key) {
    var text = keyText(b, key);
    return SG.el("span", {}, text, text !== key && key !== "" ? SG.el("span", { class: "key-sub" }, key) : null);
  }

  function run() {
    var mine = ++latest;
    var bad = SG.dateErrors(form);
    SG.fieldErrors(form, bad);
    if (bad.length) return;
    var q = { from: from.value, to: to.value, by: by.value };
    csv.setAttribute("href", "/api/admin/v1/reports/relief" + SG.query(Object.assign({}, q, { format: "csv" })));
    csv.setAttribute("download", "relief-" + q.by + "-" + q.from + "-" + q.to + ".csv");
    window.history.replaceState(null, "", window.location.pathname + SG.query(q));
    SG.clear(out);
    out.append(SG.el("p", { class: "muted" }, SG.t("common.loading")));
    SG.api("GET", "/admin/v1/reports/relief" + SG.query(q)).then(function (r) {
      if (mine !== latest) return;
      SG.clear(out);
      if (r.status === 400 && r.data && r.data.errors) {
        var rest = SG.fieldErrors(form, r.data.errors);
        if (rest.length) out.append(SG.problem(r));
        return;
      }
      SG.fieldErrors(form, []);
      if (!r.ok) { out.append(SG.problem(r)); return; }
      draw(r.data);
    });
  }

  function draw(rep) {
    var b = rep.by;
    var rows = rep.rows || [];
    out.setAttribute("data-by", b);
    out.setAttribute("data-total-fen", rep.total.relief_fen);
    var title = SG.t("rep.chart_title", { from: rep.from, to: rep.to, by: SG.t("rep.by." + b) });
    var chart = SG.el("div", { class: "chart", id: "rep-chart", role: "img", "aria-label": title });
    out.append(SG.el("section", { class: "section", "aria-labelledby": "rep-chart-h" }, SG.el("h2", { id: "rep-chart-h" }, title), chart));
    if (!rows.length) {
      chart.append(SG.el("p", { class: "muted", id: "rep-none" }, SG.t("rep.none")));
    } else {
      var labels = rows.map(function (row) { return b === "day" ? row.key.slice(5) : keyText(b, row.key); });
      var values = rows.map(function (row) { return SG.yuanNumber(row.relief_fen); });
      // a day chart runs over every day of the range, with 0 where nothing was settled
      if (b === "day") {
        var byDay = {};
        rows.forEach(function (row) { byDay[row.key] = row; });
        labels = []; values = [];
        for (var d = rep.from; d <= rep.to; d = SG.addDays(d, 1)) {
          labels.push(d.slice(5));
          values.push(byDay[d] ? SG.yuanNumber(byDay[d].relief_fen) : 0);
        }
      }
      SG.bars(chart, labels, [{ label: SG.t("rep.chart"), values: values }], { xLabel: SG.t("rep.key." + b) });
    }

    // the table: one column per program of the total
    var programs = Object.keys(rep.total.by_program || {});
    var cols = [
      { label: SG.t("rep.key." + b), render: function (row) { return keyNode(b, row.key); } },
      { label: SG.t("rep.settled"), num: true, key: "settled_count" },
      { label: SG.t("rep.reversed"), num: true, key: "reversed_count" },
      { label: SG.t("rep.cards"), num: true, key: "cards" },
      { label: SG.t("rep.relief"), fen: true, render: function (row) { return SG.el("span", { "data-fen": row.relief_fen }, SG.yuan(row.relief_fen)); } },
    ].concat(programs.map(function (p) {
      return { label: names[p] || p, fen: true, render: function (row) { var v = (row.by_program || {})[p]; return v === undefined ? "—" : SG.yuan(v); } };
    }));
    var table = SG.table(cols, rows, { id: "rep-table", class: "data" });
    table.querySelectorAll("tbody tr").forEach(function (tr, i) {
      tr.setAttribute("data-key", rows[i].key);
      var th = SG.el("th", { scope: "row" });
      while (tr.cells[0].firstChild) th.appendChild(tr.cells[0].firstChild);
      tr.replaceChild(th, tr.cells[0]);
    });
    var t = rep.total;
    table.append(SG.el("tfoot", {}, SG.el("tr", { id: "rep-total" },
      SG.el("th", { scope: "row" }, SG.t("rep.total")),
      SG.el("td", { class: "num" }, SG.int(t.settled_count)),
      SG.el("td", { class: "num" }, SG.int(t.reversed_count)),
      SG.el("td", { class: "num" }, SG.int(t.cards)),
      SG.el("td", { class: "num", id: "rep-total-relief", "data-fen": t.relief_fen }, SG.yuan(t.relief_fen)),
      programs.map(function (p) { return SG.el("td", { class: "num" }, SG.yuan(t.by_program[p])); }))));
    out.append(SG.el("section", { class: "section", "aria-labelledby": "rep-t-h" },
      SG.el("h2", { id: "rep-t-h" }, SG.t("rep.table")),
      SG.el("div", { class: "table-scroll" }, table),
      SG.el("p", { class: "hint" }, SG.t("rep.cards_note")),
      b === "program" ? SG.el("p", { class: "hint" }, SG.t("rep.program_note")) : null));
  }
});
