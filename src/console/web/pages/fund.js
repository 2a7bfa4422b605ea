// Charity fund page (慈善基金): GET /admin/v1/pools?year= — each pool's base, net contributions, budget, paid and
// left, with its donors; a form that records a donation or a withdrawal (POST /admin/v1/pools/{program}/
// contributions, amount entered in yuan and sent in fen exactly, a contribution id the user sees and may change);
// and the year's recorded contributions from the audit trail (GET /admin/v1/audit?action=pool.contribution).
"use strict";
SG.strings({
  zh: {
    "fund.year": "年度",
    "fund.show": "查看",
    "fund.version": "按第 {version} 版规则计算",
    "fund.no_version": "该年度没有生效的规则。",
    "fund.pools": "资金池",
    "fund.pools_none": "该年度生效的规则中没有设资金池的项目。",
    "fund.program": "救助项目",
    "fund.base": "规则设定额度",
    "fund.contributions": "年内净捐赠",
    "fund.budget": "年度预算",
    "fund.paid": "已支付",
    "fund.left": "剩余",
    "fund.used": "使用率",
    "fund.donors": "{program} 的捐赠方",
    "fund.donors_none": "暂无捐赠。",
    "fund.donor": "捐赠方",
    "fund.net": "净额",
    "fund.form": "记录捐赠或支取",
    "fund.form_program": "资金池",
    "fund.form_kind": "类型",
    "fund.kind.donation": "捐赠（增加预算）",
    "fund.kind.withdrawal": "支取（减少预算）",
    "fund.kind_short.donation": "捐赠",
    "fund.kind_short.withdrawal": "支取",
    "fund.form_donor": "捐赠方",
    "fund.form_donor_hint": "支取时填写原捐赠方",
    "fund.form_amount": "金额（元）",
    "fund.form_amount_hint": "将记录 {yuan} 元",
    "fund.form_note": "备注（可选）",
    "fund.form_id": "记录编号",
    "fund.form_id_hint": "同一编号重复提交不会重复入账",
    "fund.new_id": "重新生成编号",
    "fund.submit.donation": "记录捐赠",
    "fund.submit.withdrawal": "记录支取",
    "fund.bad_amount": "请输入大于 0 的金额（元），最多两位小数。",
    "fund.need_donor": "请填写捐赠方。",
    "fund.done.donation": "已记录捐赠 {amount} 元（{donor}，编号 {id}）。{program} 的年度预算现为 {budget} 元，剩余 {left} 元。",
    "fund.done.withdrawal": "已记录支取 {amount} 元（{donor}，编号 {id}）。{program} 的年度预算现为 {budget} 元，剩余 {left} 元。",
    "fund.replayed": "编号 {id} 的记录已经存在（重复提交），没有重复入账。",
    "fund.err.pool_would_overdraw": "不能支取：支取 {amount} 元后，{program} 的预算将低于本年已支付的金额（已支付 {paid} 元）。未做任何更改。",
    "fund.err.idempotency_conflict": "编号 {id} 已用于另一笔内容不同的记录。未做任何更改；请点击“重新生成编号”后再提交。",
    "fund.err.not_a_pool": "{program} 在 {year} 年生效的规则中没有资金池，不能记录捐赠或支取。",
    "fund.err.not_found": "没有救助项目 {program}。",
    "fund.err.invalid_request": "请检查标出的字段。",
    "fund.err.outcome_unknown": "结果未知：服务没有及时答复，这笔记录可能已入账。请用相同编号（{id}）再提交一次：已入账的不会重复。",
    "fund.err.detail": "服务答复：{detail}",
    "fund.records": "{year} 年的捐赠与支取记录",
    "fund.records_none": "该年度还没有记录。",
    "fund.rec_at": "时间",
    "fund.rec_actor": "经办人",
    "fund.rec_kind": "类型",
    "fund.rec_program": "资金池",
    "fund.rec_donor": "捐赠方",
    "fund.rec_amount": "金额",
    "fund.rec_id": "编号",
    "fund.rec_note": "备注"
  },
  en: {
    "fund.year": "Year",
    "fund.show": "Show",
    "fund.version": "as of ruleset version {version}",
    "fund.no_version": "No ruleset is in force in that year.",
    "fund.pools": "Pools",
    "fund.pools_none": "No program of the ruleset in force that year has a pool.",
    "fund.program": "Program",
    "fund.base": "Ruleset amount",
    "fund.contributions": "Net contributions",
    "fund.budget": "Budget",
    "fund.paid": "Paid",
    "fund.left": "Left",
    "fund.used": "Used",
    "fund.donors": "Donors of {program}",
    "fund.donors_none": "No donations yet.",
    "fund.donor": "Donor",
    "fund.net": "Net amount",
    "fund.form": "Record a donation or a withdrawal",
    "fund.form_program": "Pool",
    "fund.form_kind": "Kind",
    "fund.kind.donation": "Donation (raises the budget)",
    "fund.kind.withdrawal": "Withdrawal (lowers the budget)",
    "fund.kind_short.donation": "donation",
    "fund.kind_short.withdrawal": "withdrawal",
    "fund.form_donor": "Donor",
    "fund.form_donor_hint": "for a withdrawal: the donor it is returned to",
    "fund.form_amount": "Amount (yuan)",
    "fund.form_amount_hint": "records {yuan} yuan",
    "fund.form_note": "Note (optional)",
    "fund.form_id": "Contribution id",
    "fund.form_id_hint": "sending the same id again never records it twice",
    "fund.new_id": "New id",
    "fund.submit.donation": "Record donation",
    "fund.submit.withdrawal": "Record withdrawal",
    "fund.bad_amount": "Enter an amount in yuan above 0, with at most two decimals.",
    "fund.need_donor": "Enter the donor.",
    "fund.done.donation": "Donation of {amount} yuan recorded ({donor}, id {id}). The budget of {program} is now {budget} yuan, {left} yuan left.",
    "fund.done.withdrawal": "Withdrawal of {amount} yuan recorded ({donor}, id {id}). The budget of {program} is now {budget} yuan, {left} yuan left.",
    "fund.replayed": "Contribution {id} was already recorded (sent again): nothing was added.",
    "fund.err.pool_would_overdraw": "Not withdrawn: after taking {amount} yuan the budget of {program} would be below what it has already paid this year ({paid} yuan). Nothing was changed.",
    "fund.err.idempotency_conflict": "The id {id} was already used for a different contribution. Nothing was changed; click \"New id\" and send it again.",
    "fund.err.not_a_pool": "{program} has no pool in the ruleset in force in {year}: no contribution can be recorded.",
    "fund.err.not_found": "There is no program {program}.",
    "fund.err.invalid_request": "Check the marked fields.",
    "fund.err.outcome_unknown": "Outcome unknown: the service did not answer in time and the contribution may have been recorded. Send it again with the same id ({id}): it is never recorded twice.",
    "fund.err.detail": "The service said: {detail}",
    "fund.records": "Contributions recorded in {year}",
    "fund.records_none": "Nothing recorded in that year yet.",
    "fund.rec_at": "At",
    "fund.rec_actor": "Recorded by",
    "fund.rec_kind": "Kind",
    "fund.rec_program": "Pool",
    "fund.rec_donor": "Donor",
    "fund.rec_amount": "Amount",
    "fund.rec_id": "Id",
    "fund.rec_note": "Note"
  }
});

SG.page(function (app) {
  var names = {};
  var current = null; // the pools answer shown

  function newId() {
    var d = new Date();
    var stamp = d.getFullYear() + [d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds()]
      .map(function (n) { return String(n).padStart(2, "0"); }).join("");
    var rnd = new Uint8Array(3);
    crypto.getRandomValues(rnd);
    return "web-" + stamp + "-" + Array.prototype.map.call(rnd, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }
  function programLabel(id) { return names[id] && names[id] !== id ? names[id] + " (" + id + ")" : id; }
  function field(id, label, input, hint) {
    return SG.el("div", { class: "field" }, SG.el("label", { for: id }, label), input, hint ? SG.el("span", { class: "hint muted", id: id + "-hint" }, hint) : null);
  }

  // ---- the year and the pools ----
  var year = SG.el("input", { id: "fund-year", type: "number", min: "1970", max: "9999", value: SG.today().slice(0, 4), "data-field": "year", class: "year" });
  var show = SG.el("button", { id: "fund-load", type: "button", class: "secondary", onclick: function () { load(); } }, SG.t("fund.show"));
  var version = SG.el("span", { id: "fund-version", class: "muted" });
  var loadProblem = SG.el("div", { id: "fund-problem" });
  var pools = SG.el("div", { id: "fund-pools" });
  var donors = SG.el("div", { id: "fund-donors", class: "grid donors" });

  // ---- the form ----
  var program = SG.el("select", { id: "contrib-program", "data-field": "program" });
  var kind = SG.el("select", { id: "contrib-kind", "data-field": "kind", onchange: function () { syncKind(); } },
    SG.el("option", { value: "donation" }, SG.t("fund.kind.donation")),
    SG.el("option", { value: "withdrawal" }, SG.t("fund.kind.withdrawal")));
  var donor = SG.el("input", { id: "contrib-donor", "data-field": "donor", maxlength: "64", required: true, autocomplete: "off", "aria-describedby": "contrib-donor-hint" });
  var amountHint = SG.el("span", { class: "hint muted", id: "contrib-amount-hint", "aria-live": "polite" }, "\u00a0");
  var amount = SG.el("input", { id: "contrib-amount", "data-field": "amount_fen", inputmode: "decimal", autocomplete: "off", required: true, class: "num",
    oninput: function () {
      var fen = SG.parseYuan(amount.value);
      amountHint.textContent = fen !== null && fen > 0 ? SG.t("fund.form_amount_hint", { yuan: SG.yuan(fen) }) : "\u00a0";
    } });
  var note = SG.el("input", { id: "contrib-note", "data-field": "note", maxlength: "256", autocomplete: "off" });
  var cid = SG.el("input", { id: "contrib-id", "data-field": "contribution_id", maxlength: "64", value: newId(), class: "mono", autocomplete: "off", "aria-describedby": "contrib-id-hint" });
  var regen = SG.el("button", { id: "contrib-new-id", type: "button", class: "secondary", onclick: function () { cid.value = newId(); } }, SG.t("fund.new_id"));
  var submit = SG.el("button", { id: "contrib-submit", type: "submit" }, SG.t("fund.submit.donation"));
  var result = SG.el("div", { id: "contrib-result", "aria-live": "polite" });
  var form = SG.el("form", { id: "contrib-form", class: "card form-grid", novalidate: true, onsubmit: function (e) { e.preventDefault(); send(); } },
    field("contrib-program", SG.t("fund.form_program"), program),
    field("contrib-kind", SG.t("fund.form_kind"), kind),
    field("contrib-donor", SG.t("fund.form_donor"), donor, SG.t("fund.form_donor_hint")),
    SG.el("div", { class: "field" }, SG.el("label", { for: "contrib-amount" }, SG.t("fund.form_amount")), amount, amountHint),
    field("contrib-note", SG.t("fund.form_note"), note),
    SG.el("div", { class: "field id-field" }, SG.el("label", { for: "contrib-id" }, SG.t("fund.form_id")),
      SG.el("div", { class: "row" }, cid, regen), SG.el("span", { class: "hint muted", id: "contrib-id-hint" }, SG.t("fund.form_id_hint"))),
    SG.el("div", { class: "actions" }, submit));

  var recordsTitle = SG.el("h2", { id: "records-title" });
  var records = SG.el("div", { id: "contrib-records" });

  app.append(
    SG.el("div", { class: "toolbar" }, SG.el("label", { for: "fund-year" }, SG.t("fund.year")), year, show, version),
    loadProblem,
    SG.el("h2", {}, SG.t("fund.pools")), pools, donors,
    SG.el("h2", {}, SG.t("fund.form")), form, result,
    recordsTitle, records);

  function syncKind() {
    var k = kind.value;
    submit.textContent = SG.t("fund.submit." + k);
    submit.className = k === "withdrawal" ? "danger" : "";
  }

  function drawPools(data) {
    current = data;
    version.textContent = data.ruleset_version === null ? SG.t("fund.no_version") : SG.t("fund.version", { version: data.ruleset_version });
    if (!data.pools.length) {
      SG.fill(pools, SG.el("p", { class: "muted" }, SG.t("fund.pools_none")));
      SG.clear(donors);
    } else {
      SG.fill(pools, SG.table([
        { key: "program", label: SG.t("fund.program"), rowHeader: true, render: function (p) { return programLabel(p.program); } },
        { key: "base_fen", label: SG.t("fund.base"), fen: true },
        { key: "contributions_fen", label: SG.t("fund.contributions"), fen: true },
        { key: "budget_fen", label: SG.t("fund.budget"), fen: true },
        { key: "paid_fen", label: SG.t("fund.paid"), fen: true },
        { key: "left_fen", label: SG.t("fund.left"), fen: true },
        { key: "used", label: SG.t("fund.used"), render: function (p) {
          var level = SG.level(p.paid_fen, p.budget_fen);
          return SG.el("div", { class: "bar-cell" }, SG.bar(p.paid_fen, p.budget_fen),
            SG.el("span", { class: "lvl-" + level + " num" }, p.budget_fen ? SG.percent(p.paid_fen, p.budget_fen) + "%" : "—"));
        } },
      ], data.pools, { id: "fund-pools-table" }, { rowAttrs: function (p) { return { "data-program": p.program }; } }));
      SG.fill(donors, data.pools.map(function (p) {
        return SG.el("section", { class: "card", id: "donors-" + p.program, "data-program": p.program },
          SG.el("h3", {}, SG.t("fund.donors", { program: programLabel(p.program) })),
          p.donors.length ? SG.table([
            { key: "donor", label: SG.t("fund.donor"), rowHeader: true },
            { key: "amount_fen", label: SG.t("fund.net"), fen: true },
          ], p.donors, { class: "donors-table" }) : SG.el("p", { class: "muted" }, SG.t("fund.donors_none")));
      }));
    }
    var chosen = program.value;
    SG.fill(program, data.pools.map(function (p) { return SG.el("option", { value: p.program }, programLabel(p.program)); }));
    if (chosen && data.pools.some(function (p) { return p.program === chosen; })) program.value = chosen;
    submit.disabled = !data.pools.length;
  }

  function drawRecords(lines) {
    recordsTitle.textContent = SG.t("fund.records", { year: year.value });
    var rows = lines.filter(function (e) { return e.detail && e.detail.year === Number(year.value); }).reverse();
    if (!rows.length) {
      SG.fill(records, SG.el("p", { class: "muted" }, SG.t("fund.records_none")));
      return;
    }
    SG.fill(records, SG.table([
      { key: "at", label: SG.t("fund.rec_at"), render: function (e) { return SG.time(e.detail.at || e.at); } },
      { key: "actor", label: SG.t("fund.rec_actor"), render: function (e) { return e.actor; } },
      { key: "kind", label: SG.t("fund.rec_kind"), render: function (e) {
        return SG.el("span", { class: "kind-" + e.detail.kind }, SG.t("fund.kind_short." + e.detail.kind));
      } },
      { key: "program", label: SG.t("fund.rec_program"), render: function (e) { return programLabel(e.detail.program || e.target); } },
      { key: "donor", label: SG.t("fund.rec_donor"), render: function (e) { return e.detail.donor; } },
      { key: "amount_fen", label: SG.t("fund.rec_amount"), fen: true, render: function (e) {
        return (e.detail.kind === "withdrawal" ? "-" : "") + SG.yuan(e.detail.amount_fen);
      } },
      { key: "contribution_id", label: SG.t("fund.rec_id"), render: function (e) { return SG.el("span", { class: "mono" }, e.detail.contribution_id); } },
      { key: "note", label: SG.t("fund.rec_note"), render: function (e) { return e.detail.note || ""; } },
    ], rows, { id: "records-table" }));
  }

  function loadRecords() {
    var y = year.value;
    var q = SG.query({ action: "pool.contribution", from: y + "-01-01", to: y + "-12-31", limit: 10000 });
    return SG.api("GET", "/admin/v1/audit" + q, null, { accept: "application/x-ndjson" }).then(function (r) {
      if (!r.ok) { SG.fill(records, SG.problem(r)); return; }
      drawRecords(SG.ndjson(r.text));
    });
  }

  function load() {
    SG.fieldErrors(app, []);
    SG.clear(loadProblem);
    return SG.api("GET", "/admin/v1/pools" + SG.query({ year: year.value })).then(function (r) {
      if (!r.ok) {
        var rest = r.status === 400 && r.data ? SG.fieldErrors(app, r.data.errors) : null;
        if (!rest || rest.length) loadProblem.append(SG.problem(r));
        return;
      }
      drawPools(r.data);
      app.setAttribute("data-loaded", String(Date.now()));
      return loadRecords();
    });
  }

  function message(cls, text, code) {
    return SG.el("p", { class: cls, role: cls === "error" ? "alert" : "status", "data-code": code || null }, text);
  }

  function send() {
    SG.clear(result);
    var local = [];
    var fen = SG.parseYuan(amount.value);
    if (fen === null || fen <= 0) local.push({ field: "amount_fen", message: SG.t("fund.bad_amount") });
    if (!donor.value.trim()) local.push({ field: "donor", message: SG.t("fund.need_donor") });
    SG.fieldErrors(app, local);
    if (local.length) return;
    var body = { contribution_id: cid.value.trim(), year: Number(year.value), donor: donor.value.trim(), amount_fen: fen, kind: kind.value };
    if (note.value.trim()) body.note = note.value.trim();
    var p = program.value;
    var vars = { id: body.contribution_id, amount: SG.yuan(fen), program: programLabel(p), year: body.year, donor: body.donor };
    var row = current && current.pools.filter(function (x) { return x.program === p; })[0];
    vars.paid = row ? SG.yuan(row.paid_fen) : "?";
    submit.disabled = true;
    SG.api("POST", "/admin/v1/pools/" + encodeURIComponent(p) + "/contributions", body).then(function (r) {
      var d = r.data || {};
      if (r.status === 201) {
        var pool = d.pool || {};
        result.append(message("notice", SG.t("fund.done." + body.kind, Object.assign(vars, { budget: SG.yuan(pool.budget_fen), left: SG.yuan(pool.left_fen) })), "recorded"));
        amount.value = ""; note.value = ""; amountHint.textContent = "\u00a0";
        cid.value = newId();
        return load();
      }
      if (r.status === 200) {
        result.append(message("notice", SG.t("fund.replayed", vars), "replayed"));
        cid.value = newId();
        return load();
      }
      var code = d.code || String(r.status);
      if (r.status === 400) {
        var rest = SG.fieldErrors(app, d.errors);
        result.append(message("error", SG.t("fund.err.invalid_request"), code));
        rest.forEach(function (e) { result.append(message("error", e.field + ": " + e.message, code)); });
        return;
      }
      if (r.status === 503) { result.append(SG.problem(r)); return; }
      var known = "fund.err." + code;
      var text = SG.t(known, vars);
      if (text === known) { result.append(SG.problem(r)); return; }
      result.append(message("error", text, code));
      if (d.detail) result.append(SG.el("p", { class: "muted detail" }, SG.t("fund.err.detail", { detail: d.detail })));
    }).catch(function () {
      result.append(message("error", SG.t("common.error")));
    }).then(function () { submit.disabled = !(current && current.pools.length); });
  }

  SG.api("GET", "/admin/v1/rulesets").then(function (r) {
    ((r.ok && r.data && r.data.rulesets) || []).forEach(function (s) { s.programs.forEach(function (p) { names[p.id] = p.name; }); });
  }).catch(function () {}).then(function () { syncKind(); return load(); });
});
