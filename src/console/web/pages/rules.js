// Rules page (救助规则): the published versions (GET /admin/v1/rulesets); two of them side by side, flattened to
// field paths, with the differing rows marked `diff`; a draft editor that starts from a published version (a form
// generated from the ruleset: every scalar an input whose data-field is the path a 400 names, amounts in yuan,
// ratios in percent, lists as comma-separated text); its preview over a period (POST /admin/v1/rulesets/preview:
// tables and grouped bar charts, baseline against draft); and its publication after a confirmation that names
// the effective date (POST /admin/v1/rulesets).
"use strict";
SG.strings({
  zh: {
    "rules.published": "已发布的版本",
    "rules.none": "还没有发布过规则。",
    "rules.version": "版本",
    "rules.version_n": "第 {v} 版",
    "rules.effective_from": "生效日期",
    "rules.published_at": "发布时间",
    "rules.programs": "救助项目",
    "rules.program": "救助项目",
    "rules.state": "状态",
    "rules.state.in_force": "现行",
    "rules.state.pending": "待生效",
    "rules.state.replaced": "已被替代",
    "rules.compare": "版本对比",
    "rules.compare_a": "版本 A",
    "rules.compare_b": "版本 B",
    "rules.only_diff": "只显示差异",
    "rules.compare_go": "对比",
    "rules.compare_need_two": "至少发布两个版本后才能对比。",
    "rules.diff_count": "第 {a} 版与第 {b} 版之间共有 {n} 处差异（已用底色标出）。",
    "rules.diff_none": "第 {a} 版与第 {b} 版的规则内容相同。",
    "rules.field": "字段",
    "rules.path": "字段路径",
    "rules.absent_program": "（无此项目）",
    "rules.absent_category": "（无此类别）",
    "rules.unlimited": "不限",
    "rules.all_types": "全部",
    "rules.no_tags": "无",
    "rules.no_pool": "不设资金池",
    "rules.zero": "0.00 元",
    "rules.yuan_value": "{yuan} 元",
    "rules.f.effective_from": "生效日期",
    "rules.f.name": "名称",
    "rules.f.visit_types": "就诊类型",
    "rules.f.covers": "支付范围",
    "rules.f.require_tags": "须具备的标签",
    "rules.f.annual_pool_fen": "年度资金池",
    "rules.f.ratio_bp": "救助比例",
    "rules.f.deductible_fen": "起付线",
    "rules.f.annual_cap_fen": "年度封顶",
    "rules.f.per_visit_cap_fen": "单次封顶",
    "rules.f.id": "项目代码",
    "rules.bucket.in_scope": "政策范围内",
    "rules.bucket.pre_self_pay": "先行自付",
    "rules.bucket.over_limit": "超限价",
    "rules.bucket.self_pay": "自费",
    "rules.visit.outpatient": "门诊",
    "rules.visit.chronic": "门诊慢特病",
    "rules.visit.inpatient": "住院",
    "rules.cat.dibao": "低保",
    "rules.cat.tekun": "特困",
    "rules.cat.low_income": "低收入",
    "rules.cat.illness_poverty": "因病致贫",
    "rules.draft": "起草新版本",
    "rules.draft_base": "底稿",
    "rules.draft_start": "以此版本起草",
    "rules.draft_intro": "草稿从第 {v} 版复制而来，修改后可先试算，再发布为第 {next} 版。发布前不影响任何结算。",
    "rules.draft_effective": "生效日期",
    "rules.draft_effective_hint": "就诊日期在此日及以后的结算按新版本计算",
    "rules.program_n": "救助项目 {n}",
    "rules.remove_program": "删除此项目",
    "rules.add_program": "添加救助项目",
    "rules.new_program": "新项目",
    "rules.p.id": "项目代码",
    "rules.p.id_hint": "小写字母、数字、下划线",
    "rules.p.name": "名称",
    "rules.p.covers": "支付范围（逗号分隔）",
    "rules.p.covers_hint": "in_scope 政策范围内、pre_self_pay 先行自付、over_limit 超限价、self_pay 自费",
    "rules.p.visit_types": "就诊类型（逗号分隔，留空为全部）",
    "rules.p.visit_types_hint": "outpatient 门诊、chronic 门诊慢特病、inpatient 住院",
    "rules.p.require_tags": "须具备的标签（逗号分隔，留空为无）",
    "rules.p.pool": "年度资金池（元，留空为不设）",
    "rules.categories": "各类对象的待遇",
    "rules.c.name": "对象类别",
    "rules.c.ratio": "救助比例（%）",
    "rules.c.deductible": "起付线（元）",
    "rules.c.annual_cap": "年度封顶（元，留空为不限）",
    "rules.c.per_visit_cap": "单次封顶（元，留空为不限）",
    "rules.c.actions": "操作",
    "rules.remove_category": "删除",
    "rules.remove_category_label": "删除类别 {name}",
    "rules.add_category": "添加类别",
    "rules.no_categories": "尚无类别：此项目不向任何对象支付。",
    "rules.period": "试算区间（按就诊日期）",
    "rules.period_from": "起始日期",
    "rules.period_to": "截止日期",
    "rules.preview": "校验并试算",
    "rules.publish": "发布…",
    "rules.cancel_draft": "放弃草稿",
    "rules.local.percent": "请输入百分比，例如 90 或 92.5。",
    "rules.local.yuan": "请输入金额（元），最多两位小数。",
    "rules.local.date": "请选择日期。",
    "rules.local.category": "请填写类别名称。",
    "rules.local.dup_category": "同一项目中类别 {name} 重复。",
    "rules.err.ratio": "比例须在 0% 到 100% 之间。",
    "rules.err.fen": "金额不能为负数，且不能超过 90,071,992,547,409.91 元。",
    "rules.err.id": "项目代码须为 1–64 个小写字母、数字或下划线。",
    "rules.err.dup_id": "项目代码重复。",
    "rules.err.name": "名称须为 1–128 个字符。",
    "rules.err.covers_empty": "至少选择一个支付范围。",
    "rules.err.covers_repeat": "支付范围不能重复。",
    "rules.err.visit_empty": "就诊类型不能为空（留空表示全部）。",
    "rules.err.visit_repeat": "就诊类型不能重复。",
    "rules.err.label": "须为 1–64 个可见字符，不含 , ; = | { } 和空格。",
    "rules.err.unknown": "无法识别：{message}",
    "rules.errors_title": "草稿有误，请修改标出的字段：",
    "rules.errors_other": "其他问题：",
    "rules.previewing": "正在试算……",
    "rules.result": "试算结果：就诊日期 {from} 至 {to}，共 {n} 笔结算",
    "rules.result_note": "“现行”按每笔结算当时所用的版本重算，“草稿”按本草稿重算；两者都从区间起点的零计数开始。",
    "rules.metric": "指标",
    "rules.baseline": "现行",
    "rules.draft_col": "草稿",
    "rules.delta": "差额",
    "rules.relief": "救助金额",
    "rules.patient": "个人负担",
    "rules.by_program": "按救助项目",
    "rules.by_category": "按对象类别",
    "rules.category": "对象类别",
    "rules.caps": "达到年度封顶的人数",
    "rules.caps_row": "有一笔支付被年度封顶限制的卡",
    "rules.cards": "张",
    "rules.pools": "资金池",
    "rules.pools_none": "草稿中没有设资金池的项目。",
    "rules.pool_year": "年度",
    "rules.pool_budget": "预算",
    "rules.pool_paid": "草稿下支付",
    "rules.pool_used": "使用率",
    "rules.pool_exhausted": "用尽日期",
    "rules.pool_not_exhausted": "未用尽",
    "rules.chart_program": "各救助项目的救助金额：现行与草稿（元）",
    "rules.chart_category": "各类对象的救助金额：现行与草稿（元）",
    "rules.publish_title": "确认发布",
    "rules.publish_date": "将于 {date} 生效",
    "rules.publish_body": "发布后为第 {next} 版，不能撤回或修改；就诊日期在 {date} 及以后的结算将按此版本计算。与底稿第 {base} 版相比有 {n} 处改动。",
    "rules.publish_past": "注意：生效日期早于今天（{today}），发布后立即用于今天的结算。",
    "rules.publish_confirm": "确认发布",
    "rules.change_sep": "：",
    "rules.more_changes": "……另有 {n} 处",
    "rules.publish_cancel": "取消",
    "rules.published_ok": "已发布第 {v} 版，将于 {date} 生效。",
    "rules.publishing": "正在发布……"
  },
  en: {
    "rules.published": "Published versions",
    "rules.none": "No ruleset has been published yet.",
    "rules.version": "Version",
    "rules.version_n": "Version {v}",
    "rules.effective_from": "Effective from",
    "rules.published_at": "Published at",
    "rules.programs": "Programs",
    "rules.program": "Program",
    "rules.state": "State",
    "rules.state.in_force": "in force",
    "rules.state.pending": "not yet in force",
    "rules.state.replaced": "replaced",
    "rules.compare": "Compare two versions",
    "rules.compare_a": "Version A",
    "rules.compare_b": "Version B",
    "rules.only_diff": "Differences only",
    "rules.compare_go": "Compare",
    "rules.compare_need_two": "Publish at least two versions to compare them.",
    "rules.diff_count": "{n} differences between version {a} and version {b} (highlighted).",
    "rules.diff_none": "Version {a} and version {b} have the same rules.",
    "rules.field": "Field",
    "rules.path": "Path",
    "rules.absent_program": "(no such program)",
    "rules.absent_category": "(no such category)",
    "rules.unlimited": "no limit",
    "rules.all_types": "all",
    "rules.no_tags": "none",
    "rules.no_pool": "no pool",
    "rules.zero": "0.00 yuan",
    "rules.yuan_value": "{yuan} yuan",
    "rules.f.effective_from": "Effective from",
    "rules.f.name": "Name",
    "rules.f.visit_types": "Visit types",
    "rules.f.covers": "Pays from",
    "rules.f.require_tags": "Required tags",
    "rules.f.annual_pool_fen": "Annual pool",
    "rules.f.ratio_bp": "Ratio",
    "rules.f.deductible_fen": "Deductible",
    "rules.f.annual_cap_fen": "Annual cap",
    "rules.f.per_visit_cap_fen": "Per-visit cap",
    "rules.f.id": "Program id",
    "rules.bucket.in_scope": "in scope",
    "rules.bucket.pre_self_pay": "pre self-pay",
    "rules.bucket.over_limit": "over limit",
    "rules.bucket.self_pay": "self-pay",
    "rules.visit.outpatient": "outpatient",
    "rules.visit.chronic": "chronic",
    "rules.visit.inpatient": "inpatient",
    "rules.cat.dibao": "dibao",
    "rules.cat.tekun": "tekun",
    "rules.cat.low_income": "low income",
    "rules.cat.illness_poverty": "illness poverty",
    "rules.draft": "Draft a new version",
    "rules.draft_base": "Start from",
    "rules.draft_start": "Draft from this version",
    "rules.draft_intro": "The draft is a copy of version {v}: change it, preview it, then publish it as version {next}. Nothing is settled differently until it is published.",
    "rules.draft_effective": "Effective from",
    "rules.draft_effective_hint": "settlements of visits on or after this day use the new version",
    "rules.program_n": "Program {n}",
    "rules.remove_program": "Remove this program",
    "rules.add_program": "Add a program",
    "rules.new_program": "New program",
    "rules.p.id": "Program id",
    "rules.p.id_hint": "lower-case letters, digits, underscores",
    "rules.p.name": "Name",
    "rules.p.covers": "Pays from (comma-separated)",
    "rules.p.covers_hint": "in_scope, pre_self_pay, over_limit, self_pay",
    "rules.p.visit_types": "Visit types (comma-separated, empty = all)",
    "rules.p.visit_types_hint": "outpatient, chronic, inpatient",
    "rules.p.require_tags": "Required tags (comma-separated, empty = none)",
    "rules.p.pool": "Annual pool (yuan, empty = none)",
    "rules.categories": "Terms per category",
    "rules.c.name": "Category",
    "rules.c.ratio": "Ratio (%)",
    "rules.c.deductible": "Deductible (yuan)",
    "rules.c.annual_cap": "Annual cap (yuan, empty = none)",
    "rules.c.per_visit_cap": "Per-visit cap (yuan, empty = none)",
    "rules.c.actions": "Actions",
    "rules.remove_category": "Remove",
    "rules.remove_category_label": "Remove category {name}",
    "rules.add_category": "Add a category",
    "rules.no_categories": "No categories: this program pays nobody.",
    "rules.period": "Preview period (visit dates)",
    "rules.period_from": "From",
    "rules.period_to": "To",
    "rules.preview": "Validate and preview",
    "rules.publish": "Publish…",
    "rules.cancel_draft": "Discard draft",
    "rules.local.percent": "Enter a percentage, e.g. 90 or 92.5.",
    "rules.local.yuan": "Enter an amount in yuan, at most two decimals.",
    "rules.local.date": "Choose a date.",
    "rules.local.category": "Enter the category's name.",
    "rules.local.dup_category": "Category {name} appears twice in this program.",
    "rules.err.ratio": "The ratio must be between 0 % and 100 %.",
    "rules.err.fen": "The amount may not be negative nor above 90,071,992,547,409.91 yuan.",
    "rules.err.id": "A program id is 1–64 lower-case letters, digits or underscores.",
    "rules.err.dup_id": "This program id is used twice.",
    "rules.err.name": "The name must be 1–128 characters.",
    "rules.err.covers_empty": "Name at least one bucket.",
    "rules.err.covers_repeat": "A bucket may not repeat.",
    "rules.err.visit_empty": "Visit types may not be empty (leave the field empty for all).",
    "rules.err.visit_repeat": "A visit type may not repeat.",
    "rules.err.label": "1–64 visible characters, none of , ; = | { } or spaces.",
    "rules.err.unknown": "Not recognised: {message}",
    "rules.errors_title": "The draft has errors; fix the marked fields:",
    "rules.errors_other": "Other problems:",
    "rules.previewing": "Previewing…",
    "rules.result": "Preview: visits from {from} to {to}, {n} settlements",
    "rules.result_note": "\"Baseline\" replays each settlement under the version it used, \"draft\" under this draft; both start from zero counters at the start of the period.",
    "rules.metric": "Figure",
    "rules.baseline": "Baseline",
    "rules.draft_col": "Draft",
    "rules.delta": "Difference",
    "rules.relief": "Relief",
    "rules.patient": "Paid by patients",
    "rules.by_program": "By program",
    "rules.by_category": "By category",
    "rules.category": "Category",
    "rules.caps": "Cards at their annual cap",
    "rules.caps_row": "cards with a payment limited by the annual cap",
    "rules.cards": "cards",
    "rules.pools": "Pools",
    "rules.pools_none": "No program of the draft has a pool.",
    "rules.pool_year": "Year",
    "rules.pool_budget": "Budget",
    "rules.pool_paid": "Paid under the draft",
    "rules.pool_used": "Used",
    "rules.pool_exhausted": "Exhausted on",
    "rules.pool_not_exhausted": "not exhausted",
    "rules.chart_program": "Relief per program: baseline and draft (yuan)",
    "rules.chart_category": "Relief per category: baseline and draft (yuan)",
    "rules.publish_title": "Publish this ruleset?",
    "rules.publish_date": "takes effect on {date}",
    "rules.publish_body": "It becomes version {next} and cannot be withdrawn or changed; settlements of visits on or after {date} will use it. {n} changes from version {base}, the draft's starting point.",
    "rules.publish_past": "Note: the effective date is before today ({today}): today's settlements use it as soon as it is published.",
    "rules.publish_confirm": "Publish",
    "rules.change_sep": ": ",
    "rules.more_changes": "… and {n} more",
    "rules.publish_cancel": "Cancel",
    "rules.published_ok": "Version {v} published; it takes effect on {date}.",
    "rules.publishing": "Publishing…"
  }
});

SG.page(function (app) {
  var FEN_TERMS = ["deductible_fen", "annual_cap_fen", "per_visit_cap_fen"];
  var rulesets = [];
  var draftBase = null; // the version the draft started from
  var seq = 0;          // for unique element ids

  function uid(prefix) { seq += 1; return prefix + "-" + seq; }
  function byVersion(v) { return rulesets.filter(function (r) { return r.version === Number(v); })[0]; }
  function latest() { return rulesets.length ? rulesets[rulesets.length - 1] : null; }
  function catLabel(c) {
    var k = "rules.cat." + c, t = SG.t(k);
    return t === k || t === c ? c : SG.lang === "zh" ? t + "（" + c + "）" : t + " (" + c + ")";
  }
  function listText(list, prefix) {
    return list.map(function (x) { var k = prefix + x, t = SG.t(k); return t === k ? x : t; }).join(SG.lang === "zh" ? "、" : ", ");
  }
  function splitList(text) { return String(text).split(/[,，、;\s]+/).filter(function (x) { return x !== ""; }); }
  function today() { return SG.today(); }
  function inForce() {
    var t = today();
    return rulesets.filter(function (r) { return r.effective_from <= t; }).sort(function (a, b) { return b.version - a.version; })[0];
  }

  // ---- the published versions ----
  var listProblem = SG.el("div", { id: "rulesets-problem" });
  var list = SG.el("div", { id: "rulesets" });

  function drawList() {
    if (!rulesets.length) { SG.fill(list, SG.el("p", { class: "muted" }, SG.t("rules.none"))); return; }
    var current = inForce();
    var t = today();
    var rows = rulesets.slice().reverse();
    SG.fill(list, SG.table([
      { key: "version", label: SG.t("rules.version"), num: true, rowHeader: true },
      { key: "effective_from", label: SG.t("rules.effective_from") },
      { key: "published_at", label: SG.t("rules.published_at"), render: function (r) { return SG.time(r.published_at); } },
      { key: "programs", label: SG.t("rules.programs"), render: function (r) {
        return r.programs.map(function (p) { return p.name + " (" + p.id + ")"; }).join(SG.lang === "zh" ? "；" : "; ");
      } },
      { key: "state", label: SG.t("rules.state"), render: function (r) {
        var s = current && r.version === current.version ? "in_force" : r.effective_from > t ? "pending" : "replaced";
        return SG.el("span", { class: "state-" + s }, SG.t("rules.state." + s));
      } },
    ], rows, { id: "rulesets-table" }, { rowAttrs: function (r) { return { "data-version": r.version }; } }));
  }

  // ---- flattening and comparing ----
  // A ruleset as ordered rows {path, label, value (raw JSON or undefined), text}; programs keyed by id, so that a
  // reordering is no difference and a program of one side only shows as its own rows.
  function programFields(p, pid, rows, prefix) {
    var has = !!p;
    function add(key, raw, text) { rows.push({ path: prefix + "." + key, key: key, program: pid, value: raw, text: text }); }
    add("name", has ? p.name : undefined, has ? p.name : null);
    add("visit_types", has ? p.visit_types : undefined, has ? (p.visit_types ? listText(p.visit_types, "rules.visit.") : SG.t("rules.all_types")) : null);
    add("covers", has ? p.covers : undefined, has ? listText(p.covers, "rules.bucket.") : null);
    add("require_tags", has ? p.require_tags : undefined, has ? (p.require_tags && p.require_tags.length ? p.require_tags.join(", ") : SG.t("rules.no_tags")) : null);
    add("annual_pool_fen", has ? p.annual_pool_fen : undefined, has ? (p.annual_pool_fen === undefined ? SG.t("rules.no_pool") : SG.t("rules.yuan_value", { yuan: SG.yuan(p.annual_pool_fen) })) : null);
  }
  function termText(key, terms) {
    if (!terms) return null;
    var v = terms[key];
    if (key === "ratio_bp") return SG.bpPercent(v) + "%";
    if (v === undefined) return key === "deductible_fen" ? SG.t("rules.zero") : SG.t("rules.unlimited");
    return SG.t("rules.yuan_value", { yuan: SG.yuan(v) });
  }
  function diffRows(a, b) {
    var rows = [];
    rows.push({ path: "effective_from", key: "effective_from", a: a.effective_from, b: b.effective_from, at: a.effective_from, bt: b.effective_from });
    var ids = a.programs.map(function (p) { return p.id; });
    b.programs.forEach(function (p) { if (ids.indexOf(p.id) < 0) ids.push(p.id); });
    ids.forEach(function (id) {
      var pa = a.programs.filter(function (p) { return p.id === id; })[0];
      var pb = b.programs.filter(function (p) { return p.id === id; })[0];
      var ra = [], rb = [];
      programFields(pa, id, ra, "programs[" + id + "]");
      programFields(pb, id, rb, "programs[" + id + "]");
      ra.forEach(function (r, i) {
        rows.push({ path: r.path, key: r.key, program: id, a: r.value, b: rb[i].value, at: r.text, bt: rb[i].text, missA: !pa, missB: !pb });
      });
      var cats = Object.keys((pa && pa.categories) || {});
      Object.keys((pb && pb.categories) || {}).forEach(function (c) { if (cats.indexOf(c) < 0) cats.push(c); });
      cats.sort();
      cats.forEach(function (c) {
        var ta = pa && pa.categories[c], tb = pb && pb.categories[c];
        ["ratio_bp"].concat(FEN_TERMS).forEach(function (k) {
          rows.push({
            path: "programs[" + id + "].categories." + c + "." + k, key: k, program: id, category: c,
            a: ta ? ta[k] : undefined, b: tb ? tb[k] : undefined, at: termText(k, ta), bt: termText(k, tb),
            missA: !pa, missB: !pb, catMissA: !!pa && !ta, catMissB: !!pb && !tb,
          });
        });
      });
    });
    rows.forEach(function (r) { r.differs = JSON.stringify(r.a) !== JSON.stringify(r.b) || r.missA !== r.missB || !!r.catMissA !== !!r.catMissB; });
    return rows;
  }
  function programName(id, a, b) {
    var p = (a && a.programs.filter(function (x) { return x.id === id; })[0]) || (b && b.programs.filter(function (x) { return x.id === id; })[0]);
    return p ? p.name + " (" + id + ")" : id;
  }
  function rowLabel(r, a, b) {
    var parts = [];
    if (r.program) parts.push(programName(r.program, a, b));
    if (r.category) parts.push(catLabel(r.category));
    parts.push(SG.t("rules.f." + r.key));
    return parts.join(" › ");
  }

  var cmpA = SG.el("select", { id: "cmp-a", onchange: function () { compare(); } });
  var cmpB = SG.el("select", { id: "cmp-b", onchange: function () { compare(); } });
  var onlyDiff = SG.el("input", { id: "cmp-only-diff", type: "checkbox", onchange: function () { compare(); } });
  var cmpGo = SG.el("button", { id: "cmp-go", type: "submit", class: "secondary" }, SG.t("rules.compare_go"));
  var cmpForm = SG.el("form", { id: "cmp-form", class: "inline", onsubmit: function (e) { e.preventDefault(); compare(); } },
    SG.el("label", { for: "cmp-a" }, SG.t("rules.compare_a"), cmpA),
    SG.el("label", { for: "cmp-b" }, SG.t("rules.compare_b"), cmpB),
    SG.el("label", { for: "cmp-only-diff", class: "check" }, onlyDiff, SG.t("rules.only_diff")),
    cmpGo);
  var cmpResult = SG.el("div", { id: "cmp-result" });

  function versionOptions(select, chosen) {
    SG.fill(select, rulesets.slice().reverse().map(function (r) {
      return SG.el("option", { value: r.version }, SG.t("rules.version_n", { v: r.version }) + " · " + r.effective_from);
    }));
    if (chosen !== undefined && chosen !== null) select.value = String(chosen);
  }

  function compare() {
    if (rulesets.length < 2) { SG.fill(cmpResult, SG.el("p", { class: "muted" }, SG.t("rules.compare_need_two"))); return; }
    var a = byVersion(cmpA.value), b = byVersion(cmpB.value);
    if (!a || !b) return;
    var rows = diffRows(a, b);
    var n = rows.filter(function (r) { return r.differs; }).length;
    var shown = onlyDiff.checked ? rows.filter(function (r) { return r.differs; }) : rows;
    var va = SG.t("rules.version_n", { v: a.version }), vb = SG.t("rules.version_n", { v: b.version });
    function cell(text, missProgram, missCat) {
      if (missProgram) return SG.el("span", { class: "muted" }, SG.t("rules.absent_program"));
      if (missCat) return SG.el("span", { class: "muted" }, SG.t("rules.absent_category"));
      return text;
    }
    var table = SG.table([
      { key: "label", label: SG.t("rules.field"), rowHeader: true, render: function (r) { return rowLabel(r, a, b); } },
      { key: "path", label: SG.t("rules.path"), render: function (r) { return SG.el("span", { class: "mono path" }, r.path); } },
      { key: "a", label: va, render: function (r) { return cell(r.at, r.missA, r.catMissA); } },
      { key: "b", label: vb, render: function (r) { return cell(r.bt, r.missB, r.catMissB); } },
    ], shown, { id: "cmp-table", class: "diff-table" }, {
      rowAttrs: function (r) {
        var cls = [];
        if (r.differs) cls.push("diff");
        if (r.missA || r.catMissA) cls.push("only-b");
        if (r.missB || r.catMissB) cls.push("only-a");
        return { "data-path": r.path, class: cls.join(" ") || null };
      },
    });
    SG.fill(cmpResult, 
      SG.el("p", { id: "cmp-count", "data-count": n }, n ? SG.t("rules.diff_count", { a: a.version, b: b.version, n: n }) : SG.t("rules.diff_none", { a: a.version, b: b.version })),
      table);
  }

  // ---- the draft editor ----
  var baseSelect = SG.el("select", { id: "draft-base" });
  var startBtn = SG.el("button", { id: "draft-start", type: "button", class: "secondary", onclick: function () { startDraft(byVersion(baseSelect.value)); } }, SG.t("rules.draft_start"));
  var draftNotice = SG.el("div", { id: "draft-notice", "aria-live": "polite" });
  var editor = SG.el("div", { id: "draft-editor", class: "editor", hidden: true });
  var previewResult = SG.el("div", { id: "preview-result", "aria-live": "polite" });

  // inputs: {role, path builder} kept on the node; paths are recomputed from the form's current shape before every
  // use, so a removed program or a renamed category leaves no stale path behind
  function input(role, value, attrs) {
    var a = Object.assign({ id: uid("f"), "data-role": role, autocomplete: "off" }, attrs || {});
    var node = SG.el("input", a);
    node.value = value === undefined || value === null ? "" : String(value);
    return node;
  }
  function labelled(node, text, hint) {
    return SG.el("div", { class: "field" }, SG.el("label", { for: node.id }, text), node,
      hint ? SG.el("span", { class: "hint muted" }, hint) : null);
  }
  function srLabel(node, text) { return SG.el("label", { for: node.id, class: "sr-only" }, text); }

  function categoryRow(name, terms) {
    terms = terms || { ratio_bp: 0 };
    var nameIn = input("cat-name", name, { class: "cat-name" });
    var ratio = input("ratio_bp", SG.bpPercent(terms.ratio_bp), { inputmode: "decimal", class: "num short" });
    var cells = [SG.el("td", {}, srLabel(nameIn, SG.t("rules.c.name")), nameIn),
      SG.el("td", {}, srLabel(ratio, SG.t("rules.c.ratio")), ratio)];
    [["deductible_fen", "rules.c.deductible"], ["annual_cap_fen", "rules.c.annual_cap"], ["per_visit_cap_fen", "rules.c.per_visit_cap"]].forEach(function (f) {
      var v = terms[f[0]];
      var node = input(f[0], v === undefined ? "" : SG.yuan(v).replace(/,/g, ""), { inputmode: "decimal", class: "num" });
      cells.push(SG.el("td", {}, srLabel(node, SG.t(f[1])), node));
    });
    var tr = SG.el("tr", { class: "category" }, cells);
    var remove = SG.el("button", { type: "button", class: "link remove-category", "aria-label": SG.t("rules.remove_category_label", { name: name || "" }),
      onclick: function () { var tbody = tr.parentNode; tr.remove(); syncPaths(); if (tbody && !tbody.children.length) emptyNote(tbody); } }, SG.t("rules.remove_category"));
    tr.append(SG.el("td", {}, remove));
    return tr;
  }
  function emptyNote(tbody) {
    var fs = tbody.closest("fieldset");
    var note = fs && fs.querySelector(".no-categories");
    if (note) note.hidden = tbody.children.length > 0;
  }

  function programBlock(p) {
    var fs = SG.el("fieldset", { class: "program" });
    var legend = SG.el("legend", {});
    var id = input("id", p.id, { class: "mono", maxlength: "64" });
    var name = input("name", p.name, { maxlength: "128", class: "wide" });
    var covers = input("covers", (p.covers || []).join(", "), { class: "mono wide" });
    var visits = input("visit_types", (p.visit_types || []).join(", "), { class: "mono wide" });
    var tags = input("require_tags", (p.require_tags || []).join(", "), { class: "mono" });
    var pool = input("annual_pool_fen", p.annual_pool_fen === undefined ? "" : SG.yuan(p.annual_pool_fen).replace(/,/g, ""), { inputmode: "decimal", class: "num" });
    var tbody = SG.el("tbody", {}, Object.keys(p.categories || {}).map(function (c) { return categoryRow(c, p.categories[c]); }));
    var note = SG.el("p", { class: "muted no-categories", hidden: tbody.children.length > 0 }, SG.t("rules.no_categories"));
    var addCat = SG.el("button", { type: "button", class: "secondary add-category", onclick: function () {
      var tr = categoryRow("", { ratio_bp: 0 });
      tbody.append(tr); emptyNote(tbody); syncPaths(); tr.querySelector("input").focus();
    } }, SG.t("rules.add_category"));
    var removeProgram = SG.el("button", { type: "button", class: "link remove-program", onclick: function () {
      fs.remove(); syncPaths(); var next = editor.querySelector("fieldset.program input"); if (next) next.focus(); else addProgramBtn.focus();
    } }, SG.t("rules.remove_program"));
    fs.append(legend,
      SG.el("div", { class: "program-head" }, removeProgram),
      SG.el("div", { class: "form-grid" },
        labelled(id, SG.t("rules.p.id"), SG.t("rules.p.id_hint")),
        labelled(name, SG.t("rules.p.name")),
        labelled(pool, SG.t("rules.p.pool")),
        labelled(covers, SG.t("rules.p.covers"), SG.t("rules.p.covers_hint")),
        labelled(visits, SG.t("rules.p.visit_types"), SG.t("rules.p.visit_types_hint")),
        labelled(tags, SG.t("rules.p.require_tags"))),
      SG.el("h3", {}, SG.t("rules.categories")),
      SG.el("table", { class: "categories" },
        SG.el("thead", {}, SG.el("tr", {}, ["rules.c.name", "rules.c.ratio", "rules.c.deductible", "rules.c.annual_cap", "rules.c.per_visit_cap", "rules.c.actions"].map(function (k, i) {
          return SG.el("th", { scope: "col", class: i > 0 && i < 5 ? "num" : null }, SG.t(k));
        }))),
        tbody),
      note, addCat);
    return fs;
  }

  // data-field of every input from the form as it is now: programs[i].<field>, programs[i].categories.<name>
  // (the name input) and programs[i].categories.<name>.<term>
  function syncPaths() {
    editor.querySelectorAll("fieldset.program").forEach(function (fs, i) {
      fs.setAttribute("data-index", i);
      fs.querySelector("legend").textContent = SG.t("rules.program_n", { n: i + 1 });
      fs.querySelectorAll(".form-grid [data-role]").forEach(function (n) { n.setAttribute("data-field", "programs[" + i + "]." + n.getAttribute("data-role")); });
      fs.querySelectorAll("tr.category").forEach(function (tr) {
        var name = tr.querySelector('[data-role="cat-name"]').value.trim();
        var base = "programs[" + i + "].categories." + name;
        tr.setAttribute("data-category", name);
        tr.querySelectorAll("[data-role]").forEach(function (n) {
          var role = n.getAttribute("data-role");
          n.setAttribute("data-field", role === "cat-name" ? base : base + "." + role);
        });
        var rm = tr.querySelector(".remove-category");
        if (rm) rm.setAttribute("aria-label", SG.t("rules.remove_category_label", { name: name }));
      });
    });
  }

  var effective = SG.el("input", { id: "draft-effective", type: "date", "data-field": "effective_from", required: true });
  var programsBox = SG.el("div", { id: "draft-programs" });
  var addProgramBtn = SG.el("button", { id: "draft-add-program", type: "button", class: "secondary", onclick: function () {
    var fs = programBlock({ id: "", name: SG.t("rules.new_program"), covers: ["in_scope"], categories: {} });
    programsBox.append(fs); syncPaths(); fs.querySelector("input").focus();
  } }, SG.t("rules.add_program"));
  var from = SG.el("input", { id: "preview-from", type: "date", "data-field": "from" });
  var to = SG.el("input", { id: "preview-to", type: "date", "data-field": "to" });
  var previewBtn = SG.el("button", { id: "draft-preview", type: "submit" }, SG.t("rules.preview"));
  var publishBtn = SG.el("button", { id: "draft-publish", type: "button", class: "danger", onclick: function () { askPublish(); } }, SG.t("rules.publish"));
  var cancelBtn = SG.el("button", { id: "draft-cancel", type: "button", class: "link", onclick: function () { editor.hidden = true; SG.clear(previewResult); startBtn.focus(); } }, SG.t("rules.cancel_draft"));
  var draftErrors = SG.el("div", { id: "draft-errors", "aria-live": "assertive" });
  var intro = SG.el("p", { id: "draft-intro", class: "muted" });
  var draftForm = SG.el("form", { id: "draft-form", novalidate: true, onsubmit: function (e) { e.preventDefault(); preview(); } },
    intro, draftErrors,
    SG.el("div", { class: "form-grid" }, labelled(effective, SG.t("rules.draft_effective"), SG.t("rules.draft_effective_hint"))),
    programsBox, SG.el("p", {}, addProgramBtn),
    SG.el("fieldset", { class: "period" }, SG.el("legend", {}, SG.t("rules.period")),
      SG.el("div", { class: "form-grid" }, labelled(from, SG.t("rules.period_from")), labelled(to, SG.t("rules.period_to")))),
    SG.el("div", { class: "actions" }, previewBtn, publishBtn, cancelBtn));
  editor.append(draftForm);

  function nextJanuary() { return String(Number(today().slice(0, 4)) + 1) + "-01-01"; }

  function startDraft(base) {
    if (!base) return;
    draftBase = base;
    SG.fill(programsBox, base.programs.map(programBlock));
    effective.value = nextJanuary();
    from.value = SG.monthStart(today());
    to.value = today();
    intro.textContent = SG.t("rules.draft_intro", { v: base.version, next: latest().version + 1 });
    SG.clear(draftErrors); SG.clear(previewResult); SG.clear(draftNotice);
    syncPaths();
    SG.fieldErrors(editor, []);
    editor.hidden = false;
    effective.focus();
  }

  // The draft as the API takes it, and the errors found before sending (same {field, message} shape as a 400's).
  function collect() {
    syncPaths();
    var errors = [];
    var out = { effective_from: effective.value, programs: [] };
    if (!/^\d{4}-\d{2}-\d{2}$/.test(effective.value)) errors.push({ field: "effective_from", message: SG.t("rules.local.date") });
    editor.querySelectorAll("fieldset.program").forEach(function (fs) {
      function val(role) { return fs.querySelector('.form-grid [data-role="' + role + '"]'); }
      var p = { id: val("id").value.trim(), name: val("name").value.trim(), covers: splitList(val("covers").value), categories: {} };
      var vt = splitList(val("visit_types").value);
      if (vt.length) p.visit_types = vt;
      var tags = splitList(val("require_tags").value);
      if (tags.length) p.require_tags = tags;
      var poolText = val("annual_pool_fen").value.trim();
      if (poolText !== "") {
        var pool = SG.parseYuan(poolText);
        if (pool === null) errors.push({ field: val("annual_pool_fen").getAttribute("data-field"), message: SG.t("rules.local.yuan") });
        else p.annual_pool_fen = pool;
      }
      fs.querySelectorAll("tr.category").forEach(function (tr) {
        function cell(role) { return tr.querySelector('[data-role="' + role + '"]'); }
        var name = cell("cat-name").value.trim();
        if (!name) { errors.push({ field: cell("cat-name").getAttribute("data-field"), message: SG.t("rules.local.category") }); return; }
        if (Object.prototype.hasOwnProperty.call(p.categories, name)) {
          errors.push({ field: cell("cat-name").getAttribute("data-field"), message: SG.t("rules.local.dup_category", { name: name }) });
          return;
        }
        var terms = {};
        var bp = SG.parsePercent(cell("ratio_bp").value);
        if (bp === null) errors.push({ field: cell("ratio_bp").getAttribute("data-field"), message: SG.t("rules.local.percent") });
        else terms.ratio_bp = bp;
        FEN_TERMS.forEach(function (k) {
          var text = cell(k).value.trim();
          if (text === "") return;
          var fen = SG.parseYuan(text);
          if (fen === null) errors.push({ field: cell(k).getAttribute("data-field"), message: SG.t("rules.local.yuan") });
          else terms[k] = fen;
        });
        p.categories[name] = terms;
      });
      out.programs.push(p);
    });
    return { draft: out, errors: errors };
  }

  // A 400's message in the page's language where it is one the publish checks give (domain/rules.rs).
  function localize(e) {
    var f = e.field, m = e.message || "";
    var t = null;
    if (/\.ratio_bp$/.test(f) && /0\.\.=10000/.test(m)) t = "rules.err.ratio";
    else if (/_fen$/.test(f) && /0\.\.=9007199254740991/.test(m)) t = "rules.err.fen";
    else if (/\.id$/.test(f)) t = /duplicate/.test(m) ? "rules.err.dup_id" : "rules.err.id";
    else if (/\.name$/.test(f) && /1-128/.test(m)) t = "rules.err.name";
    else if (/\.covers$/.test(f)) t = /at least one/.test(m) ? "rules.err.covers_empty" : /repeat/.test(m) ? "rules.err.covers_repeat" : null;
    else if (/\.visit_types$/.test(f)) t = /empty/.test(m) ? "rules.err.visit_empty" : /repeat/.test(m) ? "rules.err.visit_repeat" : null;
    else if (/require_tags\[\d+\]$|\.categories\.[^.]*$/.test(f) && /visible chars/.test(m)) t = "rules.err.label";
    if (!t && /unknown variant|expected one of/.test(m)) return { field: f, message: SG.t("rules.err.unknown", { message: m }) };
    return { field: f, message: t ? SG.t(t) : m };
  }

  // Marks the fields a 400 (or the local checks) named; the rest are listed above the form.
  function showErrors(errors) {
    var mapped = (errors || []).map(function (e) { return localize({ field: String(e.field || "").replace(/^ruleset\./, ""), message: e.message }); });
    var rest = SG.fieldErrors(editor, mapped);
    SG.clear(draftErrors);
    if (!mapped.length) return;
    draftErrors.append(SG.el("div", { class: "error", role: "alert", "data-count": mapped.length },
      SG.el("p", {}, SG.t("rules.errors_title")),
      rest.length ? SG.el("ul", {}, rest.map(function (e) { return SG.el("li", { "data-field-missing": e.field }, (e.field ? e.field + ": " : "") + e.message); })) : null));
  }

  // ---- preview ----
  function signedYuan(fen) { return (fen > 0 ? "+" : "") + SG.yuan(fen); }
  function deltaCell(d) { return SG.el("span", { class: d > 0 ? "up" : d < 0 ? "down" : "same" }, signedYuan(d)); }

  function preview() {
    var c = collect();
    if (c.errors.length) { showErrors(c.errors); SG.clear(previewResult); return; }
    showErrors([]);
    previewBtn.disabled = true;
    SG.fill(previewResult, SG.el("p", { class: "muted" }, SG.t("rules.previewing")));
    SG.api("POST", "/admin/v1/rulesets/preview", { ruleset: c.draft, from: from.value, to: to.value }).then(function (r) {
      if (r.status === 400 && r.data) { SG.clear(previewResult); showErrors(r.data.errors || [{ field: "", message: r.data.detail }]); return; }
      if (!r.ok || !r.data) { SG.fill(previewResult, SG.problem(r)); return; }
      drawPreview(r.data, c.draft);
    }).catch(function () {
      SG.fill(previewResult, SG.el("p", { class: "error", role: "alert" }, SG.t("common.error")));
    }).then(function () { previewBtn.disabled = false; });
  }

  function drawPreview(p, draft) {
    var names = {};
    rulesets.forEach(function (r) { r.programs.forEach(function (x) { names[x.id] = x.name; }); });
    draft.programs.forEach(function (x) { names[x.id] = x.name; });
    function prog(id) { return names[id] && names[id] !== id ? names[id] + " (" + id + ")" : id; }
    var totals = SG.table([
      { key: "metric", label: SG.t("rules.metric"), rowHeader: true },
      { key: "baseline", label: SG.t("rules.baseline"), fen: true },
      { key: "draft", label: SG.t("rules.draft_col"), fen: true },
      { key: "delta", label: SG.t("rules.delta"), fen: true, render: function (x) { return deltaCell(x.draft - x.baseline); } },
    ], [
      { metric: SG.t("rules.relief"), baseline: p.baseline.relief_fen, draft: p.draft.relief_fen, id: "relief" },
      { metric: SG.t("rules.patient"), baseline: p.baseline.patient_fen, draft: p.draft.patient_fen, id: "patient" },
    ], { id: "preview-totals" }, { rowAttrs: function (x) { return { "data-metric": x.id }; } });
    var caps = SG.table([
      { key: "metric", label: SG.t("rules.metric"), rowHeader: true },
      { key: "baseline", label: SG.t("rules.baseline"), num: true },
      { key: "draft", label: SG.t("rules.draft_col"), num: true },
    ], [{ metric: SG.t("rules.caps_row"), baseline: p.cards_at_annual_cap.baseline, draft: p.cards_at_annual_cap.draft }], { id: "preview-caps" });
    function amountsTable(id, keyLabel, rows, key, label) {
      return SG.table([
        { key: key, label: keyLabel, rowHeader: true, render: function (x) { return label(x[key]); } },
        { key: "baseline_fen", label: SG.t("rules.baseline"), fen: true },
        { key: "draft_fen", label: SG.t("rules.draft_col"), fen: true },
        { key: "delta", label: SG.t("rules.delta"), fen: true, render: function (x) { return deltaCell(x.draft_fen - x.baseline_fen); } },
      ], rows, { id: id }, { rowAttrs: function (x) { var a = {}; a["data-" + key] = x[key]; if (x.draft_fen !== x.baseline_fen) a.class = "changed"; return a; } });
    }
    var pools = p.pools.length ? SG.table([
      { key: "program", label: SG.t("rules.program"), rowHeader: true, render: function (x) { return prog(x.program); } },
      { key: "year", label: SG.t("rules.pool_year") },
      { key: "budget_fen", label: SG.t("rules.pool_budget"), fen: true },
      { key: "draft_paid_fen", label: SG.t("rules.pool_paid"), fen: true },
      { key: "used", label: SG.t("rules.pool_used"), num: true, render: function (x) {
        var level = SG.level(x.draft_paid_fen, x.budget_fen);
        return SG.el("span", { class: "lvl-" + level }, x.budget_fen ? SG.percent(x.draft_paid_fen, x.budget_fen) + "%" : "—");
      } },
      { key: "exhausted_on", label: SG.t("rules.pool_exhausted"), render: function (x) {
        return x.exhausted_on ? SG.el("span", { class: "lvl-full" }, x.exhausted_on) : SG.el("span", { class: "muted" }, SG.t("rules.pool_not_exhausted"));
      } },
    ], p.pools, { id: "preview-pools" }) : SG.el("p", { class: "muted" }, SG.t("rules.pools_none"));

    var chartProgram = SG.el("div", { id: "chart-program", class: "chart", role: "img", "aria-label": SG.t("rules.chart_program") });
    var chartCategory = SG.el("div", { id: "chart-category", class: "chart", role: "img", "aria-label": SG.t("rules.chart_category") });
    SG.fill(previewResult, 
      SG.el("h2", { id: "preview-title" }, SG.t("rules.result", { from: from.value, to: to.value, n: SG.int(p.settlements) })),
      SG.el("p", { class: "muted" }, SG.t("rules.result_note")),
      SG.el("div", { class: "cols" },
        SG.el("section", {}, totals),
        SG.el("section", {}, caps)),
      SG.el("h3", {}, SG.t("rules.by_program")),
      SG.el("div", { class: "cols" },
        SG.el("section", {}, amountsTable("preview-programs", SG.t("rules.program"), p.by_program, "program", prog)),
        SG.el("section", {}, SG.el("p", { class: "chart-title" }, SG.t("rules.chart_program")), chartProgram)),
      SG.el("h3", {}, SG.t("rules.by_category")),
      SG.el("div", { class: "cols" },
        SG.el("section", {}, amountsTable("preview-categories", SG.t("rules.category"), p.by_category, "category", catLabel)),
        SG.el("section", {}, SG.el("p", { class: "chart-title" }, SG.t("rules.chart_category")), chartCategory)),
      SG.el("h3", {}, SG.t("rules.pools")), pools);
    var series = function (rows) {
      return [
        { label: SG.t("rules.baseline"), values: rows.map(function (x) { return SG.yuanNumber(x.baseline_fen); }) },
        { label: SG.t("rules.draft_col"), values: rows.map(function (x) { return SG.yuanNumber(x.draft_fen); }) },
      ];
    };
    SG.bars(chartProgram, p.by_program.map(function (x) { return names[x.program] || x.program; }), series(p.by_program), { height: 240 });
    SG.bars(chartCategory, p.by_category.map(function (x) { var k = "rules.cat." + x.category, t = SG.t(k); return t === k ? x.category : t; }), series(p.by_category), { height: 240 });
    previewResult.setAttribute("data-settlements", p.settlements);
  }

  // ---- publish ----
  var dialogDate = SG.el("p", { id: "publish-date", class: "publish-date" });
  var dialogBody = SG.el("p", { id: "publish-body" });
  var dialogPast = SG.el("p", { id: "publish-past", class: "warning", hidden: true });
  var dialogChanges = SG.el("ul", { id: "publish-changes", class: "changes" });
  var dialogStatus = SG.el("div", { id: "publish-status", "aria-live": "polite" });
  var confirmBtn = SG.el("button", { id: "publish-confirm", type: "button", class: "danger", onclick: function () { publish(); } }, SG.t("rules.publish_confirm"));
  var cancelPublish = SG.el("button", { id: "publish-cancel", type: "button", class: "secondary", autofocus: true, onclick: function () { dialog.close(); } }, SG.t("rules.publish_cancel"));
  var dialog = SG.el("dialog", { id: "publish-dialog", "aria-labelledby": "publish-title" },
    SG.el("h2", { id: "publish-title" }, SG.t("rules.publish_title")),
    dialogDate, dialogBody, dialogChanges, dialogPast, dialogStatus,
    SG.el("div", { class: "actions" }, cancelPublish, confirmBtn));
  var pending = null;

  function askPublish() {
    var c = collect();
    if (c.errors.length) { showErrors(c.errors); return; }
    showErrors([]);
    pending = c.draft;
    var date = c.draft.effective_from;
    var base = draftBase || latest();
    var changed = diffRows(base, c.draft).filter(function (r) { return r.differs; });
    var changes = changed.length;
    var MAX_LISTED = 8;
    SG.fill(dialogChanges, changed.slice(0, MAX_LISTED).map(function (r) {
      var before = r.missA ? SG.t("rules.absent_program") : r.catMissA ? SG.t("rules.absent_category") : r.at;
      var after = r.missB ? SG.t("rules.absent_program") : r.catMissB ? SG.t("rules.absent_category") : r.bt;
      return SG.el("li", { "data-path": r.path }, rowLabel(r, base, c.draft) + SG.t("rules.change_sep") + before + " → " + after);
    }), changes > MAX_LISTED ? SG.el("li", { class: "muted" }, SG.t("rules.more_changes", { n: changes - MAX_LISTED })) : null);
    dialogDate.textContent = SG.t("rules.publish_date", { date: date });
    dialogDate.setAttribute("data-date", date);
    dialogBody.textContent = SG.t("rules.publish_body", { next: latest().version + 1, date: date, base: base.version, n: changes });
    dialogPast.hidden = !(date < today());
    dialogPast.textContent = SG.t("rules.publish_past", { today: today() });
    SG.clear(dialogStatus);
    confirmBtn.disabled = false;
    dialog.showModal();
    cancelPublish.focus();
  }

  function publish() {
    if (!pending) return;
    confirmBtn.disabled = true;
    SG.fill(dialogStatus, SG.el("p", { class: "muted" }, SG.t("rules.publishing")));
    var draft = pending;
    SG.api("POST", "/admin/v1/rulesets", draft).then(function (r) {
      if (r.status === 201 && r.data) {
        dialog.close();
        pending = null;
        editor.hidden = true;
        SG.clear(previewResult);
        SG.fill(draftNotice, SG.el("p", { class: "notice", role: "status", "data-version": r.data.version },
          SG.t("rules.published_ok", { v: r.data.version, date: r.data.effective_from })));
        return loadList(r.data.version);
      }
      if (r.status === 400 && r.data) {
        dialog.close();
        showErrors(r.data.errors || [{ field: "", message: r.data.detail }]);
        return;
      }
      confirmBtn.disabled = false;
      SG.fill(dialogStatus, SG.problem(r));
    }).catch(function () {
      confirmBtn.disabled = false;
      SG.fill(dialogStatus, SG.el("p", { class: "error", role: "alert" }, SG.t("common.error")));
    });
  }

  // ---- the page ----
  app.append(
    listProblem,
    SG.el("h2", {}, SG.t("rules.published")), list,
    SG.el("h2", { id: "cmp-title" }, SG.t("rules.compare")), cmpForm, cmpResult,
    SG.el("h2", { id: "draft-title" }, SG.t("rules.draft")),
    SG.el("div", { class: "inline" }, SG.el("label", { for: "draft-base" }, SG.t("rules.draft_base"), baseSelect), startBtn),
    draftNotice, editor, previewResult, dialog);

  function loadList(newVersion) {
    return SG.api("GET", "/admin/v1/rulesets").then(function (r) {
      if (!r.ok || !r.data) { SG.fill(listProblem, SG.problem(r)); return; }
      SG.clear(listProblem);
      rulesets = r.data.rulesets.slice().sort(function (a, b) { return a.version - b.version; });
      drawList();
      var n = rulesets.length;
      versionOptions(cmpA, n >= 2 ? rulesets[n - 2].version : n ? rulesets[0].version : null);
      versionOptions(cmpB, n ? rulesets[n - 1].version : null);
      versionOptions(baseSelect, newVersion || (n ? rulesets[n - 1].version : null));
      startBtn.disabled = !n;
      compare();
      app.setAttribute("data-loaded", String(Date.now()));
    });
  }
  loadList();
});
