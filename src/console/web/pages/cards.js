// cards page (救助对象): look a card up (its eligibility, fields, this year's use of each program's annual cap and
// its settlements), edit or suspend it, and import a file of cards (NDJSON, or CSV turned into NDJSON here) with
// upload progress and the rejected lines. A street account sees only its street's cards: the API answers 404 for
// any other, and the page shows exactly that.
"use strict";
SG.strings({
  zh: {
    "cards.lookup": "查询救助对象",
    "cards.card_id": "卡号",
    "cards.find": "查询",
    "cards.not_found": "未找到卡号为 {id} 的救助对象。",
    "cards.bad_id": "卡号应为 1–64 位字母、数字或 . _ : -。",
    "cards.create": "新建此卡",
    "cards.eligibility": "今日结算资格",
    "cards.eligible": "可以结算",
    "cards.ineligible.suspended": "不可结算：资格已暂停",
    "cards.ineligible.not_yet_valid": "不可结算：尚未生效",
    "cards.ineligible.expired": "不可结算：已过期",
    "cards.status": "状态",
    "status.active": "正常",
    "status.suspended": "已暂停",
    "cards.category": "救助类别",
    "cards.validity": "有效期",
    "cards.valid_from": "生效日期",
    "cards.valid_until": "截止日期",
    "cards.tags": "标签",
    "cards.tags_hint": "多个标签用逗号分隔",
    "cards.street": "街道",
    "cards.community": "社区",
    "cards.usage": "{year} 年各救助项目额度使用情况",
    "cards.usage_none": "本年度尚无任何项目支付。",
    "cards.usage_no_rules": "街道账户看不到救助规则，此处只列已支付金额。",
    "cards.program": "救助项目",
    "cards.paid": "已支付",
    "cards.cap": "年度封顶",
    "cards.left": "剩余额度",
    "cards.used": "已用比例",
    "cards.deductible": "起付线（已满足 / 标准）",
    "cards.no_cap": "不封顶",
    "cards.not_covered": "本类别不在当前规则内",
    "cards.settlements": "{year} 年结算记录（{n} 笔）",
    "cards.settlements_none": "本年度暂无结算记录。",
    "cards.col.settled_at": "结算时间",
    "cards.col.hospital": "医院",
    "cards.col.hsid": "医院结算号",
    "cards.col.visit": "就诊",
    "cards.col.total": "总费用",
    "cards.col.insurance": "医保支付",
    "cards.col.relief": "救助金额",
    "cards.col.patient": "个人负担",
    "cards.col.status": "状态",
    "cards.col.payments": "各项目支付",
    "visit.outpatient": "门诊",
    "visit.chronic": "门诊慢特病",
    "visit.inpatient": "住院",
    "settlement.settled": "已结算",
    "settlement.reversed": "已冲正",
    "cards.reversed_at": "冲正于 {at}",
    "cards.edit": "编辑",
    "cards.suspend": "暂停资格",
    "cards.suspend_title": "暂停救助资格",
    "cards.suspend_body": "确定暂停卡号 {id} 的救助资格吗？暂停后各医院将不能再为其结算，已有结算不受影响。",
    "cards.suspended_ok": "卡号 {id} 已暂停。",
    "cards.edit_title": "编辑救助对象 {id}",
    "cards.new_title": "新建救助对象 {id}",
    "cards.saved": "卡号 {id} 已保存。",
    "cards.import": "批量导入",
    "cards.import_hint": "NDJSON 文件（每行一个救助对象）或 CSV 文件（表头 card_id,category,valid_from,valid_until,status,tags,street,community，标签用分号分隔）。有效的行会被保存，有误的行逐行列出。",
    "cards.import_file": "导入文件",
    "cards.import_start": "开始导入",
    "cards.import_pick": "请先选择文件。",
    "cards.import_progress": "上传进度",
    "cards.import_uploading": "正在上传：{pct}%",
    "cards.import_processing": "已上传，正在校验并保存……",
    "cards.import_done": "导入完成：保存 {imported} 条，拒绝 {rejected} 条。",
    "cards.import_rejected": "被拒绝的行",
    "cards.import_line": "行号",
    "cards.import_reason": "原因",
    "cards.import_more": "另有 {n} 条被拒绝的行未列出。",
    "cards.import_bad_header": "CSV 表头应为 card_id,category,valid_from,valid_until,status,tags,street,community（street、community 可省略）。",
    "cards.import_fields": "CSV 该行有 {n} 个字段，应为 6 至 8 个",
    "cards.import_failed": "导入失败",
    "tag.elderly_80": "80 岁以上",
    "tag.disabled": "残疾",
  },
  en: {
    "cards.lookup": "Find a cardholder",
    "cards.card_id": "Card number",
    "cards.find": "Find",
    "cards.not_found": "No cardholder with card number {id}.",
    "cards.bad_id": "A card number is 1–64 letters, digits or . _ : -.",
    "cards.create": "Create this card",
    "cards.eligibility": "Eligible today",
    "cards.eligible": "Eligible",
    "cards.ineligible.suspended": "Not eligible: suspended",
    "cards.ineligible.not_yet_valid": "Not eligible: not yet valid",
    "cards.ineligible.expired": "Not eligible: expired",
    "cards.status": "Status",
    "status.active": "Active",
    "status.suspended": "Suspended",
    "cards.category": "Category",
    "cards.validity": "Valid",
    "cards.valid_from": "Valid from",
    "cards.valid_until": "Valid until",
    "cards.tags": "Tags",
    "cards.tags_hint": "Separate tags with commas",
    "cards.street": "Street",
    "cards.community": "Community",
    "cards.usage": "Use of each program's annual cap in {year}",
    "cards.usage_none": "No program has paid anything this year.",
    "cards.usage_no_rules": "A street account cannot read the rules: only the amounts paid are listed.",
    "cards.program": "Program",
    "cards.paid": "Paid",
    "cards.cap": "Annual cap",
    "cards.left": "Left",
    "cards.used": "Used",
    "cards.deductible": "Deductible (met / set)",
    "cards.no_cap": "No cap",
    "cards.not_covered": "Category not covered by the rules in force",
    "cards.settlements": "Settlements in {year} ({n})",
    "cards.settlements_none": "No settlements this year.",
    "cards.col.settled_at": "Settled at",
    "cards.col.hospital": "Hospital",
    "cards.col.hsid": "Hospital's id",
    "cards.col.visit": "Visit",
    "cards.col.total": "Total",
    "cards.col.insurance": "Insurance",
    "cards.col.relief": "Relief",
    "cards.col.patient": "Patient",
    "cards.col.status": "Status",
    "cards.col.payments": "By program",
    "visit.outpatient": "Outpatient",
    "visit.chronic": "Chronic outpatient",
    "visit.inpatient": "Inpatient",
    "settlement.settled": "Settled",
    "settlement.reversed": "Reversed",
    "cards.reversed_at": "reversed {at}",
    "cards.edit": "Edit",
    "cards.suspend": "Suspend",
    "cards.suspend_title": "Suspend the card",
    "cards.suspend_body": "Suspend card {id}? Hospitals will no longer be able to settle with it; past settlements stay as they are.",
    "cards.suspended_ok": "Card {id} is suspended.",
    "cards.edit_title": "Edit cardholder {id}",
    "cards.new_title": "New cardholder {id}",
    "cards.saved": "Card {id} saved.",
    "cards.import": "Import",
    "cards.import_hint": "An NDJSON file (one cardholder per line) or a CSV file (header card_id,category,valid_from,valid_until,status,tags,street,community; tags separated by semicolons). Valid lines are stored; each wrong line is listed.",
    "cards.import_file": "File to import",
    "cards.import_start": "Import",
    "cards.import_pick": "Choose a file first.",
    "cards.import_progress": "Upload",
    "cards.import_uploading": "Uploading: {pct}%",
    "cards.import_processing": "Uploaded; checking and storing…",
    "cards.import_done": "Import finished: {imported} stored, {rejected} rejected.",
    "cards.import_rejected": "Rejected lines",
    "cards.import_line": "Line",
    "cards.import_reason": "Reason",
    "cards.import_more": "{n} more rejected lines are not listed.",
    "cards.import_bad_header": "The CSV header must be card_id,category,valid_from,valid_until,status,tags,street,community (street and community may be left out).",
    "cards.import_fields": "this CSV line has {n} fields; 6 to 8 are expected",
    "cards.import_failed": "The import failed",
    "tag.elderly_80": "Aged 80+",
    "tag.disabled": "Disabled",
  },
});

SG.page(function (app) {
  var isAdmin = SG.user && SG.user.role === "admin";
  var ownStreet = SG.user ? SG.user.street : null;
  var today = SG.today();
  var year = today.slice(0, 4);
  var latest = 0; // the newest lookup: an older answer arriving after it is dropped
  var rulesPromise = isAdmin ? SG.api("GET", "/admin/v1/rulesets") : Promise.resolve(null);

  // a known label translated, with the raw one beside it ("低保 dibao"); an unknown one as it is
  function label(prefix, value) {
    var key = prefix + value;
    var t = SG.t(key);
    if (t === key) return SG.el("span", {}, value);
    return SG.el("span", {}, t, SG.el("span", { class: "key-sub" }, value));
  }
  function badge(kind, text) { return SG.el("span", { class: "badge " + kind }, text); }

  // ---- lookup ----
  var idInput = SG.el("input", { id: "card-id", name: "card_id", required: true, maxlength: 64, autocomplete: "off", spellcheck: "false" });
  var lookup = SG.el("form", { id: "card-lookup", class: "inline", role: "search" },
    SG.el("label", { for: "card-id" }, SG.t("cards.card_id"), idInput),
    SG.el("button", { type: "submit", id: "card-find" }, SG.t("cards.find")));
  var result = SG.el("div", { id: "card-result", class: "section" });
  lookup.addEventListener("submit", function (ev) {
    ev.preventDefault();
    find(idInput.value.trim());
  });

  // ---- import ----
  var importSection = drawImport();

  app.append(
    SG.el("section", { class: "section", "aria-labelledby": "lookup-h" }, SG.el("h2", { id: "lookup-h" }, SG.t("cards.lookup")), lookup),
    result,
    importSection);

  var initial = new URLSearchParams(window.location.search).get("card");
  if (initial) { idInput.value = initial; find(initial); } else { idInput.focus(); }

  function find(id) {
    var mine = ++latest;
    SG.clear(result);
    if (!/^[A-Za-z0-9._:-]{1,64}$/.test(id)) {
      result.append(SG.el("p", { class: "error", role: "alert", id: "card-error" }, SG.t("cards.bad_id")));
      return;
    }
    var url = new URL(window.location.href);
    url.searchParams.set("card", id);
    window.history.replaceState(null, "", url.pathname + url.search);
    result.append(SG.el("p", { class: "muted" }, SG.t("common.loading")));
    var path = "/admin/v1/cardholders/" + encodeURIComponent(id);
    return Promise.all([SG.api("GET", path), SG.api("GET", path + "/settlements"), rulesPromise]).then(function (rs) {
      var card = rs[0], hist = rs[1], rules = rs[2];
      if (mine !== latest) return;
      SG.clear(result);
      if (card.status === 404) {
        result.append(SG.el("p", { class: "error", role: "alert", id: "card-notfound", "data-code": (card.data && card.data.code) || "404" },
          SG.t("cards.not_found", { id: id })));
        if (isAdmin) {
          result.append(SG.el("p", {}, SG.el("button", { type: "button", id: "card-create", class: "secondary", onclick: function () {
            editForm({ card_id: id, category: "", valid_from: today, valid_until: year + "-12-31", status: "active", tags: [], street: null, community: null }, true);
          } }, SG.t("cards.create"))));
        }
        return;
      }
      if (!card.ok) { result.append(SG.problem(card)); return; }
      drawCard(card.data, hist.ok ? hist.data : null, hist.ok ? null : hist, rules && rules.ok ? rulesInForce(rules.data.rulesets || []) : null);
    }).catch(function (e) {
      SG.clear(result);
      result.append(SG.el("p", { class: "error", role: "alert" }, SG.t("common.error") + ": " + e));
    });
  }

  // the ruleset in force today: the highest version whose effective_from <= today
  function rulesInForce(list) {
    var best = null;
    list.forEach(function (r) { if (r.effective_from <= today && (!best || r.version > best.version)) best = r; });
    return best;
  }

  function eligibility(card) {
    if (card.status === "suspended") return "suspended";
    if (today < card.valid_from) return "not_yet_valid";
    if (today > card.valid_until) return "expired";
    return null;
  }

  function drawCard(card, hist, histError, ruleset) {
    var why = eligibility(card);
    var head = SG.el("div", { class: "card-head" },
      SG.el("h2", { id: "card-title" }, SG.t("cards.card_id") + " " + card.card_id),
      badge(why ? "bad" : "ok", why ? SG.t("cards.ineligible." + why) : SG.t("cards.eligible")),
      SG.el("div", { class: "actions" },
        SG.el("button", { type: "button", id: "card-edit", onclick: function () { editForm(card, false); } }, SG.t("cards.edit")),
        card.status === "active" ? SG.el("button", { type: "button", id: "card-suspend", class: "danger", onclick: function () { suspend(card); } }, SG.t("cards.suspend")) : null));
    head.querySelector(".badge").id = "card-eligibility";
    var tags = (card.tags || []).length ? card.tags.map(function (t, i) { return [i ? SG.t("fe2.sep") : "", label("tag.", t)]; }) : SG.el("span", { class: "muted" }, SG.t("common.none"));
    var facts = SG.el("dl", { class: "facts", id: "card-facts" },
      SG.el("dt", {}, SG.t("cards.status")), SG.el("dd", { "data-field": "status" }, badge(card.status, SG.t("status." + card.status))),
      SG.el("dt", {}, SG.t("cards.category")), SG.el("dd", { "data-field": "category" }, label("cat.", card.category)),
      SG.el("dt", {}, SG.t("cards.validity")), SG.el("dd", { "data-field": "validity" }, card.valid_from + " — " + card.valid_until),
      SG.el("dt", {}, SG.t("cards.tags")), SG.el("dd", { "data-field": "tags" }, tags),
      SG.el("dt", {}, SG.t("cards.street")), SG.el("dd", { "data-field": "street" }, card.street || SG.el("span", { class: "muted" }, SG.t("common.none"))),
      SG.el("dt", {}, SG.t("cards.community")), SG.el("dd", { "data-field": "community" }, card.community || SG.el("span", { class: "muted" }, SG.t("common.none"))));
    var box = SG.el("section", { class: "card", id: "card-box", "data-card": card.card_id, "aria-labelledby": "card-title" }, head, facts);
    result.append(box,
      SG.el("div", { id: "card-form-slot" }),
      drawUsage(card, ruleset),
      drawHistory(card, hist, histError, ruleset));
  }

  function drawUsage(card, ruleset) {
    var used = {};
    (card.usage || []).forEach(function (u) { used[u.program] = u; });
    var rows = [];
    if (ruleset) {
      ruleset.programs.forEach(function (p) {
        var terms = (p.categories || {})[card.category];
        if (!terms && !used[p.id]) return;
        rows.push({ id: p.id, name: p.name, terms: terms || null, usage: used[p.id] || { paid_fen: 0, deductible_met_fen: 0 } });
        delete used[p.id];
      });
    }
    Object.keys(used).sort().forEach(function (id) { rows.push({ id: id, name: null, terms: null, usage: used[id], unknown: !!ruleset }); });
    var section = SG.el("section", { class: "section", "aria-labelledby": "usage-h" },
      SG.el("h2", { id: "usage-h" }, SG.t("cards.usage", { year: card.year })));
    if (!ruleset) section.append(SG.el("p", { class: "hint" }, SG.t("cards.usage_no_rules")));
    if (!rows.length) { section.append(SG.el("p", { class: "muted", id: "card-usage-none" }, SG.t("cards.usage_none"))); return section; }
    var cols = [
      { label: SG.t("cards.program"), render: function (r) { return [r.name || r.id, r.name ? SG.el("span", { class: "key-sub" }, r.id) : null]; } },
      { label: SG.t("cards.paid"), fen: true, render: function (r) { return SG.el("span", { "data-fen": r.usage.paid_fen }, SG.yuan(r.usage.paid_fen)); } },
      { label: SG.t("cards.cap"), fen: true, render: function (r) {
        if (!r.terms) return ruleset ? SG.el("span", { class: "muted" }, SG.t("cards.not_covered")) : "—";
        return r.terms.annual_cap_fen === undefined || r.terms.annual_cap_fen === null ? SG.el("span", { class: "muted" }, SG.t("cards.no_cap")) : SG.yuan(r.terms.annual_cap_fen);
      } },
      { label: SG.t("cards.left"), fen: true, render: function (r) {
        if (!r.terms || r.terms.annual_cap_fen === undefined || r.terms.annual_cap_fen === null) return "—";
        return SG.yuan(Math.max(0, r.terms.annual_cap_fen - r.usage.paid_fen));
      } },
      { label: SG.t("cards.used"), render: function (r) {
        var cap = r.terms ? r.terms.annual_cap_fen : null;
        if (cap === undefined || cap === null || cap === 0) return "—";
        var lvl = SG.level(r.usage.paid_fen, cap);
        var pct = SG.percent(r.usage.paid_fen, cap);
        var fill = SG.el("span", { class: "lvl-" + lvl });
        fill.style.width = Math.min(100, Number(pct)) + "%";
        var bar = SG.el("div", { class: "bar", role: "img", "aria-label": pct + "%" }, fill);
        return [SG.el("span", { class: "lvl-" + lvl, "data-level": lvl }, pct + "%"), bar];
      } },
      { label: SG.t("cards.deductible"), fen: true, render: function (r) {
        var set = r.terms && r.terms.deductible_fen ? SG.yuan(r.terms.deductible_fen) : "0.00";
        return SG.yuan(r.usage.deductible_met_fen) + " / " + (r.terms ? set : "—");
      } },
    ];
    var table = SG.table(cols, rows, { id: "card-usage", class: "data" });
    table.querySelectorAll("tbody tr").forEach(function (tr, i) {
      tr.setAttribute("data-program", rows[i].id);
      tr.cells[4].classList.add("share");
      var th = SG.el("th", { scope: "row" });
      while (tr.cells[0].firstChild) th.appendChild(tr.cells[0].firstChild);
      tr.replaceChild(th, tr.cells[0]);
    });
    section.append(table);
    return section;
  }

  function drawHistory(card, hist, histError, ruleset) {
    var names = {};
    if (ruleset) ruleset.programs.forEach(function (p) { names[p.id] = p.name; });
    var section = SG.el("section", { class: "section", "aria-labelledby": "hist-h" });
    if (histError) { section.append(SG.problem(histError)); return section; }
    var list = hist.settlements || [];
    section.append(SG.el("h2", { id: "hist-h" }, SG.t("cards.settlements", { year: hist.year, n: list.length })));
    if (!list.length) { section.append(SG.el("p", { class: "muted", id: "card-settlements-none" }, SG.t("cards.settlements_none"))); return section; }
    var cols = [
      { label: SG.t("cards.col.settled_at"), render: function (s) { return SG.el("span", { class: "mono nowrap" }, SG.at(s.settled_at)); } },
      { label: SG.t("cards.col.hospital"), key: "hospital_id" },
      { label: SG.t("cards.col.hsid"), render: function (s) { return SG.el("span", { class: "mono nowrap" }, s.hospital_settlement_id); } },
      { label: SG.t("cards.col.visit"), render: function (s) { return s.visit.date + " " + SG.t("visit." + s.visit.type); } },
      { label: SG.t("cards.col.total"), fen: true, key: "total_fen" },
      { label: SG.t("cards.col.insurance"), fen: true, key: "insurance_fen" },
      { label: SG.t("cards.col.relief"), fen: true, key: "relief_fen" },
      { label: SG.t("cards.col.patient"), fen: true, key: "patient_fen" },
      { label: SG.t("cards.col.payments"), render: function (s) {
        return (s.payments || []).map(function (p) {
          return SG.el("div", { class: "nowrap" }, (names[p.program] || p.program) + " " + SG.yuan(p.paid_fen));
        });
      } },
      { label: SG.t("cards.col.status"), render: function (s) {
        return [badge(s.status, SG.t("settlement." + s.status)),
          s.reversed_at ? SG.el("div", { class: "hint" }, SG.t("cards.reversed_at", { at: SG.at(s.reversed_at) })) : null];
      } },
    ];
    var table = SG.table(cols, list, { id: "card-settlements", class: "data" });
    table.querySelectorAll("tbody tr").forEach(function (tr, i) {
      tr.setAttribute("data-settlement", list[i].hospital_id + "/" + list[i].hospital_settlement_id);
      tr.className = list[i].status;
      tr.cells[tr.cells.length - 1].classList.add("status-cell");
    });
    section.append(SG.el("div", { class: "table-scroll" }, table));
    return section;
  }

  // ---- edit / create ----
  function editForm(card, isNew) {
    var slot = document.getElementById("card-form-slot") || result;
    SG.clear(slot);
    function field(id, key, text, input, hint) {
      input.id = id;
      input.setAttribute("data-field", key);
      input.name = key;
      return SG.el("div", { class: "field" }, SG.el("label", { for: id }, text), input, hint ? SG.el("span", { class: "hint" }, hint) : null);
    }
    var status = SG.el("select", {},
      ["active", "suspended"].map(function (s) { return SG.el("option", { value: s, selected: card.status === s }, SG.t("status." + s)); }));
    var category = SG.el("input", { value: card.category, required: true, maxlength: 64, list: "card-categories" });
    var categories = SG.el("datalist", { id: "card-categories" },
      ["tekun", "dibao", "dibao_edge", "low_income", "illness_poverty"].map(function (c) { return SG.el("option", { value: c }, SG.t("cat." + c)); }));
    var from = SG.dateInput({ value: card.valid_from, required: true });
    var until = SG.dateInput({ value: card.valid_until, required: true });
    var tags = SG.el("input", { value: (card.tags || []).join(", ") });
    var street = SG.el("input", { value: isAdmin ? (card.street || "") : ownStreet, maxlength: 64, readonly: !isAdmin });
    var community = SG.el("input", { value: card.community || "", maxlength: 64 });
    var message = SG.el("div", { id: "card-form-message" });
    var form = SG.el("form", { id: "card-form", class: "card editor", novalidate: true },
      SG.el("h2", { id: "card-form-h" }, SG.t(isNew ? "cards.new_title" : "cards.edit_title", { id: card.card_id })),
      SG.el("div", { class: "form-grid" },
        field("card-f-category", "category", SG.t("cards.category"), category),
        field("card-f-status", "status", SG.t("cards.status"), status),
        field("card-f-valid_from", "valid_from", SG.t("cards.valid_from"), from),
        field("card-f-valid_until", "valid_until", SG.t("cards.valid_until"), until),
        field("card-f-tags", "tags", SG.t("cards.tags"), tags, SG.t("cards.tags_hint")),
        field("card-f-street", "street", SG.t("cards.street"), street),
        field("card-f-community", "community", SG.t("cards.community"), community)),
      categories, message,
      SG.el("p", { class: "actions" },
        SG.el("button", { type: "submit", id: "card-save" }, SG.t("common.save")),
        SG.el("button", { type: "button", class: "secondary", id: "card-cancel", onclick: function () { SG.clear(slot); } }, SG.t("common.cancel"))));
    form.setAttribute("aria-labelledby", "card-form-h");
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      SG.clear(message);
      var bad = SG.dateErrors(form);
      if (category.value.trim() === "") bad.unshift({ field: "category", message: SG.t("fe2.required") });
      SG.fieldErrors(form, bad);
      if (bad.length) return;
      var body = {
        card_id: card.card_id,
        category: category.value.trim(),
        valid_from: from.value,
        valid_until: until.value,
        status: status.value,
        tags: tags.value.split(/[,，、]/).map(function (t) { return t.trim(); }).filter(function (t) { return t !== ""; }),
      };
      if (street.value.trim()) body.street = street.value.trim();
      if (community.value.trim()) body.community = community.value.trim();
      put(body, form, message, SG.t("cards.saved", { id: card.card_id }));
    });
    slot.append(form);
    category.focus();
  }

  // PUT the card; a 400's errors go next to the named inputs (tags[2] on the tags input), the rest in `message`
  function put(body, form, message, okText) {
    SG.clear(message);
    return SG.api("PUT", "/admin/v1/cardholders/" + encodeURIComponent(body.card_id), body).then(function (r) {
      if (r.ok) {
        return find(body.card_id).then(function () {
          var box = document.getElementById("card-box");
          if (box) box.insertAdjacentElement("beforebegin", SG.el("p", { class: "notice", role: "status", id: "card-saved" }, okText));
          return true;
        });
      }
      if (r.status === 400 && r.data && r.data.errors && form) {
        var errors = r.data.errors.map(function (e) { return { field: e.field.replace(/\[\d+\]$/, ""), message: e.message }; });
        var rest = SG.fieldErrors(form, errors);
        if (rest.length) message.append(SG.el("p", { class: "error", role: "alert" }, rest.map(function (e) { return e.field + ": " + e.message; }).join("; ")));
      } else {
        message.append(SG.problem(r));
      }
      return false;
    });
  }

  function suspend(card) {
    SG.confirm({ title: SG.t("cards.suspend_title"), body: SG.el("p", {}, SG.t("cards.suspend_body", { id: card.card_id })), ok: SG.t("cards.suspend"), danger: true }).then(function (yes) {
      if (!yes) { document.getElementById("card-suspend").focus(); return; }
      var body = { card_id: card.card_id, category: card.category, valid_from: card.valid_from, valid_until: card.valid_until, status: "suspended", tags: card.tags || [] };
      if (card.street) body.street = card.street;
      if (card.community) body.community = card.community;
      var slot = document.getElementById("card-form-slot");
      var message = SG.el("div", {});
      slot.append(message);
      put(body, null, message, SG.t("cards.suspended_ok", { id: card.card_id }));
    });
  }

  // ---- import ----
  function drawImport() {
    var file = SG.el("input", { type: "file", id: "import-file", accept: ".ndjson,.jsonl,.json,.csv,.txt,application/x-ndjson,text/csv" });
    var progress = SG.el("progress", { id: "import-progress", max: 100, value: 0, "aria-labelledby": "import-progress-label" });
    var progressText = SG.el("span", { id: "import-progress-text", class: "muted", role: "status" });
    var out = SG.el("div", { id: "import-result" });
    var start = SG.el("button", { type: "submit", id: "import-start" }, SG.t("cards.import_start"));
    var form = SG.el("form", { id: "import-form", class: "inline" },
      SG.el("label", { for: "import-file" }, SG.t("cards.import_file"), file),
      start,
      SG.el("span", { class: "field" }, SG.el("span", { id: "import-progress-label" }, SG.t("cards.import_progress")), progress),
      progressText);
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      SG.clear(out);
      var f = file.files && file.files[0];
      if (!f) { out.append(SG.el("p", { class: "error", role: "alert" }, SG.t("cards.import_pick"))); file.focus(); return; }
      start.disabled = true;
      progress.value = 0;
      progressText.textContent = "";
      var isCsv = /\.csv$/i.test(f.name) || f.type === "text/csv";
      (isCsv ? f.text().then(csvToNdjson) : Promise.resolve({ body: f, rejected: [] })).then(function (prepared) {
        if (prepared.error) {
          out.append(SG.el("p", { class: "error", role: "alert", id: "import-error" }, prepared.error));
          start.disabled = false;
          return;
        }
        upload(prepared.body, progress, progressText).then(function (r) {
          start.disabled = false;
          progressText.textContent = "";
          if (r.status !== 200 || !r.data) { out.append(SG.problem(r)); return; }
          var rejected = prepared.rejected.concat(r.data.rejected || []).sort(function (a, b) { return a.line - b.line; });
          var total = (r.data.rejected_total || 0) + prepared.rejected.length;
          out.append(SG.el("p", { class: !total ? "notice" : r.data.imported ? "warning" : "error", role: "status", id: "import-summary", "data-imported": r.data.imported, "data-rejected": total },
            SG.t("cards.import_done", { imported: SG.int(r.data.imported), rejected: SG.int(total) })));
          if (rejected.length) {
            var table = SG.table([
              { label: SG.t("cards.import_line"), num: true, key: "line" },
              { label: SG.t("cards.import_reason"), render: function (x) { return SG.el("span", { class: "wrap-anywhere" }, x.error); } },
            ], rejected, { id: "import-rejected", class: "data" });
            table.querySelectorAll("tbody tr").forEach(function (tr, i) { tr.setAttribute("data-line", rejected[i].line); });
            out.append(SG.el("h3", {}, SG.t("cards.import_rejected")), table);
            if (total > rejected.length) out.append(SG.el("p", { class: "muted" }, SG.t("cards.import_more", { n: SG.int(total - rejected.length) })));
          }
        });
      });
    });
    return SG.el("section", { class: "section card", "aria-labelledby": "import-h" },
      SG.el("h2", { id: "import-h" }, SG.t("cards.import")),
      SG.el("p", { class: "hint" }, SG.t("cards.import_hint")),
      form, out);
  }

  // POST the body with XMLHttpRequest (fetch reports no upload progress), the CSRF header as SG.api sends it
  function upload(body, progress, progressText) {
    return new Promise(function (resolve) {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/admin/v1/cardholders/import");
      xhr.setRequestHeader("content-type", "application/x-ndjson");
      xhr.setRequestHeader("x-csrf-token", SG.csrf);
      xhr.setRequestHeader("accept", "application/json");
      xhr.upload.addEventListener("progress", function (e) {
        if (!e.lengthComputable) return;
        var pct = Math.floor((e.loaded * 100) / Math.max(e.total, 1));
        progress.value = pct;
        progressText.textContent = SG.t("cards.import_uploading", { pct: pct });
      });
      xhr.upload.addEventListener("load", function () {
        progress.value = 100;
        progressText.textContent = SG.t("cards.import_processing");
      });
      function done() {
        var data = null;
        try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
        if (xhr.status === 401) window.location.assign("/login?expired=1");
        resolve({ status: xhr.status, ok: xhr.status >= 200 && xhr.status < 300, data: data, text: xhr.responseText });
      }
      xhr.addEventListener("load", function () { progress.value = 100; done(); });
      xhr.addEventListener("error", done);
      xhr.send(body);
    });
  }

  // A CSV file (the format of `settlegate cardholders import`) as NDJSON with the same line numbers: the header
  // becomes a blank line (skipped by the import), a line with the wrong number of fields is rejected here (and
  // sent blank), every other line becomes one cardholder object that the gateway validates.
  var COLUMNS = ["card_id", "category", "valid_from", "valid_until", "status", "tags", "street", "community"];
  function csvFields(line) {
    return line.replace(/\r$/, "").split(",").map(function (f) {
      f = f.trim();
      return f.length >= 2 && f[0] === '"' && f[f.length - 1] === '"' ? f.slice(1, -1) : f;
    });
  }
  function csvToNdjson(text) {
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    var lines = text.split("\n");
    var header = csvFields(lines[0] || "");
    if (header.length < 6 || header.length > COLUMNS.length || header.some(function (h, i) { return h !== COLUMNS[i]; })) {
      return { error: SG.t("cards.import_bad_header") };
    }
    var rejected = [];
    var out = lines.map(function (line, i) {
      if (i === 0 || line.trim() === "") return "";
      var f = csvFields(line);
      if (f.length < 6 || f.length > COLUMNS.length) {
        rejected.push({ line: i + 1, error: SG.t("cards.import_fields", { n: f.length }) });
        return "";
      }
      var card = { card_id: f[0], category: f[1], valid_from: f[2], valid_until: f[3], status: f[4],
        tags: f[5].split(";").filter(function (t) { return t !== ""; }) };
      if (f[6]) card.street = f[6];
      if (f[7]) card.community = f[7];
      return JSON.stringify(card);
    });
    return { body: out.join("\n") + "\n", rejected: rejected };
  }
});
