//! Every route served, in one table: method, path pattern, who may call it, and its name (the `route` label of the
//! metrics and logs). The dispatcher, the role check (403 / 404), the ops listener and the OpenAPI parity test all
//! derive from it. A new endpoint is one line here; the handler `match` in `http::serve` is exhaustive, so a route
//! without a handler does not compile.

use std::borrow::Cow;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A hospital's billing system (certificate CN = hospital id): `/v1/*`.
    Hospital,
    /// The relief office (a CN listed in `admin.identities`): `/admin/*`.
    Admin,
    /// A hospital or the relief office, on a few `/v1/*` paths (the reconciliation checks): the handler decides
    /// which hospital the call is about (`app::Caller`).
    HospitalOrAdmin,
    /// A street office (a CN listed in `[streets] identities`), as a caller: no route is for it alone.
    Street,
    /// The relief office or a street office, on the `/admin/*` paths a street office may call (its own street's
    /// cards, their import and history, the relief report): the handler scopes by the caller's street
    /// (`app::Caller::street`).
    AdminOrStreet,
    /// Anyone who reaches the plain-HTTP ops listener (no certificate).
    Ops,
}

impl Role {
    /// The path prefix of the role's routes: a path under another role's prefix is 403 whether or not it exists.
    pub const fn prefix(self) -> &'static str {
        match self {
            Role::Hospital | Role::HospitalOrAdmin => "/v1/",
            Role::Admin | Role::Street | Role::AdminOrStreet => "/admin/",
            Role::Ops => "/",
        }
    }

    /// Whether a caller of role `caller` (`Hospital`, `Admin` or `Street`) may call a route of this role. The one
    /// place that decides who may call what: dispatch and the matrix test (tests/http_streets.rs) derive from it.
    pub fn admits(self, caller: Role) -> bool {
        self == caller
            || (self == Role::HospitalOrAdmin && matches!(caller, Role::Hospital | Role::Admin))
            || (self == Role::AdminOrStreet && matches!(caller, Role::Admin | Role::Street))
    }
}

/// Declares [`Route`] and its table from one line per route: `Variant => METHOD "path", Role, "name";`.
macro_rules! routes {
    ($($route:ident => $method:ident $path:literal, $role:ident, $name:literal;)*) => {
        /// One served operation.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Route { $($route,)* }

        impl Route {
            /// Every route, in table order.
            pub const ALL: &'static [Route] = &[$(Route::$route,)*];

            /// The HTTP method, upper case.
            pub const fn method(self) -> &'static str {
                match self { $(Route::$route => stringify!($method),)* }
            }

            /// The path pattern, OpenAPI style: `{name}` is one non-empty path segment.
            pub const fn path(self) -> &'static str {
                match self { $(Route::$route => $path,)* }
            }

            /// Who may call it.
            pub const fn role(self) -> Role {
                match self { $(Route::$route => Role::$role,)* }
            }

            /// The `route` label of metrics and logs.
            pub const fn name(self) -> &'static str {
                match self { $(Route::$route => $name,)* }
            }
        }
    };
}

routes! {
    Eligibility => POST "/v1/eligibility", Hospital, "eligibility";
    Settle => POST "/v1/settlements", Hospital, "settle";
    FindSettlement => GET "/v1/settlements", Hospital, "find_settlement";
    Quote => POST "/v1/settlements/quote", Hospital, "quote";
    GetSettlement => GET "/v1/settlements/{settlement_id}", Hospital, "get_settlement";
    Reverse => POST "/v1/reversals", Hospital, "reverse";
    Reconciliation => GET "/v1/reconciliation", Hospital, "reconciliation";
    ReconciliationDetail => GET "/v1/reconciliation/settlements", Hospital, "reconciliation_detail";
    ReconciliationCheck => POST "/v1/reconciliation/check", HospitalOrAdmin, "reconciliation_check";
    ReconciliationCheckDetails => POST "/v1/reconciliation/check/details", HospitalOrAdmin, "reconciliation_check_details";
    Clearings => GET "/v1/clearings", Hospital, "clearings";
    PutCardholder => PUT "/admin/v1/cardholders/{card_id}", AdminOrStreet, "admin_put_cardholder";
    GetCardholder => GET "/admin/v1/cardholders/{card_id}", AdminOrStreet, "admin_get_cardholder";
    ImportCardholders => POST "/admin/v1/cardholders/import", AdminOrStreet, "admin_import";
    PublishRuleset => POST "/admin/v1/rulesets", Admin, "admin_publish_ruleset";
    ListRulesets => GET "/admin/v1/rulesets", Admin, "admin_list_rulesets";
    GetRuleset => GET "/admin/v1/rulesets/{version}", Admin, "admin_get_ruleset";
    PreviewRuleset => POST "/admin/v1/rulesets/preview", Admin, "admin_preview_ruleset";
    Pools => GET "/admin/v1/pools", Admin, "admin_pools";
    Contribute => POST "/admin/v1/pools/{program}/contributions", Admin, "admin_contribute";
    Audit => GET "/admin/v1/audit", Admin, "admin_audit";
    AdminReconciliation => GET "/admin/v1/reconciliation", Admin, "admin_reconciliation";
    CardHistory => GET "/admin/v1/cardholders/{card_id}/settlements", AdminOrStreet, "admin_card_history";
    Events => GET "/admin/v1/events", Admin, "admin_events";
    CreateClearing => POST "/admin/v1/clearings", Admin, "admin_create_clearing";
    ListClearings => GET "/admin/v1/clearings", Admin, "admin_list_clearings";
    ConfirmClearing => POST "/admin/v1/clearings/{clearing_id}/confirm", Admin, "admin_confirm_clearing";
    PayClearing => POST "/admin/v1/clearings/{clearing_id}/paid", Admin, "admin_pay_clearing";
    Reports => GET "/admin/v1/reports/relief", AdminOrStreet, "admin_reports";
    Healthz => GET "/healthz", Ops, "healthz";
    Readyz => GET "/readyz", Ops, "readyz";
    Metrics => GET "/metrics", Ops, "metrics";
}

/// Most `{param}` segments in one path pattern.
const MAX_PARAMS: usize = 2;

/// The `{param}` values of a matched path, in pattern order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Params<'p> {
    values: [&'p str; MAX_PARAMS],
    len: usize,
}

impl<'p> Params<'p> {
    /// The `i`-th parameter (0-based); "" when the pattern has fewer.
    pub fn get(&self, i: usize) -> &'p str {
        if i < self.len {
            self.values[i]
        } else {
            ""
        }
    }
}

/// What a method and path select among some routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match<'p> {
    Found {
        route: Route,
        params: Params<'p>,
    },
    /// The path exists, but not with this method: the methods it has (for `405` and `Allow`).
    WrongMethod {
        allowed: Vec<&'static str>,
    },
    NotFound,
}

/// Finds the route for `method` and `path` among the routes whose role `roles` accepts. Where two patterns match a
/// path, the one with more literal segments wins, whatever the method (OpenAPI: a concrete path is matched before
/// a templated one): `/v1/settlements/quote` is the quote's path only, so `GET /v1/settlements/quote` is 405 with
/// `Allow: POST`, not a settlement whose id is `quote`.
pub fn find<'p>(method: &str, path: &'p str, roles: impl Fn(Role) -> bool) -> Match<'p> {
    // the path split once; no pattern has more than MAX_SEGMENTS segments, so a longer path matches none
    let Some(rest) = path.strip_prefix('/') else { return Match::NotFound };
    let mut segments = [""; MAX_SEGMENTS];
    let mut count = 0;
    for seg in rest.split('/') {
        if count == MAX_SEGMENTS {
            return Match::NotFound;
        }
        segments[count] = seg;
        count += 1;
    }
    let segments = &segments[..count];
    let candidates = compiled_table()
        .iter()
        .filter(|c| c.segments.len() == count && roles(c.route.role()))
        .filter_map(|c| c.matches(segments).map(|(literals, params)| (c.route, literals, params)));
    choose(method, candidates)
}

/// Among the routes whose pattern matched (route, literal segments, params): the most concrete patterns only, then
/// the one with `method`, else the methods they offer.
fn choose<'p>(method: &str, candidates: impl Iterator<Item = (Route, usize, Params<'p>)>) -> Match<'p> {
    let mut most_literals = None;
    let mut found: Option<(Route, Params<'p>)> = None;
    let mut allowed: Vec<&'static str> = Vec::new();
    for (route, literals, params) in candidates {
        if most_literals.is_some_and(|n| literals < n) {
            continue;
        }
        if most_literals.is_none_or(|n| literals > n) {
            // a more concrete pattern: what the less concrete ones offered does not count
            most_literals = Some(literals);
            found = None;
            allowed.clear();
        }
        if route.method() == method {
            found = Some((route, params));
        } else if !allowed.contains(&route.method()) {
            allowed.push(route.method());
        }
    }
    match found {
        Some((route, params)) => Match::Found { route, params },
        None if !allowed.is_empty() => Match::WrongMethod { allowed },
        None => Match::NotFound,
    }
}

/// Most segments in one path pattern (`/admin/v1/cardholders/{card_id}/settlements`: 5).
const MAX_SEGMENTS: usize = 5;

/// A route's pattern split into segments once, at first use: [`find`] runs for every request, and splitting ~30
/// patterns each time cost more than the rest of routing (docs/BENCHMARKS.md, issue 13).
struct CompiledRoute {
    route: Route,
    /// `Some(literal)` or `None` for a `{param}` segment.
    segments: Vec<Option<&'static str>>,
}

impl CompiledRoute {
    /// The number of literal segments and the parameters, when `segments` (as many as the pattern's) match.
    fn matches<'p>(&self, segments: &[&'p str]) -> Option<(usize, Params<'p>)> {
        debug_assert_eq!(segments.len(), self.segments.len());
        let mut params = Params::default();
        let mut literals = 0;
        for (want, &seg) in self.segments.iter().zip(segments) {
            match want {
                Some(literal) if *literal == seg => literals += 1,
                Some(_) => return None,
                None if seg.is_empty() => return None,
                None => {
                    // at most MAX_PARAMS per pattern: checked when the table is compiled
                    params.values[params.len] = seg;
                    params.len += 1;
                }
            }
        }
        Some((literals, params))
    }
}

fn compiled_table() -> &'static [CompiledRoute] {
    static TABLE: std::sync::OnceLock<Vec<CompiledRoute>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        Route::ALL
            .iter()
            .map(|&route| {
                let segments: Vec<Option<&'static str>> = route.path()[1..]
                    .split('/')
                    .map(|seg| if seg.starts_with('{') { None } else { Some(seg) })
                    .collect();
                assert!(segments.len() <= MAX_SEGMENTS, "{}: more than MAX_SEGMENTS segments", route.path());
                assert!(
                    segments.iter().filter(|s| s.is_none()).count() <= MAX_PARAMS,
                    "{}: too many params",
                    route.path()
                );
                CompiledRoute { route, segments }
            })
            .collect()
    })
}

/// The form of a request path a log line may carry: the pattern of the route it matches, whatever the method and
/// role (`/admin/v1/cardholders/{card_id}`), else only the leading segments that are literal segments of the
/// table, then `/...` (`/v1/...` for `/v1/C100001/x`, `/...` for `/C100001`). Nothing the client typed, a card
/// id in a path or a control character, reaches the log.
pub fn log_path(path: &str) -> Cow<'static, str> {
    let mut best: Option<(usize, Route)> = None;
    for &route in Route::ALL {
        if let Some((literals, _)) = match_path(route.path(), path) {
            if best.is_none_or(|(n, _)| literals > n) {
                best = Some((literals, route));
            }
        }
    }
    if let Some((_, route)) = best {
        return Cow::Borrowed(route.path());
    }
    if path == "/" {
        return Cow::Borrowed("/");
    }
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let mut known: &[&'static str] = &[];
    let patterns: Vec<Vec<&'static str>> = Route::ALL.iter().map(|r| r.path()[1..].split('/').collect()).collect();
    for pattern in &patterns {
        let k = pattern.iter().zip(&segments).take_while(|(p, s)| !p.starts_with('{') && **p == **s).count();
        if k > known.len() {
            known = &pattern[..k];
        }
    }
    let mut out: String = known.iter().flat_map(|s| ["/", s]).collect();
    if known.len() < segments.len() {
        out.push_str("/...");
    }
    Cow::Owned(out)
}

/// Matches one pattern: the number of literal segments and the parameters, or `None`.
fn match_path<'p>(pattern: &str, path: &'p str) -> Option<(usize, Params<'p>)> {
    let mut got = path.strip_prefix('/')?.split('/');
    let mut params = Params::default();
    let mut literals = 0;
    for want in pattern.strip_prefix('/')?.split('/') {
        let seg = got.next()?;
        if want.starts_with('{') {
            if seg.is_empty() || params.len == MAX_PARAMS {
                return None;
            }
            params.values[params.len] = seg;
            params.len += 1;
        } else if want == seg {
            literals += 1;
        } else {
            return None;
        }
    }
    got.next().is_none().then_some((literals, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(method: &str, path: &str) -> Match<'static> {
        let path: &'static str = Box::leak(path.to_string().into_boxed_str());
        find(method, path, |r| r != Role::Ops)
    }

    #[test]
    fn table_is_consistent() {
        let mut seen = std::collections::BTreeSet::new();
        for r in Route::ALL {
            assert!(seen.insert((r.method(), r.path())), "{r:?} listed twice");
            assert!(r.path().starts_with(r.role().prefix()), "{r:?} outside its role's prefix");
            assert!(r.path().matches('{').count() <= MAX_PARAMS, "{r:?}");
        }
    }

    #[test]
    fn shared_routes_admit_both_callers_and_no_other_route_does() {
        for r in Route::ALL {
            let both = matches!(r, Route::ReconciliationCheck | Route::ReconciliationCheckDetails);
            assert_eq!(r.role() == Role::HospitalOrAdmin, both, "{r:?}");
            assert_eq!(r.role().admits(Role::Hospital) && r.role().admits(Role::Admin), both, "{r:?}");
            assert!(!r.role().admits(Role::Ops) || r.role() == Role::Ops, "{r:?}");
        }
    }

    #[test]
    fn street_offices_reach_only_their_five_routes() {
        let street: Vec<Route> = Route::ALL.iter().copied().filter(|r| r.role().admits(Role::Street)).collect();
        let want =
            [Route::PutCardholder, Route::GetCardholder, Route::ImportCardholders, Route::CardHistory, Route::Reports];
        assert_eq!(street, want);
        for r in want {
            assert!(r.role().admits(Role::Admin) && !r.role().admits(Role::Hospital), "{r:?}");
        }
    }

    #[test]
    fn literal_segments_win_and_params_are_extracted() {
        assert!(matches!(api("POST", "/v1/settlements/quote"), Match::Found { route: Route::Quote, .. }));
        match api("GET", "/v1/settlements/s1_abc") {
            Match::Found { route: Route::GetSettlement, params } => assert_eq!(params.get(0), "s1_abc"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            api("POST", "/admin/v1/cardholders/import"),
            Match::Found { route: Route::ImportCardholders, .. }
        ));
        assert!(matches!(api("PUT", "/admin/v1/cardholders/C1"), Match::Found { route: Route::PutCardholder, .. }));
        assert!(matches!(api("POST", "/admin/v1/rulesets/preview"), Match::Found { route: Route::PreviewRuleset, .. }));
        for (path, want) in [("confirm", Route::ConfirmClearing), ("paid", Route::PayClearing)] {
            match api("POST", &format!("/admin/v1/clearings/cl_2026-11_H0001/{path}")) {
                Match::Found { route, params } => assert_eq!((route, params.get(0)), (want, "cl_2026-11_H0001")),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn logs_get_patterns_or_known_literal_segments_only() {
        assert_eq!(log_path("/admin/v1/cardholders/C100003"), "/admin/v1/cardholders/{card_id}");
        assert_eq!(log_path("/v1/settlements/s2_abc"), "/v1/settlements/{settlement_id}");
        assert_eq!(log_path("/v1/settlements/quote"), "/v1/settlements/quote");
        assert_eq!(log_path("/healthz"), "/healthz");
        assert_eq!(log_path("/admin/v1/cardholders/C100003/x"), "/admin/v1/cardholders/...");
        assert_eq!(log_path("/v1/C100003"), "/v1/...");
        assert_eq!(log_path("/C100003/v1"), "/...");
        assert_eq!(log_path("/v1/settlements/"), "/v1/settlements/...");
        assert_eq!(log_path("/"), "/");
        assert_eq!(log_path("/v1/\n\x1b[31m"), "/v1/...");
        assert_eq!(log_path("*"), "/...");
    }

    /// The compiled table matches what matching each pattern on its own (`match_path`) matches, for every route's
    /// path with its params filled, and for near misses: a segment more, a segment less, an empty param, no slash.
    #[test]
    fn compiled_find_agrees_with_matching_each_pattern() {
        fn reference<'p>(method: &str, path: &'p str) -> Match<'p> {
            let matched = Route::ALL.iter().filter(|r| r.role() != Role::Ops).filter_map(|&route| {
                match_path(route.path(), path).map(|(literals, params)| (route, literals, params))
            });
            choose(method, matched)
        }
        let mut paths = vec!["".to_string(), "/".into(), "//".into(), "/a/b/c/d/e/f".into(), "v1/settlements".into()];
        for r in Route::ALL {
            for fill in ["x1", "quote", "import", "preview", ""] {
                let p = r.path().split('/').map(|s| if s.starts_with('{') { fill } else { s }).collect::<Vec<_>>();
                let p = p.join("/");
                paths.extend([format!("{p}/"), format!("{p}/more"), p.rsplit_once('/').unwrap().0.to_string(), p]);
            }
        }
        let methods = ["GET", "POST", "PUT", "DELETE", ""];
        for path in &paths {
            for m in methods {
                assert_eq!(find(m, path, |r| r != Role::Ops), reference(m, path), "{m} {path}");
            }
        }
    }

    #[test]
    fn wrong_methods_and_unknown_paths() {
        assert_eq!(api("DELETE", "/v1/settlements"), Match::WrongMethod { allowed: vec!["POST", "GET"] });
        // the concrete path wins for every method: no settlement `quote`, no card `import` on these paths
        assert_eq!(api("GET", "/v1/settlements/quote"), Match::WrongMethod { allowed: vec!["POST"] });
        assert_eq!(api("PUT", "/admin/v1/cardholders/import"), Match::WrongMethod { allowed: vec!["POST"] });
        assert_eq!(api("POST", "/admin/v1/cardholders/C1"), Match::WrongMethod { allowed: vec!["PUT", "GET"] });
        assert_eq!(api("POST", "/v1/settlements/s1_x"), Match::WrongMethod { allowed: vec!["GET"] });
        // not a ruleset whose version is `preview`
        assert_eq!(api("GET", "/admin/v1/rulesets/preview"), Match::WrongMethod { allowed: vec!["POST"] });
        assert_eq!(api("POST", "/admin/v1/rulesets/3"), Match::WrongMethod { allowed: vec!["GET"] });
        assert_eq!(
            api("GET", "/admin/v1/clearings/cl_2026-11_H0001/paid"),
            Match::WrongMethod { allowed: vec!["POST"] }
        );
        assert_eq!(api("DELETE", "/admin/v1/clearings"), Match::WrongMethod { allowed: vec!["POST", "GET"] });
        assert_eq!(api("GET", "/admin/v1/clearings/cl_2026-11_H0001"), Match::NotFound);
        assert_eq!(api("GET", "/v1/nope"), Match::NotFound);
        assert_eq!(api("GET", "/v1/settlements/"), Match::NotFound);
        assert_eq!(api("GET", "/v1/settlements/a/b"), Match::NotFound);
        assert_eq!(api("GET", "/healthz"), Match::NotFound);
        assert!(matches!(find("GET", "/healthz", |r| r == Role::Ops), Match::Found { route: Route::Healthz, .. }));
    }
}
