// clearing page (清算): the monthly statements of what the fund owes each hospital, filtered by month, hospital
// and status; create (or recompute) one, confirm it, record its payment, each after a confirmation; download a
// statement as its JSON or as a CSV made here from its rows.
"use strict";
SG.strings({
  zh: {
    "clr.filters": "查询清算单",
    "clr.period": "月份",
    "clr.hospital": "医院编号",
    "clr.status": "状态",
    "clr.any": "全部",
    "clr.status.draft": "草稿",
    "clr.status.confirmed": "已确认",
    "clr.status.paid": "已支付",
    "clr.create": "生成清算单",
    "clr.create_hint": "按该医院当月每日对账数据汇总；已有草稿时重新计算，已确认的清算单不再变化。",
    "clr.create_title": "生成清算单",
    "clr.create_body": "为医院 {hospital} 生成 {period} 的清算单？",
    "clr.created": "已生成清算单 {id}。",
    "clr.recomputed": "清算单 {id} 已按当前对账数据重新计算。",
    "clr.list": "清算单（{n} 张）",
    "clr.none": "没有符合条件的清算单。",
    "clr.col.id": "医院 · 月份",
    "clr.col.settled": "结算笔数",
    "clr.col.reversed": "冲正笔数",
    "clr.col.relief": "应付救助金",
    "clr.col.by_program": "各项目",
    "clr.col.progress": "经过",
    "clr.col.actions": "操作",
    "clr.created_at": "生成 {at}",
    "clr.confirmed_at": "确认 {at}",
    "clr.paid_at": "支付 {at}（凭证 {ref}）",
    "clr.confirm": "确认",
    "clr.confirm_title": "确认清算单",
    "clr.confirm_body": "确认清算单 {id}？确认后金额冻结，不再随对账数据变化。只有已结束的月份可以确认。",
    "clr.confirmed": "清算单 {id} 已确认。",
    "clr.pay": "登记付款",
    "clr.pay_title": "登记清算单 {id} 的付款",
    "clr.payment_ref": "付款凭证号",
    "clr.payment_ref_hint": "1–64 位字母、数字或 . _ : -",
    "clr.paid_on": "付款日期",
    "clr.pay_submit": "登记",
    "clr.pay_confirm_body": "登记清算单 {id} 已于 {date} 付款 {amount} 元（凭证 {ref}）？",
    "clr.paid": "清算单 {id} 已登记付款。",
    "clr.json": "JSON",
    "clr.csv": "CSV",
    "clr.download_json": "下载清算单 {id} 的 JSON",
    "clr.download_csv": "下载清算单 {id} 的 CSV",
    "clr.download_list": "下载列表 CSV",
    "clr.csv.program": "救助项目",
    "clr.csv.relief_fen": "金额（分）",
    "clr.csv.relief_yuan": "金额（元）",
    "clr.total": "合计",
  },
  en: {
    "clr.filters": "Find statements",
    "clr.period": "Month",
    "clr.hospital": "Hospital id",
    "clr.status": "Status",
    "clr.any": "All",
    "clr.status.draft": "Draft",
    "clr.status.confirmed": "Confirmed",
    "clr.status.paid": "Paid",
    "clr.create": "Create statement",
    "clr.create_hint": "Sums the hospital's daily reconciliation of the month; a draft is recomputed, a confirmed statement never changes.",
    "clr.create_title": "Create a statement",
    "clr.create_body": "Create the {period} statement of hospital {hospital}?",
    "clr.created": "Statement {id} created.",
    "clr.recomputed": "Statement {id} recomputed from the reconciliation as it stands.",
    "clr.list": "Statements ({n})",
    "clr.none": "No statement matches.",
    "clr.col.id": "Hospital · month",
    "clr.col.settled": "Settled",
    "clr.col.reversed": "Reversed",
    "clr.col.relief": "Relief owed",
    "clr.col.by_program": "By program",
    "clr.col.progress": "History",
    "clr.col.actions": "Actions",
    "clr.created_at": "created {at}",
    "clr.confirmed_at": "confirmed {at}",
    "clr.paid_at": "paid {at} (ref {ref})",
    "clr.confirm": "Confirm",
    "clr.confirm_title": "Confirm the statement",
    "clr.confirm_body": "Confirm statement {id}? Its figures are then frozen. Only a month that has ended can be confirmed.",
    "clr.confirmed": "Statement {id} confirmed.",
    "clr.pay": "Record payment",
    "clr.pay_title": "Record the payment of statement {id}",
    "clr.payment_ref": "Payment reference",
    "clr.payment_ref_hint": "1–64 letters, digits or . _ : -",
    "clr.paid_on": "Paid on",
    "clr.pay_submit": "Record",
    "clr.pay_confirm_body": "Record that statement {id} was paid {amount} yuan on {date} (ref {ref})?",
    "clr.paid": "Statement {id} recorded as paid.",
    "clr.json": "JSON",
    "clr.csv": "CSV",
    "clr.download_json": "Download statement {id} as JSON",
    "clr.download_csv": "Download statement {id} as CSV",
    "clr.download_list": "Download the list as CSV",
    "clr.csv.program": "Program",
    "clr.csv.relief_fen": "Amount (fen)",
    "clr.csv.relief_yuan": "Amount (yuan)",
    "clr.total": "Total",
  },
});

SG.page(function (app) {
  var today = SG.today();
  var thisMonth = today.slice(0, 7);
  var names = {};
  var shown = [];

  function field(id, text, input) {
    input.id = id;
    return SG.el("label", { for: id }, text, input);
  }
  function statusSelect(id, withAny) {
    var s = SG.el("select", {}, withAny ? SG.el("option", { value: "" }, SG.t("clr.any")) : null,
      ["draft", "confirmed", "paid"].map(function (v) { return SG.el("option", { value: v }, SG.t("clr.status." + v)); }));
    s.id = id;
    return s;
  }

  // ---- filters ----
  var fPeriod = SG.dateInput({ name: "period", "data-field": "period" }, true);
  var fHospital = SG.el("input", { name: "hospital_id", maxlength: 64, list: "clr-hospitals", "data-field": "hospital_id", autocomplete: "off" });
  var fStatus = statusSelect("clr-f-status", true);
  fStatus.setAttribute("data-field", "status");
  var filters = SG.el("form", { id: "clr-filters", class: "inline", role: "search" },
    field("clr-f-period", SG.t("clr.period"), fPeriod),
    field("clr-f-hospital", SG.t("clr.hospital"), fHospital),
    SG.el("label", { for: "clr-f-status" }, SG.t("clr.status"), fStatus),
    SG.el("button", { type: "submit", id: "clr-search" }, SG.t("common.search")));
  filters.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var bad = SG.dateErrors(filters);
    SG.fieldErrors(filters, bad);
    if (!bad.length) load();
  });

  // ---- create ----
  var cHospital = SG.el("input", { name: "hospital_id", required: true, maxlength: 64, list: "clr-hospitals", "data-field": "hospital_id", autocomplete: "off" });
  var cPeriod = SG.dateInput({ name: "period", required: true, value: SG.prevMonth(thisMonth), "data-field": "period" }, true);
  var createMessage = SG.el("div", { id: "clr-create-message" });
  var create = SG.el("form", { id: "clr-create", class: "inline", novalidate: true },
    field("clr-c-hospital", SG.t("clr.hospital"), cHospital),
    field("clr-c-period", SG.t("clr.period"), cPeriod),
    SG.el("button", { type: "submit", id: "clr-create-submit" }, SG.t("clr.create")));
  create.addEventListener("submit", function (ev) {
    ev.preventDefault();
    SG.clear(createMessage);
    var bad = SG.dateErrors(create);
    if (cHospital.value.trim() === "") bad.unshift({ field: "hospital_id", message: SG.t("fe2.required") });
    SG.fieldErrors(create, bad);
    if (bad.length) return;
    var body = { hospital_id: cHospital.value.trim(), period: cPeriod.value };
    SG.confirm({ title: SG.t("clr.create_title"), body: SG.el("p", {}, SG.t("clr.create_body", { hospital: body.hospital_id, period: body.period })), ok: SG.t("clr.create") }).then(function (yes) {
      if (!yes) { cHospital.focus(); return; }
      SG.api("POST", "/admin/v1/clearings", body).then(function (r) {
        if (r.ok) {
          say(createMessage, SG.t(r.status === 201 ? "clr.created" : "clr.recomputed", { id: r.data.clearing_id }));
          SG.fieldErrors(create, []);
          load(r.data.clearing_id);
        } else if (r.status === 400 && r.data && r.data.errors) {
          var rest = SG.fieldErrors(create, r.data.errors);
          if (rest.length) createMessage.append(SG.problem(r));
        } else {
          createMessage.append(SG.problem(r));
        }
      });
    });
  });

  var hospitals = SG.el("datalist", { id: "clr-hospitals" });
  var listMessage = SG.el("div", { id: "clr-message" });
  var list = SG.el("div", { id: "clr-list" });
  var payslot = SG.el("div", { id: "clr-pay-slot" });
  app.append(
    SG.el("section", { class: "section", "aria-labelledby": "clr-f-h" }, SG.el("h2", { id: "clr-f-h" }, SG.t("clr.filters")), filters),
    SG.el("section", { class: "section card", "aria-labelledby": "clr-c-h" }, SG.el("h2", { id: "clr-c-h" }, SG.t("clr.create")),
      SG.el("p", { class: "hint" }, SG.t("clr.create_hint")), create, createMessage),
    hospitals, listMessage, payslot, list);

  SG.api("GET", "/admin/v1/rulesets").then(function (r) {
    if (r.ok) (r.data.rulesets || []).forEach(function (rs) { rs.programs.forEach(function (p) { names[p.id] = p.name; }); });
  }).then(function () { load(); });

  function say(node, text) {
    SG.clear(node);
    node.append(SG.el("p", { class: "notice", role: "status" }, text));
  }

  function load(highlight) {
    var q = SG.query({ period: fPeriod.value, hospital_id: fHospital.value.trim(), status: fStatus.value });
    return SG.api("GET", "/admin/v1/clearings" + q).then(function (r) {
      SG.clear(list);
      if (r.status === 400 && r.data && r.data.errors) { SG.fieldErrors(filters, r.data.errors); return; }
      SG.fieldErrors(filters, []);
      if (!r.ok) { list.append(SG.problem(r)); return; }
      shown = r.data.clearings || [];
      var seen = {};
      SG.clear(hospitals);
      shown.forEach(function (c) { if (!seen[c.hospital_id]) { seen[c.hospital_id] = true; hospitals.append(SG.el("option", { value: c.hospital_id })); } });
      drawList(highlight);
    });
  }

  function programs(byProgram) {
    return Object.keys(byProgram || {}).map(function (p) {
      return SG.el("div", { class: "nowrap" }, (names[p] || p) + " " + SG.yuan(byProgram[p]));
    });
  }

  function drawList(highlight) {
    list.append(SG.el("div", { class: "card-head" },
      SG.el("h2", { id: "clr-list-h" }, SG.t("clr.list", { n: shown.length })),
      shown.length ? SG.el("button", { type: "button", class: "secondary", id: "clr-download-list", onclick: downloadList }, SG.t("clr.download_list")) : null));
    if (!shown.length) { list.append(SG.el("p", { class: "muted", id: "clr-none" }, SG.t("clr.none"))); return; }
    var cols = [
      { label: SG.t("clr.col.id"), render: function (c) {
        return [SG.el("div", { class: "nowrap" }, c.hospital_id + " · " + c.period), SG.el("div", { class: "key-sub mono" }, c.clearing_id)];
      } },
      { label: SG.t("clr.status"), render: function (c) { return SG.el("span", { class: "badge " + c.status, "data-status": c.status }, SG.t("clr.status." + c.status)); } },
      { label: SG.t("clr.col.settled"), num: true, key: "settled_count" },
      { label: SG.t("clr.col.reversed"), num: true, key: "reversed_count" },
      { label: SG.t("clr.col.relief"), fen: true, render: function (c) { return SG.el("span", { "data-fen": c.relief_fen }, SG.yuan(c.relief_fen)); } },
      { label: SG.t("clr.col.by_program"), render: function (c) { return programs(c.by_program); } },
      { label: SG.t("clr.col.progress"), render: function (c) {
        var short = function (at) { return SG.at(at).slice(0, 16); };
        return [SG.el("div", { class: "hint nowrap" }, SG.t("clr.created_at", { at: short(c.created_at) })),
          c.confirmed_at ? SG.el("div", { class: "hint nowrap" }, SG.t("clr.confirmed_at", { at: short(c.confirmed_at) })) : null,
          c.paid_at ? SG.el("div", { class: "hint nowrap" }, SG.t("clr.paid_at", { at: c.paid_at, ref: c.payment_ref })) : null];
      } },
      { label: SG.t("clr.col.actions"), render: actions },
    ];
    var table = SG.table(cols, shown, { id: "clr-table", class: "data" });
    table.querySelectorAll("tbody tr").forEach(function (tr, i) {
      tr.setAttribute("data-clearing", shown[i].clearing_id);
      var th = SG.el("th", { scope: "row" });
      while (tr.cells[0].firstChild) th.appendChild(tr.cells[0].firstChild);
      tr.replaceChild(th, tr.cells[0]);
    });
    var sum = function (k) { return shown.reduce(function (a, c) { return a + BigInt(c[k]); }, 0n); };
    table.append(SG.el("tfoot", {}, SG.el("tr", {},
      SG.el("th", { scope: "row", colspan: 2 }, SG.t("clr.total")),
      SG.el("td", { class: "num" }, SG.int(sum("settled_count").toString())),
      SG.el("td", { class: "num" }, SG.int(sum("reversed_count").toString())),
      SG.el("td", { class: "num", id: "clr-total-relief", "data-fen": sum("relief_fen").toString() }, SG.yuan(sum("relief_fen"))),
      SG.el("td", { colspan: 3 }))));
    list.append(SG.el("div", { class: "table-scroll" }, table));
    if (highlight) {
      var row = table.querySelector('tr[data-clearing="' + CSS.escape(highlight) + '"]');
      if (row) row.classList.add("diff");
    }
  }

  // the next step of the statement (confirm, record payment) above its two downloads
  function actions(c) {
    var id = c.clearing_id;
    var next = null;
    if (c.status === "draft") next = SG.el("button", { type: "button", "data-action": "confirm", onclick: function () { confirmIt(c); } }, SG.t("clr.confirm"));
    if (c.status === "confirmed") next = SG.el("button", { type: "button", "data-action": "pay", onclick: function () { payForm(c); } }, SG.t("clr.pay"));
    return [next ? SG.el("div", { class: "actions step" }, next) : null,
      SG.el("div", { class: "actions" },
        SG.el("button", { type: "button", class: "secondary", "data-action": "json", "aria-label": SG.t("clr.download_json", { id: id }), onclick: function () {
          SG.download(id + ".json", JSON.stringify(c, null, 2) + "\n", "application/json");
        } }, SG.t("clr.json")),
        SG.el("button", { type: "button", class: "secondary", "data-action": "csv", "aria-label": SG.t("clr.download_csv", { id: id }), onclick: function () {
          SG.download(id + ".csv", statementCsv(c), "text/csv;charset=utf-8");
        } }, SG.t("clr.csv")))];
  }

  // one line per program of the statement, then its total (fen, and yuan as text)
  function statementCsv(c) {
    var head = ["clearing_id", "hospital_id", "period", "status", "program", "program_name", "settled_count", "reversed_count", "relief_fen", "relief_yuan"];
    var rows = [head];
    Object.keys(c.by_program || {}).forEach(function (p) {
      rows.push([c.clearing_id, c.hospital_id, c.period, c.status, p, names[p] || "", "", "", c.by_program[p], SG.yuanPlain(c.by_program[p])]);
    });
    rows.push([c.clearing_id, c.hospital_id, c.period, c.status, "total", "", c.settled_count, c.reversed_count, c.relief_fen, SG.yuanPlain(c.relief_fen)]);
    return SG.csv(rows);
  }

  function downloadList() {
    var rows = [["clearing_id", "hospital_id", "period", "status", "settled_count", "reversed_count", "relief_fen", "relief_yuan", "by_program", "created_at", "confirmed_at", "payment_ref", "paid_at"]];
    shown.forEach(function (c) {
      var bp = Object.keys(c.by_program || {}).map(function (p) { return p + "=" + c.by_program[p]; }).join(";");
      rows.push([c.clearing_id, c.hospital_id, c.period, c.status, c.settled_count, c.reversed_count, c.relief_fen, SG.yuanPlain(c.relief_fen), bp,
        c.created_at, c.confirmed_at || "", c.payment_ref || "", c.paid_at || ""]);
    });
    SG.download("clearings" + (fPeriod.value ? "-" + fPeriod.value : "") + ".csv", SG.csv(rows), "text/csv;charset=utf-8");
  }

  function confirmIt(c) {
    SG.clear(listMessage);
    SG.confirm({ title: SG.t("clr.confirm_title"), body: SG.el("p", {}, SG.t("clr.confirm_body", { id: c.clearing_id })), ok: SG.t("clr.confirm") }).then(function (yes) {
      if (!yes) return;
      SG.api("POST", "/admin/v1/clearings/" + encodeURIComponent(c.clearing_id) + "/confirm").then(function (r) {
        if (r.ok) { say(listMessage, SG.t("clr.confirmed", { id: c.clearing_id })); load(c.clearing_id); }
        else { listMessage.append(SG.problem(r)); }
      });
    });
  }

  function payForm(c) {
    SG.clear(payslot);
    SG.clear(listMessage);
    var ref = SG.el("input", { name: "payment_ref", required: true, maxlength: 64, "data-field": "payment_ref", autocomplete: "off" });
    var date = SG.dateInput({ name: "paid_at", required: true, value: today, "data-field": "paid_at" });
    var message = SG.el("div", { id: "clr-pay-message" });
    var form = SG.el("form", { id: "clr-pay", class: "card", novalidate: true, "aria-labelledby": "clr-pay-h" },
      SG.el("h2", { id: "clr-pay-h" }, SG.t("clr.pay_title", { id: c.clearing_id })),
      SG.el("div", { class: "inline form-row" },
        SG.el("div", { class: "field" }, SG.el("label", { for: "clr-pay-ref" }, SG.t("clr.payment_ref")), ref, SG.el("span", { class: "hint" }, SG.t("clr.payment_ref_hint"))),
        SG.el("div", { class: "field" }, SG.el("label", { for: "clr-pay-date" }, SG.t("clr.paid_on")), date)),
      message,
      SG.el("p", { class: "actions" },
        SG.el("button", { type: "submit", id: "clr-pay-submit" }, SG.t("clr.pay_submit")),
        SG.el("button", { type: "button", class: "secondary", id: "clr-pay-cancel", onclick: function () { SG.clear(payslot); } }, SG.t("common.cancel"))));
    ref.id = "clr-pay-ref";
    date.id = "clr-pay-date";
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      SG.clear(message);
      var bad = SG.dateErrors(form);
      if (ref.value.trim() === "") bad.unshift({ field: "payment_ref", message: SG.t("fe2.required") });
      SG.fieldErrors(form, bad);
      if (bad.length) return;
      var body = { payment_ref: ref.value.trim(), paid_at: date.value };
      SG.confirm({ title: SG.t("clr.pay"), body: SG.el("p", {}, SG.t("clr.pay_confirm_body", { id: c.clearing_id, date: body.paid_at, ref: body.payment_ref, amount: SG.yuan(c.relief_fen) })), ok: SG.t("clr.pay_submit") }).then(function (yes) {
        if (!yes) { ref.focus(); return; }
        SG.api("POST", "/admin/v1/clearings/" + encodeURIComponent(c.clearing_id) + "/paid", body).then(function (r) {
          if (r.ok) { SG.clear(payslot); say(listMessage, SG.t("clr.paid", { id: c.clearing_id })); load(c.clearing_id); }
          else if (r.status === 400 && r.data && r.data.errors) {
            var rest = SG.fieldErrors(form, r.data.errors);
            if (rest.length) message.append(SG.problem(r));
          } else { message.append(SG.problem(r)); }
        });
      });
    });
    payslot.append(form);
    ref.focus();
  }
});
