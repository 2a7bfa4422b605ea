//! `settlegate demo`: dev certificates, a Redis (a private `redis-server` child when none is configured and
//! reachable), the example ruleset and cardholders, the gateway, and ready-to-paste curl commands.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::Config;
use crate::domain::card::Cardholder;
use crate::domain::rules::{parse_ruleset, RulesetFormat, RulesetInput};

pub struct DemoOptions {
    pub dir: PathBuf,
    pub redis_url: Option<String>,
    pub listen: String,
    pub ops_listen: String,
    /// The web console's address (an `admin` account with a fresh password is made for it).
    pub console_listen: String,
    pub rules: PathBuf,
    pub cardholders: PathBuf,
}

/// Reads a ruleset from TOML (or JSON when the file ends in `.json`) and validates it.
pub fn read_ruleset(path: &Path) -> Result<RulesetInput, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let input = parse_ruleset(&text, RulesetFormat::of_path(path)).map_err(|e| format!("{}: {e}", path.display()))?;
    let errors = input.validate();
    if !errors.is_empty() {
        return Err(errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"));
    }
    Ok(input)
}

/// Reads cardholders from NDJSON, or CSV when the file ends in `.csv` (the formats of `settlegate cardholders
/// import`, `crate::sync::lines`). Every line is validated; the first bad line stops the read.
pub fn read_cardholders(path: &Path) -> Result<Vec<Cardholder>, String> {
    use crate::sync::lines::{CardLines, FileFormat, Parsed};
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = CardLines::new(file, FileFormat::of(path), 1 << 20);
    let mut cards = Vec::new();
    while let Some(chunk) = lines.next_chunk().map_err(|e| format!("{}: {e}", path.display()))? {
        for parsed in chunk {
            match parsed {
                Parsed::Card { card, .. } => cards.push(*card),
                Parsed::Rejected { line_no, error } => {
                    return Err(format!("{}: line {line_no}: {error}", path.display()))
                }
            }
        }
    }
    Ok(cards)
}

async fn reachable(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else { return false };
    let attempt = async {
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING").query_async::<String>(&mut conn).await.ok()
    };
    matches!(tokio::time::timeout(Duration::from_secs(1), attempt).await, Ok(Some(_)))
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub async fn run(opts: DemoOptions) -> Result<(), String> {
    let dir = &opts.dir;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let dir = dir.canonicalize().map_err(|e| e.to_string())?;
    let hospitals = ["H0001".to_string(), "H0002".to_string()];
    let admin = "relief-office".to_string();
    if !dir.join("ca.pem").exists() {
        let clients: Vec<String> = hospitals.iter().cloned().chain([admin.clone()]).collect();
        crate::certs::generate(&dir, &["localhost".into(), "127.0.0.1".into()], &clients)?;
        println!("demo: made a dev CA and certificates in {}", dir.display());
    }

    // Redis: the configured one when reachable, else a private child that dies with us.
    let mut _child = None;
    let redis_url = match &opts.redis_url {
        Some(url) if reachable(url).await => {
            println!("demo: using the configured Redis at {}", crate::config::mask_url_password(url));
            url.clone()
        }
        configured => {
            if let Some(url) = configured {
                println!("demo: configured Redis {} is not reachable", crate::config::mask_url_password(url));
            }
            let port = free_port().map_err(|e| e.to_string())?;
            let child = tokio::process::Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--maxmemory-policy", "noeviction", "--dir"])
                .arg(&dir)
                .stdout(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("starting redis-server (apt-get install redis-server): {e}"))?;
            _child = Some(child);
            let url = format!("redis://127.0.0.1:{port}");
            for _ in 0..50 {
                if reachable(&url).await {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            println!("demo: no Redis configured and reachable, so started a private redis-server on 127.0.0.1:{port} (stops with the demo; nothing saved)");
            url
        }
    };

    let config_path = dir.join("gateway.toml");
    let config_text = format!(
        "listen = \"{listen}\"\nops_listen = \"{ops}\"\ntimezone = \"Asia/Shanghai\"\n\n[tls]\ncert = \"{d}/server.pem\"\nkey = \"{d}/server.key\"\nclient_ca = \"{d}/ca.pem\"\n\n[redis]\nurl = \"{redis_url}\"\n\n[admin]\nidentities = [\"{admin}\"]\n\n[console]\nlisten = \"{console}\"\n",
        listen = opts.listen,
        ops = opts.ops_listen,
        console = opts.console_listen,
        d = dir.display()
    );
    std::fs::write(&config_path, &config_text).map_err(|e| e.to_string())?;
    let config = Config::from_toml(&config_text, std::env::vars()).map_err(|e| e.to_string())?;

    let (_link, store) = crate::gateway::open_store(&config).await?;
    let ruleset = read_ruleset(&opts.rules)?;
    let now = chrono::Utc::now().with_timezone(&config.tz());
    let by = crate::app::cli_actor();
    let version = store.publish_ruleset(&ruleset, &now.to_rfc3339(), &by).await.map_err(|e| e.to_string())?;
    println!("demo: published {} as ruleset version {version}", opts.rules.display());
    let cards = read_cardholders(&opts.cardholders)?;
    let at = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
    store
        .put_cardholders(&cards, &crate::store::CardholderEvent::Import { at: &at }, &by, None)
        .await
        .map_err(|e| e.to_string())?;
    println!("demo: imported {} cardholders from {}", cards.len(), opts.cardholders.display());
    let password = crate::console::auth::random_token()[..16].to_string();
    let account = crate::console::auth::new_account("admin", "admin", &password, &now.to_rfc3339())?;
    let add = crate::store::console::ConsoleWrite::Add { account: &account, replace: true };
    let detail = serde_json::json!({"role": "admin", "street": null, "replace": true});
    store.console_write(&add, &now.to_rfc3339(), &by, detail).await.map_err(|e| e.to_string())?;

    let today = now.date_naive();
    let base = format!("https://localhost:{}", config.listen.port());
    let d = dir.display();
    let h = |who: &str| format!("curl -sS --cacert {d}/ca.pem --cert {d}/{who}.pem --key {d}/{who}.key");
    println!("\nsettlegate demo: API {base} (mTLS), ops http://{}\nTry, from another terminal:\n", config.ops_listen);
    println!("# eligibility of a dibao card\n{} {base}/v1/eligibility -H 'content-type: application/json' \\\n  -d '{{\"card_id\":\"C100001\",\"visit\":{{\"type\":\"inpatient\",\"date\":\"{today}\"}}}}'\n", h("H0001"));
    println!("# settle the RULES.md worked example (run it twice: the second answer is a 200 replay)\n{} {base}/v1/settlements -H 'content-type: application/json' \\\n  -d '{{\"hospital_settlement_id\":\"H0001-{}-000042\",\"card_id\":\"C100001\",\"visit\":{{\"type\":\"inpatient\",\"date\":\"{today}\"}},\"amounts\":{{\"total_fen\":2000000,\"in_scope_fen\":1799999,\"pre_self_pay_fen\":30001,\"over_limit_fen\":20000,\"self_pay_fen\":150000}},\"insurance\":{{\"basic_fen\":1203999,\"critical_illness_fen\":94900,\"other_fen\":0}}}}'\n", h("H0001"), today.format("%Y%m%d"));
    println!("# reverse it\n{} {base}/v1/reversals -H 'content-type: application/json' \\\n  -d '{{\"card_id\":\"C100001\",\"hospital_settlement_id\":\"H0001-{}-000042\",\"reason\":\"visit cancelled\"}}'\n", h("H0001"), today.format("%Y%m%d"));
    println!("# the hospital's day\n{} '{base}/v1/reconciliation?date={today}'\n", h("H0001"));
    println!("# the relief office: a cardholder with usage, the pools\n{} {base}/admin/v1/cardholders/C100001\n{} {base}/admin/v1/pools\n", h(&admin), h(&admin));
    if let Some(console) = config.console.listen {
        println!(
            "# the relief office's web console (Chinese; English with the switch at the top right)\n\
             open https://localhost:{}/ and sign in as admin / {password} (the browser asks you to accept the dev \
             certificate, or trust {d}/ca.pem)\n",
            console.port()
        );
    }
    println!(
        "# ops\ncurl -sS http://{}/readyz\n\nCtrl-C stops the gateway{}.\n",
        config.ops_listen,
        if _child.is_some() { " and the private redis-server" } else { "" }
    );
    crate::gateway::run(config).await
}
