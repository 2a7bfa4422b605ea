// audit page (审计日志): the hash-chained audit trail (GET /admin/v1/audit, NDJSON, oldest first), filtered by
// dates, actor and action, a page at a time ("load more" passes the Next-Cursor header back as `after`), and the
// chain's verification (GET /api/console/audit/verify) as a banner: intact, or broken at a seq.
"use strict";
SG.strings({
  zh: {
    "aud.verify_ok": "审计链校验通过：全部 {n} 条记录前后相连，没有被修改或删除。",
    "aud.verify_broken": "审计链在第 {seq} 条记录处断裂（{reason}）。记录可能被修改或删除，请立即报告系统管理员。",
    "aud.verify_failed": "无法校验审计链：",
    "aud.verify_again": "重新校验",
    "aud.verifying": "正在校验审计链……",
    "aud.filters": "筛选",
    "aud.actor": "操作人",
    "aud.actor_hint": "证书名、管理台用户名或 cli:用户",
    "aud.action": "操作类型",
    "aud.any": "全部",
    "aud.limit": "每页条数",
    "aud.list": "审计记录",
    "aud.count": "已显示 {n} 条",
    "aud.none": "没有符合条件的记录。",
    "aud.more": "加载更多",
    "aud.no_more": "没有更多记录了。",
    "aud.col.seq": "序号",
    "aud.col.at": "时间",
    "aud.col.actor": "操作人",
    "aud.col.role": "身份",
    "aud.col.action": "操作",
    "aud.col.target": "对象",
    "aud.col.detail": "内容摘要",
    "aud.full": "完整内容",
    "role.admin": "民政局",
    "role.street": "街道",
    "role.console": "管理台",
    "act.ruleset.publish": "发布救助规则",
    "act.cardholder.put": "保存救助对象",
    "act.cardholder.import": "批量导入救助对象",
    "act.pool.contribution": "慈善基金收支",
    "act.clearing.create": "生成清算单",
    "act.clearing.confirm": "确认清算单",
    "act.clearing.paid": "登记清算付款",
    "act.user.add": "新增管理台账户",
    "act.user.disable": "停用管理台账户",
    "act.console.login": "登录管理台",
    "act.console.login_failed": "登录失败",
    "act.console.logout": "退出管理台",
    "act.ledger.archive": "归档结算记录",
    "sum.cards": "{n} 张卡",
    "sum.active": "正常",
    "sum.suspended": "已暂停",
    "sum.ruleset": "第 {version} 版，{from} 起生效，{n} 个项目",
    "sum.donation": "{donor} 捐入 {amount} 元",
    "sum.withdrawal": "{donor} 支出 {amount} 元",
    "sum.clearing": "{hospital} {period}：{status}，救助金 {amount} 元",
    "sum.login": "身份 {role}",
    "sum.login_street": "身份 {role}，街道 {street}",
    "sum.failed": "连续失败 {n} 次",
    "sum.locked": "连续失败 {n} 次，账户已锁定",
  },
  en: {
    "aud.verify_ok": "Audit chain verified: all {n} entries are linked; none was changed or removed.",
    "aud.verify_broken": "The audit chain is broken at entry {seq} ({reason}). Entries may have been changed or removed: report it to the administrator now.",
    "aud.verify_failed": "The audit chain could not be verified: ",
    "aud.verify_again": "Verify again",
    "aud.verifying": "Verifying the audit chain…",
    "aud.filters": "Filter",
    "aud.actor": "Actor",
    "aud.actor_hint": "certificate name, console user or cli:user",
    "aud.action": "Action",
    "aud.any": "All",
    "aud.limit": "Per page",
    "aud.list": "Entries",
    "aud.count": "{n} shown",
    "aud.none": "No entry matches.",
    "aud.more": "Load more",
    "aud.no_more": "No more entries.",
    "aud.col.seq": "Seq",
    "aud.col.at": "Time",
    "aud.col.actor": "Actor",
    "aud.col.role": "Role",
    "aud.col.action": "Action",
    "aud.col.target": "Target",
    "aud.col.detail": "Detail",
    "aud.full": "Full entry",
    "role.admin": "Relief office",
    "role.street": "Street office",
    "role.console": "Console",
    "act.ruleset.publish": "Ruleset published",
    "act.cardholder.put": "Cardholder saved",
    "act.cardholder.import": "Cardholders imported",
    "act.pool.contribution": "Fund contribution",
    "act.clearing.create": "Statement created",
    "act.clearing.confirm": "Statement confirmed",
    "act.clearing.paid": "Statement paid",
    "act.user.add": "Console account added",
    "act.user.disable": "Console account disabled",
    "act.console.login": "Console sign-in",
    "act.console.login_failed": "Failed sign-in",
    "act.console.logout": "Console sign-out",
    "act.ledger.archive": "Settlements archived",
    "sum.cards": "{n} cards",
    "sum.active": "active",
    "sum.suspended": "suspended",
    "sum.ruleset": "version {version}, in force from {from}, {n} programs",
    "sum.donation": "{donor} gave {amount} yuan",
    "sum.withdrawal": "{donor} withdrew {amount} yuan",
    "sum.clearing": "{hospital} {period}: {status}, relief {amount} yuan",
    "sum.login": "role {role}",
    "sum.login_street": "role {role}, street {street}",
    "sum.failed": "{n} failures in a row",
    "sum.locked": "{n} failures in a row, account locked",
  },
});

SG.page(function (app) {
  // the API's action list (docs/openapi.yaml AuditAction)
  var ACTIONS = ["ruleset.publish", "cardholder.put", "cardholder.import", "pool.contribution", "clearing.create",
    "clearing.confirm", "clearing.paid", "user.add", "user.disable", "console.login", "console.login_failed", "console.logout",
    "ledger.archive"];
  var SCAN = 100000n; // entries one response examines at most
  var today = SG.today();
  var params = new URLSearchParams(window.location.search);

  // ---- the chain's verification ----
  var banner = SG.el("div", { id: "audit-verify", role: "status" });
  function verify() {
    SG.clear(banner);
    banner.className = "";
    banner.append(SG.el("p", { class: "muted" }, SG.t("aud.verifying")));
    SG.api("GET", "/console/audit/verify").then(function (r) {
      SG.clear(banner);
      var again = SG.el("button", { type: "button", class: "link", id: "audit-verify-again", onclick: verify }, SG.t("aud.verify_again"));
      if (!r.ok || !r.data) {
        banner.className = "banner broken";
        banner.setAttribute("data-ok", "unknown");
        banner.append(SG.t("aud.verify_failed"), SG.problem(r), again);
        return;
      }
      banner.setAttribute("data-ok", String(r.data.ok));
      if (r.data.ok) {
        banner.className = "banner ok";
        banner.append(SG.el("span", { id: "audit-verify-text" }, "✔ " + SG.t("aud.verify_ok", { n: SG.int(r.data.entries) })), " ", again);
      } else {
        banner.className = "banner broken";
        banner.setAttribute("role", "alert");
        banner.setAttribute("data-broken-seq", r.data.broken_seq);
        banner.append(SG.el("span", { id: "audit-verify-text" }, "✖ " + SG.t("aud.verify_broken", { seq: r.data.broken_seq, reason: r.data.reason || "" })), " ", again);
      }
    });
  }

  // ---- filters ----
  var from = SG.dateInput({ id: "audit-from", value: params.has("from") ? params.get("from") : SG.addDays(today, -6), "data-field": "from" });
  var to = SG.dateInput({ id: "audit-to", value: params.get("to") || "", "data-field": "to" });
  var actor = SG.el("input", { id: "audit-actor", maxlength: 128, value: params.get("actor") || "", "data-field": "actor", autocomplete: "off", placeholder: SG.t("aud.actor_hint") });
  var action = SG.el("select", { id: "audit-action", "data-field": "action" },
    SG.el("option", { value: "" }, SG.t("aud.any")),
    ACTIONS.map(function (a) { return SG.el("option", { value: a, selected: params.get("action") === a }, SG.t("act." + a) + " (" + a + ")"); }));
  var limit = SG.el("select", { id: "audit-limit", "data-field": "limit" },
    ["20", "50", "100", "500", "1000"].map(function (n) { return SG.el("option", { value: n, selected: (params.get("limit") || "100") === n }, n); }));
  var form = SG.el("form", { id: "audit-filters", class: "inline", role: "search", novalidate: true },
    SG.el("label", { for: "audit-from" }, SG.t("common.from"), from),
    SG.el("label", { for: "audit-to" }, SG.t("common.to"), to),
    SG.el("label", { for: "audit-actor" }, SG.t("aud.actor"), actor),
    SG.el("label", { for: "audit-action" }, SG.t("aud.action"), action),
    SG.el("label", { for: "audit-limit" }, SG.t("aud.limit"), limit),
    SG.el("button", { type: "submit", id: "audit-search" }, SG.t("common.search")));
  form.addEventListener("submit", function (ev) { ev.preventDefault(); search(); });

  var message = SG.el("div", { id: "audit-message" });
  var count = SG.el("span", { class: "muted", id: "audit-count" });
  var tbody = SG.el("tbody", {});
  var table = SG.el("table", { id: "audit-table", class: "data" },
    SG.el("thead", {}, SG.el("tr", {},
      SG.el("th", { scope: "col", class: "num" }, SG.t("aud.col.seq")),
      SG.el("th", { scope: "col" }, SG.t("aud.col.at")),
      SG.el("th", { scope: "col" }, SG.t("aud.col.actor")),
      SG.el("th", { scope: "col" }, SG.t("aud.col.role")),
      SG.el("th", { scope: "col" }, SG.t("aud.col.action")),
      SG.el("th", { scope: "col" }, SG.t("aud.col.target")),
      SG.el("th", { scope: "col" }, SG.t("aud.col.detail")))),
    tbody);
  var more = SG.el("button", { type: "button", id: "audit-more", class: "secondary", onclick: function () { page(false); } }, SG.t("aud.more"));
  var moreBox = SG.el("p", { id: "audit-more-box" });
  app.append(banner,
    SG.el("section", { class: "section", "aria-labelledby": "audit-f-h" }, SG.el("h2", { id: "audit-f-h" }, SG.t("aud.filters")), form),
    SG.el("section", { class: "section", "aria-labelledby": "audit-l-h" },
      SG.el("div", { class: "card-head" }, SG.el("h2", { id: "audit-l-h" }, SG.t("aud.list")), count),
      message, SG.el("div", { class: "table-scroll" }, table), moreBox));

  var after = null;
  var shown = 0;
  var query = null;
  var generation = 0; // a new search drops the answers of the one before
  verify();
  search();

  function search() {
    var bad = SG.dateErrors(form);
    SG.fieldErrors(form, bad);
    if (bad.length) return;
    query = { from: from.value, to: to.value, actor: actor.value.trim(), action: action.value, limit: limit.value };
    window.history.replaceState(null, "", window.location.pathname + SG.query(query));
    after = null;
    shown = 0;
    generation += 1;
    SG.clear(tbody);
    page(true);
  }

  function page(first) {
    SG.clear(message);
    SG.clear(moreBox);
    more.disabled = true;
    var q = Object.assign({}, query, { after: after === null ? "" : after });
    var mine = generation;
    SG.api("GET", "/admin/v1/audit" + SG.query(q), null, { accept: "application/x-ndjson" }).then(function (r) {
      if (mine !== generation) return;
      more.disabled = false;
      if (r.status === 400 && r.data && r.data.errors) {
        var rest = SG.fieldErrors(form, r.data.errors);
        if (rest.length) message.append(SG.problem(r));
        return;
      }
      if (first) SG.fieldErrors(form, []);
      if (!r.ok) { message.append(SG.problem(r)); return; }
      var entries = SG.ndjson(r.text);
      entries.forEach(function (e) { tbody.append(row(e)); });
      shown += entries.length;
      count.textContent = SG.t("aud.count", { n: SG.int(shown) });
      var prev = after === null ? 0n : BigInt(after);
      var next = r.headers.get("next-cursor");
      if (next !== null && next !== "") after = next;
      var scannedAll = next === null || next === "" || BigInt(next) - prev < SCAN;
      if (!shown) message.append(SG.el("p", { class: "muted", id: "audit-none" }, SG.t("aud.none")));
      if (entries.length >= Number(query.limit) || !scannedAll) moreBox.append(more);
      else if (!first) moreBox.append(SG.el("span", { class: "muted", id: "audit-no-more" }, SG.t("aud.no_more")));
    });
  }

  function row(e) {
    var act = SG.t("act." + e.action);
    return SG.el("tr", { "data-seq": e.seq, "data-action": e.action, "data-role": e.role },
      SG.el("td", { class: "num" }, String(e.seq)),
      SG.el("td", { class: "mono nowrap" }, SG.at(e.at)),
      SG.el("td", { class: "nowrap" }, e.actor),
      SG.el("td", {}, SG.el("span", { class: "badge " + e.role }, SG.t("role." + e.role))),
      SG.el("td", {}, act === "act." + e.action ? e.action : act, SG.el("div", { class: "key-sub mono" }, e.action)),
      SG.el("td", { class: "wrap-anywhere mono" }, e.target),
      SG.el("td", {}, SG.el("details", { class: "detail" },
        SG.el("summary", {}, summary(e)),
        SG.el("pre", { "aria-label": SG.t("aud.full") }, JSON.stringify(e, null, 2)))));
  }

  // a line about the entry's detail, by action; anything else as its members
  function summary(e) {
    var d = e.detail || {};
    switch (e.action) {
      case "cardholder.put":
        return [SG.t("cat." + d.category) === "cat." + d.category ? d.category : SG.t("cat." + d.category),
          d.status ? SG.t("sum." + d.status) : null, (d.valid_from || "") + "—" + (d.valid_until || ""), d.street, d.community].filter(Boolean).join(" · ");
      case "cardholder.import": return SG.t("sum.cards", { n: SG.int(d.cards) });
      case "ruleset.publish":
        return SG.t("sum.ruleset", { version: d.version, from: d.effective_from, n: Array.isArray(d.programs) ? d.programs.length : d.programs });
      case "user.add":
        return d.street ? SG.t("sum.login_street", { role: d.role, street: d.street }) : SG.t("sum.login", { role: d.role });
      case "pool.contribution":
        return d.program + ": " + SG.t(d.kind === "withdrawal" ? "sum.withdrawal" : "sum.donation", { donor: d.donor, amount: SG.yuan(d.amount_fen) });
      case "clearing.create": case "clearing.confirm": case "clearing.paid":
        return SG.t("sum.clearing", { hospital: d.hospital_id, period: d.period, status: d.status, amount: SG.yuan(d.relief_fen) });
      case "console.login":
        return d.street ? SG.t("sum.login_street", { role: d.role, street: d.street }) : SG.t("sum.login", { role: d.role });
      case "console.login_failed": return SG.t(d.locked ? "sum.locked" : "sum.failed", { n: d.failures });
      default: {
        var text = Object.keys(d).map(function (k) { var v = d[k]; return k + "=" + (typeof v === "object" ? JSON.stringify(v) : v); }).join(", ");
        return text.length > 120 ? text.slice(0, 117) + "…" : (text || "—");
      }
    }
  }
});
