// Today page (今日概览): GET /api/console/today every 10 s — today's and this month's settlements and relief, the
// last hour per minute (settle requests and their p99 latency, two scales), each pool's budget / paid / left with
// its warning level, the newest reversals, the gateway instances and Redis. Program names come from the ruleset in
// force (GET /admin/v1/rulesets, once).
"use strict";
SG.strings({
  zh: {
    "today.updated": "数据更新于 {time}（每 10 秒自动刷新）",
    "today.refresh": "立即刷新",
    "today.stale": "刷新失败，显示的是 {time} 的数据。",
    "today.settled_today": "今日结算笔数",
    "today.relief_today": "今日救助金额（元）",
    "today.settled_month": "本月结算笔数（{month}）",
    "today.relief_month": "本月救助金额（元）",
    "today.reversed": "其中撤销 {n} 笔",
    "today.net": "已扣除撤销",
    "today.hour": "近一小时",
    "today.hour_title": "近一小时结算请求与延迟（每分钟）",
    "today.hour_summary": "近一小时共 {n} 笔结算请求，平均每秒 {rate} 笔，P99 延迟 {p99}",
    "today.hour_none": "近一小时没有结算请求。",
    "today.series_settled": "结算请求（笔/分钟）",
    "today.series_p99": "P99 延迟（毫秒）",
    "today.chart_label": "近一小时每分钟的结算请求笔数与 P99 延迟",
    "today.pools": "资金池（{year} 年）",
    "today.pools_none": "当前生效的规则中没有设资金池的项目。",
    "today.pool_program": "救助项目",
    "today.pool_budget": "年度预算",
    "today.pool_paid": "已支付",
    "today.pool_left": "剩余",
    "today.pool_used": "使用率",
    "today.pool_bar": "使用情况",
    "today.level.ok": "正常",
    "today.level.warn80": "已超 80%",
    "today.level.warn90": "已超 90%",
    "today.level.full": "已用尽",
    "today.reversals": "最近的撤销",
    "today.reversals_none": "暂无撤销。",
    "today.rev_at": "撤销时间",
    "today.rev_hospital": "医院",
    "today.rev_card": "卡号（脱敏）",
    "today.rev_settlement": "结算编号",
    "today.rev_relief": "退回救助金",
    "today.system": "系统状态",
    "today.instances": "网关实例",
    "today.instances_none": "没有实例的心跳记录。",
    "today.inst_id": "实例",
    "today.inst_listen": "监听地址",
    "today.inst_version": "版本",
    "today.inst_started": "启动时间",
    "today.inst_seen": "最近心跳",
    "today.inst_status": "状态",
    "today.up": "运行中",
    "today.down": "无响应",
    "today.redis": "Redis",
    "today.redis_up": "可用（PING {ms} 毫秒）",
    "today.redis_down": "不可达：页面数据可能不完整",
    "today.ms": "{ms} 毫秒",
    "today.time": "时间"
  },
  en: {
    "today.updated": "Figures as of {time} (refreshed every 10 s)",
    "today.refresh": "Refresh now",
    "today.stale": "Refresh failed; showing the figures of {time}.",
    "today.settled_today": "Settlements today",
    "today.relief_today": "Relief paid today (yuan)",
    "today.settled_month": "Settlements this month ({month})",
    "today.relief_month": "Relief paid this month (yuan)",
    "today.reversed": "{n} reversed",
    "today.net": "net of reversals",
    "today.hour": "Last hour",
    "today.hour_title": "Settle requests and latency, last hour (per minute)",
    "today.hour_summary": "{n} settle requests in the last hour, {rate} per second, p99 latency {p99}",
    "today.hour_none": "No settle requests in the last hour.",
    "today.series_settled": "Settle requests (per minute)",
    "today.series_p99": "p99 latency (ms)",
    "today.chart_label": "Settle requests per minute and their p99 latency over the last hour",
    "today.pools": "Pools ({year})",
    "today.pools_none": "No program of the ruleset in force has a pool.",
    "today.pool_program": "Program",
    "today.pool_budget": "Budget",
    "today.pool_paid": "Paid",
    "today.pool_left": "Left",
    "today.pool_used": "Used",
    "today.pool_bar": "Usage",
    "today.level.ok": "normal",
    "today.level.warn80": "over 80 %",
    "today.level.warn90": "over 90 %",
    "today.level.full": "exhausted",
    "today.reversals": "Recent reversals",
    "today.reversals_none": "No reversals.",
    "today.rev_at": "Reversed at",
    "today.rev_hospital": "Hospital",
    "today.rev_card": "Card (masked)",
    "today.rev_settlement": "Settlement id",
    "today.rev_relief": "Relief taken back",
    "today.system": "System",
    "today.instances": "Gateway instances",
    "today.instances_none": "No instance has sent a heartbeat.",
    "today.inst_id": "Instance",
    "today.inst_listen": "Listens on",
    "today.inst_version": "Version",
    "today.inst_started": "Started",
    "today.inst_seen": "Last heartbeat",
    "today.inst_status": "Status",
    "today.up": "up",
    "today.down": "not responding",
    "today.redis": "Redis",
    "today.redis_up": "up (PING {ms} ms)",
    "today.redis_down": "unreachable: figures may be incomplete",
    "today.ms": "{ms} ms",
    "today.time": "Time"
  }
});

SG.page(function (app) {
  var REFRESH_MS = 10000;
  var names = {}; // program id -> name, from the ruleset in force
  var chart = null;
  var timer = null;
  var lastGood = null;

  var status = SG.el("p", { id: "today-status", class: "muted" }, SG.t("common.loading"));
  var refresh = SG.el("button", { id: "today-refresh", type: "button", class: "secondary", onclick: function () { load(); } }, SG.t("today.refresh"));
  var problem = SG.el("div", { id: "today-problem" });
  var stats = SG.el("section", { id: "today-stats", class: "grid stats", "aria-label": SG.t("nav.today") });
  var hourSummary = SG.el("p", { id: "today-hour-summary" });
  var chartNode = SG.el("div", { id: "today-chart", class: "chart", role: "img", "aria-label": SG.t("today.chart_label") });
  var poolsTitle = SG.el("h2", { id: "pools-title" }, SG.t("today.pools", { year: SG.today().slice(0, 4) }));
  var pools = SG.el("div", { id: "pools" });
  var reversals = SG.el("div", { id: "reversals" });
  var instances = SG.el("div", { id: "instances" });
  var redis = SG.el("p", { id: "redis-status" });

  app.append(
    SG.el("div", { class: "toolbar" }, status, refresh),
    problem,
    stats,
    poolsTitle, pools,
    SG.el("div", { class: "cols" },
      SG.el("section", {}, SG.el("h2", {}, SG.t("today.hour_title")), hourSummary, chartNode),
      SG.el("section", {}, SG.el("h2", {}, SG.t("today.reversals")), reversals)),
    SG.el("h2", {}, SG.t("today.system")),
    SG.el("div", { class: "system" },
      SG.el("section", {}, SG.el("h3", {}, SG.t("today.redis")), redis),
      SG.el("section", {}, SG.el("h3", {}, SG.t("today.instances")), instances))
  );

  function stat(id, label, value, note) {
    return SG.el("div", { class: "card stat", id: id },
      SG.el("div", { class: "label" }, label),
      SG.el("div", { class: "value", "data-value": "" }, value),
      SG.el("div", { class: "note muted" }, note || "\u00a0"));
  }

  function programLabel(id) {
    return names[id] && names[id] !== id ? names[id] + " (" + id + ")" : id;
  }

  function drawStats(t) {
    SG.fill(stats, 
      stat("today-settled", SG.t("today.settled_today"), SG.int(t.today.settled_count), SG.t("today.reversed", { n: SG.int(t.today.reversed_count) })),
      stat("today-relief", SG.t("today.relief_today"), SG.yuan(t.today.relief_fen), SG.t("today.net")),
      stat("month-settled", SG.t("today.settled_month", { month: t.month }), SG.int(t.month_to_date.settled_count), SG.t("today.reversed", { n: SG.int(t.month_to_date.reversed_count) })),
      stat("month-relief", SG.t("today.relief_month"), SG.yuan(t.month_to_date.relief_fen), SG.t("today.net"))
    );
  }

  // Unix seconds as HH:MM at the gateway's UTC offset (minutes).
  function hhmm(ts, offset) { return new Date((ts + offset * 60) * 1000).toISOString().slice(11, 16); }

  function ms(v) { return v === null || v === undefined ? "—" : SG.t("today.ms", { ms: v.toFixed(2) }); }

  function drawHour(t) {
    var h = t.last_hour;
    hourSummary.textContent = h.settled ? SG.t("today.hour_summary", { n: SG.int(h.settled), rate: h.per_second, p99: ms(h.p99_ms) }) : SG.t("today.hour_none");
    var xs = t.minutes.map(function (m) { return Math.floor(Date.parse(m.minute) / 1000); });
    var counts = t.minutes.map(function (m) { return m.settled; });
    var p99 = t.minutes.map(function (m) { return m.p99_ms === null ? null : m.p99_ms; });
    if (chart) {
      chart.setData([xs, counts, p99]);
      return;
    }
    var offset = t.minutes.length ? SG.utcOffset(t.minutes[0].minute) : 0;
    chart = SG.line(chartNode, xs, [
      { label: SG.t("today.series_settled"), values: counts, scale: "n", bars: true, value: function (v) { return SG.int(v); } },
      { label: SG.t("today.series_p99"), values: p99, scale: "ms", value: function (v) { return v.toFixed(2); } },
    ], {
      height: 210,
      utcOffsetMinutes: offset,
      xValue: function (v) { return hhmm(v, offset); },
      xLabel: SG.t("today.time"),
      // half a minute of room on each side, so that the first and the last minute's bars show whole
      scales: { x: { time: true, range: function (u, min, max) { return [min - 30, max + 30]; } }, n: { range: SG.fromZero }, ms: { range: SG.fromZero } },
      axes: [
        { values: function (u, splits) { return splits.map(function (s) { return hhmm(s, offset); }); } },
        // each axis in its series' colour (the legend names them)
        { scale: "n", size: 50, stroke: SG.palette[0], values: function (u, v) { return v.map(SG.axisNumber); } },
        { scale: "ms", side: 1, size: 60, stroke: SG.palette[1], grid: { show: false }, values: function (u, v) { return v.map(SG.axisNumber); } },
      ],
    });
  }

  function drawPools(t) {
    if (!t.pools.length) {
      SG.fill(pools, SG.el("p", { class: "muted" }, SG.t("today.pools_none")));
      return;
    }
    var table = SG.table([
      { key: "program", label: SG.t("today.pool_program"), rowHeader: true, render: function (p) { return programLabel(p.program); } },
      { key: "budget_fen", label: SG.t("today.pool_budget"), fen: true },
      { key: "paid_fen", label: SG.t("today.pool_paid"), fen: true },
      { key: "left_fen", label: SG.t("today.pool_left"), fen: true },
      { key: "used", label: SG.t("today.pool_used"), num: true, render: function (p) {
        var level = SG.level(p.paid_fen, p.budget_fen);
        return SG.el("span", { class: "lvl-" + level, "data-level": level },
          p.budget_fen ? SG.percent(p.paid_fen, p.budget_fen) + "%" : "—");
      } },
      { key: "bar", label: SG.t("today.pool_bar"), render: function (p) {
        var level = SG.level(p.paid_fen, p.budget_fen);
        return SG.el("div", { class: "bar-cell" }, SG.bar(p.paid_fen, p.budget_fen),
          SG.el("span", { class: "lvl-" + level + " level-text" }, SG.t("today.level." + level)));
      } },
    ], t.pools, { id: "pools-table", class: "pools" }, { rowAttrs: function (p) { return { "data-program": p.program, "data-level": SG.level(p.paid_fen, p.budget_fen) }; } });
    SG.fill(pools, table);
  }

  function drawReversals(t) {
    if (!t.reversals.length) {
      SG.fill(reversals, SG.el("p", { class: "muted" }, SG.t("today.reversals_none")));
      return;
    }
    SG.fill(reversals, SG.table([
      { key: "at", label: SG.t("today.rev_at"), render: function (r) {
        var at = SG.time(r.at);
        return at.slice(0, 10) === t.date ? at.slice(11) : at;
      } },
      { key: "hospital_id", label: SG.t("today.rev_hospital") },
      { key: "card_id_masked", label: SG.t("today.rev_card"), render: function (r) { return SG.el("span", { class: "mono" }, r.card_id_masked || ""); } },
      { key: "settlement_id", label: SG.t("today.rev_settlement"), render: function (r) {
        var id = r.settlement_id || "";
        return SG.el("span", { class: "mono", title: id }, id.length > 16 ? id.slice(0, 14) + "…" : id);
      } },
      { key: "relief_fen", label: SG.t("today.rev_relief"), fen: true },
    ], t.reversals, { id: "reversals-table" }));
  }

  function drawSystem(t) {
    SG.fill(redis, t.redis.up
      ? SG.el("span", { class: "status-up", "data-up": "true" }, SG.t("today.redis_up", { ms: t.redis.ping_ms === null ? "—" : t.redis.ping_ms.toFixed(2) }))
      : SG.el("span", { class: "status-down", "data-up": "false" }, SG.t("today.redis_down")));
    if (!t.instances.length) {
      SG.fill(instances, SG.el("p", { class: "muted" }, SG.t("today.instances_none")));
      return;
    }
    SG.fill(instances, SG.table([
      { key: "instance", label: SG.t("today.inst_id"), rowHeader: true, render: function (i) { return SG.el("span", { class: "mono" }, i.instance); } },
      { key: "listen", label: SG.t("today.inst_listen") },
      { key: "version", label: SG.t("today.inst_version") },
      { key: "started_at", label: SG.t("today.inst_started"), render: function (i) { return SG.time(i.started_at); } },
      { key: "seen_at", label: SG.t("today.inst_seen"), render: function (i) { return SG.time(i.seen_at); } },
      { key: "up", label: SG.t("today.inst_status"), render: function (i) {
        return SG.el("span", { class: i.up ? "status-up" : "status-down" }, i.up ? SG.t("today.up") : SG.t("today.down"));
      } },
    ], t.instances, { id: "instances-table" }, { rowAttrs: function (i) { return { "data-up": String(i.up) }; } }));
  }

  function draw(t) {
    lastGood = t;
    t.shownAt = clock(t);
    poolsTitle.textContent = SG.t("today.pools", { year: t.date.slice(0, 4) });
    drawStats(t);
    drawHour(t);
    drawPools(t);
    drawReversals(t);
    drawSystem(t);
  }

  // Now as the gateway's wall time (HH:MM:SS at the offset of its minutes), whatever the browser's zone.
  function clock(t) {
    var offset = t.minutes.length ? SG.utcOffset(t.minutes[0].minute) : 0;
    return new Date(Date.now() + offset * 60000).toISOString().slice(11, 19);
  }

  function load() {
    if (timer) { clearTimeout(timer); timer = null; }
    return SG.api("GET", "/console/today").then(function (r) {
      if (!r.ok || !r.data) throw r;
      SG.clear(problem);
      draw(r.data);
      status.textContent = SG.t("today.updated", { time: clock(r.data) });
      app.setAttribute("data-loaded", String(Date.now()));
    }).catch(function (r) {
      SG.fill(problem, r && r.status ? SG.problem(r) : SG.el("p", { class: "error", role: "alert" }, SG.t("common.error")));
      if (lastGood) status.textContent = SG.t("today.stale", { time: lastGood.shownAt });
    }).then(function () {
      timer = setTimeout(load, REFRESH_MS);
    });
  }

  SG.api("GET", "/admin/v1/rulesets").then(function (r) {
    var list = (r.ok && r.data && r.data.rulesets) || [];
    // the ruleset in force today: the highest version effective on or before today
    var today = SG.today();
    var inForce = list.filter(function (s) { return s.effective_from <= today; }).sort(function (a, b) { return b.version - a.version; })[0];
    list.forEach(function (s) { s.programs.forEach(function (p) { names[p.id] = p.name; }); });
    if (inForce) inForce.programs.forEach(function (p) { names[p.id] = p.name; });
  }).catch(function () {}).then(load);
});
