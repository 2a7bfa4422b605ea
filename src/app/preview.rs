//! `POST /admin/v1/rulesets/preview` and `settlegate rules preview`: a draft ruleset tried on a period's standing
//! settlements before it is published (API.md "A rule change, tried before it is published").
//!
//! The draft is validated like a publish; then the store streams the period's settlements page by page
//! (`store::preview`) into the pure replay (`domain::preview`), which runs each one through `domain::split` twice.
//! Nothing is written. The replay of a page runs on a blocking thread (`spawn_blocking`), so a long preview does
//! not hold up the settlements served on the same runtime; the whole preview is bounded by
//! `limits.preview_timeout_ms` (past it: 503, nothing changed), the period by `limits.max_preview_days` and the
//! settlements replayed by `limits.max_preview_settlements` (400 naming `to`). Memory: the replay's counters
//! (cards × programs × years), the cards' tags (when the draft requires tags), and one page.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{Datelike, Days, NaiveDate, TimeZone};
use chrono_tz::Tz;
use serde::Deserialize;

use super::{ApiError, ApiResult, App};
use crate::config::LimitsConfig;
use crate::domain::preview::{PreviewReport, Replay, ReplayItem, ReplaySetup};
use crate::domain::rules::{Ruleset, RulesetInput};
use crate::domain::FieldError;
use crate::store::preview::SettledEntry;
use crate::store::Store;

/// The body of `POST /admin/v1/rulesets/preview`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// The draft, as a publish would take it.
    pub ruleset: RulesetInput,
    /// First visit date of the period, inclusive.
    #[serde(with = "crate::domain::date")]
    pub from: NaiveDate,
    /// Last visit date of the period, inclusive.
    #[serde(with = "crate::domain::date")]
    pub to: NaiveDate,
}

/// The bounds of one preview (`[limits]`).
#[derive(Debug, Clone, Copy)]
pub struct PreviewLimits {
    /// Most days in `from..=to` (`limits.max_preview_days`).
    pub max_days: u64,
    /// Most standing settlements replayed (`limits.max_preview_settlements`).
    pub max_settlements: u64,
    /// Bound on the whole preview (`limits.preview_timeout_ms`).
    pub timeout_ms: u64,
}

impl PreviewLimits {
    pub fn of(limits: &LimitsConfig) -> PreviewLimits {
        PreviewLimits {
            max_days: limits.max_preview_days,
            max_settlements: limits.max_preview_settlements,
            timeout_ms: limits.preview_timeout_ms,
        }
    }
}

impl PreviewRequest {
    /// The publish checks of the draft (fields under `ruleset.`), and the period's.
    pub fn validate(&self, max_days: u64) -> Vec<FieldError> {
        let mut errors: Vec<FieldError> = self
            .ruleset
            .validate()
            .into_iter()
            .map(|e| FieldError::new(format!("ruleset.{}", e.field), e.message))
            .collect();
        if self.to < self.from {
            errors.push(FieldError::new("to", "must not be before from"));
        } else if (self.to - self.from).num_days() >= i64::try_from(max_days).unwrap_or(i64::MAX) {
            errors.push(FieldError::new("to", format!("the period may span at most {max_days} days")));
        }
        errors
    }
}

impl App {
    pub async fn preview_ruleset(&self, req: &PreviewRequest, limits: PreviewLimits) -> ApiResult<PreviewReport> {
        preview(&self.store, self.tz, req, limits).await
    }
}

/// Validates `req`, then replays its period (see the module doc). Shared by the API and the CLI.
pub async fn preview(store: &Store, tz: Tz, req: &PreviewRequest, limits: PreviewLimits) -> ApiResult<PreviewReport> {
    let errors = req.validate(limits.max_days);
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let started = std::time::Instant::now();
    let report = match tokio::time::timeout(Duration::from_millis(limits.timeout_ms), run(store, tz, req, limits)).await
    {
        Ok(report) => report?,
        Err(_) => {
            return Err(ApiError::Unavailable(format!(
                "the preview did not finish within limits.preview_timeout_ms ({} ms); nothing was changed: \
                 preview a shorter period",
                limits.timeout_ms
            )))
        }
    };
    tracing::info!(from = %req.from, to = %req.to, settlements = report.settlements,
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX), "ruleset previewed");
    Ok(report)
}

async fn run(store: &Store, tz: Tz, req: &PreviewRequest, limits: PreviewLimits) -> ApiResult<PreviewReport> {
    let published = store.load_rulesets().await?;
    let latest = published.iter().map(|r| r.version).max().unwrap_or(0);
    let draft = Ruleset {
        version: latest + 1,
        effective_from: req.ruleset.effective_from,
        published_at: String::new(),
        programs: req.ruleset.programs.clone(),
    };
    let mut programs: Vec<String> =
        published.iter().chain([&draft]).flat_map(|r| r.programs.iter().map(|p| p.id.clone())).collect();
    programs.sort_unstable();
    programs.dedup();
    let mut contributions_fen = BTreeMap::new();
    for year in req.from.year()..=req.to.year() {
        for (program, totals) in programs.iter().zip(store.pool_totals(year, &programs).await?) {
            contributions_fen.insert((year, program.clone()), totals.contributions_fen);
        }
    }
    let setup = ReplaySetup { from: req.from, to: req.to, published, draft, contributions_fen };
    let mut replay = Some(Replay::new(&setup));
    let needs_tags = replay.as_ref().is_some_and(Replay::draft_needs_tags);
    let mut tags: HashMap<String, Vec<String>> = HashMap::new();
    let mut scan = store.settled_scan(req.from, req.to, scan_start_ms(tz, req.from)).await?;
    // one page is read (and its tags looked up) while the one before it replays on a blocking thread
    let mut replaying: Option<tokio::task::JoinHandle<ApiResult<Replay>>> = None;
    loop {
        let page = store.next_settled_page(&mut scan).await?;
        let page = match page {
            Some(page) if needs_tags => Some(with_tags(store, page, &mut tags).await?),
            other => other,
        };
        if let Some(pending) = replaying.take() {
            replay = Some(pending.await.map_err(|e| ApiError::Internal(format!("preview replay: {e}")))??);
        }
        let Some(page) = page else { break };
        let r = replay.take().expect("the replay is back from its page");
        if r.settlements() + page.len() as u64 > limits.max_settlements {
            return Err(ApiError::invalid(
                "to",
                format!(
                    "the period holds more than limits.max_preview_settlements ({}) standing settlements: \
                     preview a shorter period",
                    limits.max_settlements
                ),
            ));
        }
        replaying = Some(tokio::task::spawn_blocking(move || replay_page(r, &page)));
    }
    Ok(replay.expect("the replay is back from its last page").finish())
}

/// Gives each entry of `page` that did not record its card's tags the card's current ones, looked up once per card
/// (`cache`: every card seen so far).
async fn with_tags(
    store: &Store,
    mut page: Vec<SettledEntry>,
    cache: &mut HashMap<String, Vec<String>>,
) -> ApiResult<Vec<SettledEntry>> {
    let mut unknown: Vec<&str> = page
        .iter()
        .filter(|e| e.tags.is_none() && !cache.contains_key(&e.card_id))
        .map(|e| e.card_id.as_str())
        .collect();
    unknown.sort_unstable();
    unknown.dedup();
    let found = store.cards_tags(&unknown).await?;
    let fresh: Vec<(String, Vec<String>)> = unknown.into_iter().map(String::from).zip(found).collect();
    cache.extend(fresh);
    for e in page.iter_mut().filter(|e| e.tags.is_none()) {
        e.tags = cache.get(&e.card_id).cloned();
    }
    Ok(page)
}

/// Pushes one page into the replay (on a blocking thread: hence the replay moved in and out).
fn replay_page(mut replay: Replay, page: &[SettledEntry]) -> ApiResult<Replay> {
    for e in page {
        let item = ReplayItem {
            card_id: &e.card_id,
            category: &e.category,
            visit: e.visit,
            total_fen: e.total_fen,
            residual_fen: e.residual_fen,
            ruleset_version: e.ruleset_version,
            covered: &e.covered,
            draft_tags: e.tags.as_deref().unwrap_or(&[]),
            settled_day: e.settled_day,
        };
        replay.push(&item).map_err(|e| {
            tracing::error!(error = %e, "a settlement event cannot be replayed");
            ApiError::Internal(format!("a settlement event cannot be replayed: {e}"))
        })?;
    }
    Ok(replay)
}

/// Where the scan starts, Unix ms: local midnight two days before `from` (a visit is at most a day after its
/// settlement's day; one more day for a difference between the gateway's and Redis's clocks).
fn scan_start_ms(tz: Tz, from: NaiveDate) -> u64 {
    let day = from.checked_sub_days(Days::new(2)).unwrap_or(from);
    let ms = day
        .and_hms_opt(0, 0, 0)
        .and_then(|t| tz.from_local_datetime(&t).earliest())
        .map_or(0, |t| t.timestamp_millis());
    u64::try_from(ms).unwrap_or(0)
}

/// The preview as the CLI prints it: totals, per program and per category before, after and the change, the
/// cards at their annual cap, and the draft's pools. Amounts in fen.
pub fn table(report: &PreviewReport, from: NaiveDate, to: NaiveDate) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let row = |out: &mut String, name: &str, before: i64, after: i64| {
        let _ = writeln!(out, "  {name:<28} {before:>16} {after:>16} {:>+16}", after - before);
    };
    let _ = writeln!(out, "visits {from} to {to}: {} standing settlements replayed", report.settlements);
    let _ = writeln!(out, "\n  {:<28} {:>16} {:>16} {:>16}", "total (fen)", "before", "after", "change");
    row(&mut out, "relief", report.baseline.relief_fen, report.draft.relief_fen);
    row(&mut out, "patient", report.baseline.patient_fen, report.draft.patient_fen);
    let _ = writeln!(out, "\n  {:<28} {:>16} {:>16} {:>16}", "program (fen)", "before", "after", "change");
    for p in &report.by_program {
        row(&mut out, &p.program, p.baseline_fen, p.draft_fen);
    }
    let _ = writeln!(out, "\n  {:<28} {:>16} {:>16} {:>16}", "category (fen)", "before", "after", "change");
    for c in &report.by_category {
        row(&mut out, &c.category, c.baseline_fen, c.draft_fen);
    }
    let caps = report.cards_at_annual_cap;
    let _ = writeln!(
        out,
        "\n  {:<28} {:>16} {:>16} {:>+16}",
        "cards at annual cap",
        caps.baseline,
        caps.draft,
        i128::from(caps.draft) - i128::from(caps.baseline)
    );
    if !report.pools.is_empty() {
        let _ = writeln!(
            out,
            "\n  {:<28} {:>6} {:>16} {:>16} {:>12}",
            "pool", "year", "budget_fen", "paid_fen", "exhausted"
        );
        for p in &report.pools {
            let on = p.exhausted_on.map_or_else(|| "-".to_string(), |d| d.to_string());
            let _ = writeln!(
                out,
                "  {:<28} {:>6} {:>16} {:>16} {:>12}",
                p.program, p.year, p.budget_fen, p.draft_paid_fen, on
            );
        }
    }
    out
}
