//! Command-line interface: flags are parsed here, then turned into the
//! libraries' configurations.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use reel_domain::{slugify, Maturity, Role, TitleKind};
use reel_store::{NewTitle, Store, TitleFilter, TitlePatch};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Reel: a self-hostable streaming service (accounts, catalog, home page,
/// playback) in one binary.
#[derive(Parser)]
#[command(name = "reel", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole service on this machine, in the foreground, until Ctrl-C.
    ///
    /// Creates the demo catalog (generated video) on first start.
    Up(UpArgs),
    /// Run one control-plane node (no demo catalog); run several on one
    /// PostgreSQL database behind a load balancer.
    Serve(ServeArgs),
    /// Add, edit and list catalog titles and genres.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Manage accounts.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Run an edge appliance: serves media from its own cache, filling misses from upstream.
    Edge(EdgeArgs),
    /// Explain steering decisions.
    #[command(subcommand)]
    Steer(SteerCommand),
    /// Plan which titles each appliance holds, ahead of demand.
    #[command(subcommand)]
    Fill(FillCommand),
    /// The fleet's inventory: sites, models, appliances, configs, audit trail.
    #[command(subcommand)]
    Fleet(FleetCommand),
    /// Recommendation models: evaluate, train, list, activate, roll back, import MovieLens.
    #[command(subcommand)]
    Recs(crate::recs::RecsCommand),
    /// Alert analysis: change points in a signal, the TCPD benchmark.
    #[command(subcommand)]
    Insight(crate::insight::InsightCommand),
    /// Query a running node's metrics store.
    #[command(subcommand)]
    Metrics(crate::insight::MetricsCommand),
    /// Media: VMAF/PSNR/SSIM, ingest a mezzanine into a per-title ladder, show ladders.
    #[command(subcommand)]
    Media(crate::media::MediaCommand),
}

#[derive(Subcommand)]
enum FleetCommand {
    /// List sites, models and appliances.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Create or update a site.
    Site {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        region: String,
        /// Where it is [default: kept on update, empty on create].
        #[arg(long)]
        location: Option<String>,
        /// A client network the site serves, e.g. 127.0.5.0/24 (repeat for
        /// several; none given on update keeps the site's networks).
        #[arg(long = "prefix")]
        prefixes: Vec<String>,
    },
    /// Create or update an appliance model.
    Model {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        vendor: String,
        /// A part as KIND:QUANTITY:CAPACITY:DESCRIPTION, e.g. disk:4:3840000000000:NVMe (repeat;
        /// none given on update keeps the model's parts).
        #[arg(long = "part")]
        parts: Vec<String>,
    },
    /// Add an appliance.
    Add {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        id: String,
        #[arg(long)]
        serial: String,
        #[arg(long)]
        site: String,
        #[arg(long)]
        model: String,
        /// provisioning, active, draining, maintenance or failed.
        #[arg(long, default_value = "provisioning")]
        state: String,
        #[arg(long, default_value = "")]
        base_url: String,
    },
    /// Change an appliance's state, model or site.
    Set {
        #[command(flatten)]
        store: StoreArgs,
        id: String,
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        model: Option<String>,
        #[arg(long)]
        site: Option<String>,
    },
    /// Render appliance configs and compare their versions.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Show who changed what, newest first.
    Audit {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, default_value_t = 30)]
        limit: i64,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Render an appliance's config from the inventory, keeping it as a new version if it changed.
    Render {
        #[command(flatten)]
        store: StoreArgs,
        id: String,
    },
    /// List an appliance's saved config versions.
    Versions {
        #[command(flatten)]
        store: StoreArgs,
        id: String,
    },
    /// Show the difference between two saved versions (default: the last two).
    Diff {
        #[command(flatten)]
        store: StoreArgs,
        id: String,
        #[arg(long)]
        from: Option<i64>,
        #[arg(long)]
        to: Option<i64>,
    },
}

#[derive(Subcommand)]
enum FillCommand {
    /// Show the fill plan for the fleet from the viewing history, its predicted
    /// edge hit ratio and the hit ratio the appliances report; with
    /// --evaluate, measure the planner against an LRU cache on a synthetic week.
    Plan {
        #[command(flatten)]
        store: StoreArgs,
        /// Where packaged media lives [default: DATA_DIR/origin].
        #[arg(long)]
        origin_dir: Option<PathBuf>,
        /// Evaluate on a generated week of Zipf-popular viewing instead.
        #[arg(long)]
        evaluate: bool,
        /// Titles in the generated catalog.
        #[arg(long, default_value_t = 500)]
        titles: usize,
        /// Viewings in the generated week.
        #[arg(long, default_value_t = 100_000)]
        views: usize,
        /// Zipf exponent of popularity.
        #[arg(long, default_value_t = 0.9)]
        zipf: f64,
        /// Each site's capacity as a share of the catalog's bytes.
        #[arg(long, default_value_t = 0.1)]
        capacity_share: f64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct EdgeArgs {
    /// Address to listen on; port 0 picks a free one (printed as "listening on ADDR").
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// This appliance's id in the inventory.
    #[arg(long)]
    appliance_id: String,
    /// The cache directory.
    #[arg(long)]
    cache_dir: PathBuf,
    /// Cache size in bytes.
    #[arg(long, default_value_t = 512 * 1024 * 1024)]
    cache_bytes: u64,
    /// Bytes of hot objects also kept in memory.
    #[arg(long, default_value_t = 128 * 1024 * 1024)]
    memory_bytes: u64,
    /// Where misses are filled from: a parent appliance or the origin (http://host:port).
    #[arg(long, value_parser = http_url)]
    upstream: String,
    /// The control plane to report health to.
    #[arg(long, value_parser = http_url)]
    control_url: Option<String>,
    /// File holding the fleet key (base64), shared with the control plane at provisioning.
    #[arg(long)]
    key_file: PathBuf,
    /// When to pull the fill plan ahead of demand, UTC (e.g. 02:00-06:00).
    #[arg(long, default_value = "02:00-06:00")]
    fill_window: reel_edge::FillWindow,
    /// Most bytes per second proactive fill may pull.
    #[arg(long, default_value_t = 20_000_000)]
    fill_rate_bytes: u64,
    /// Seconds between fill-plan checks inside the window.
    #[arg(long, default_value_t = 60)]
    fill_every_s: u64,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Exit when the process that started this one exits (used by `reel up`).
    #[arg(long, hide = true)]
    exit_with_parent: bool,
    /// Copy cached objects through memory instead of sendfile (to measure what sendfile buys).
    #[arg(long, hide = true)]
    no_sendfile: bool,
    /// Instead of serving, print a playback token for --title signed with the
    /// key (for benchmarks and diagnostics; anyone with the key can do this).
    #[arg(long, hide = true)]
    mint_token_for: Option<String>,
}

#[derive(Subcommand)]
enum SteerCommand {
    /// Print the ranking of delivery URLs for a client and a title, with the reason for each place.
    Explain {
        #[command(flatten)]
        store: StoreArgs,
        /// The client's address, e.g. 127.0.2.9.
        #[arg(long)]
        client: std::net::IpAddr,
        /// The title (id) to play.
        #[arg(long)]
        title: String,
        /// The origin's URL, listed last.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        origin: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Clone)]
pub(crate) struct StoreArgs {
    /// Directory for the embedded database and media.
    #[arg(long, default_value = "./reel-data", env = "REEL_DATA_DIR")]
    pub(crate) data_dir: PathBuf,
    /// Use PostgreSQL instead of the embedded database (postgres://user:pass@host/db).
    #[arg(long, env = "REEL_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
}

impl StoreArgs {
    pub(crate) async fn open(&self) -> Result<Store> {
        match &self.database_url {
            Some(url) => Store::open(url)
                .await
                .with_context(|| format!("cannot open the database at {}", reel_store::redact(url))),
            None => Store::open_in_dir(&self.data_dir)
                .await
                .with_context(|| format!("cannot open the database in {}", self.data_dir.display())),
        }
    }
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Address to listen on (loopback unless you say otherwise).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Where packaged media lives [default: DATA_DIR/origin].
    #[arg(long)]
    origin_dir: Option<PathBuf>,
    /// The URL viewers reach this node at [default: http://LISTEN].
    #[arg(long, value_parser = http_url)]
    public_url: Option<String>,
    /// Mark session cookies Secure (when served over HTTPS by a proxy).
    #[arg(long)]
    secure_cookies: bool,
    /// Also send collected metrics to this Prometheus remote-write receiver
    /// (http://host:port/api/v1/write), the scale-out path.
    #[arg(long, value_parser = remote_write_url)]
    remote_write: Option<String>,
    /// Seconds without a heartbeat after which a stream stops counting.
    #[arg(long, default_value_t = 90)]
    stream_stale_after: u64,
    /// Relay events (alert.fired, alert.resolved) to this NATS server's
    /// JetStream (stream REEL_EVENTS), e.g. nats://127.0.0.1:4222.
    #[arg(long, env = "REEL_NATS_URL")]
    nats_url: Option<String>,
}

/// An http(s) URL with a host, checked when the command line is read.
fn http_url(s: &str) -> std::result::Result<String, String> {
    match reqwest::Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty()) => Ok(s.to_string()),
        _ => Err(format!("{s:?} is not an http:// or https:// URL with a host")),
    }
}

/// The remote-write sender speaks plain HTTP to an explicit host:port.
fn remote_write_url(s: &str) -> std::result::Result<String, String> {
    match reqwest::Url::parse(s) {
        Ok(u) if s.starts_with("http://") && u.host_str().is_some_and(|h| !h.is_empty()) && u.port().is_some() => Ok(s.to_string()),
        _ => Err(format!("{s:?} is not an http://HOST:PORT/PATH URL (the remote-write receiver)")),
    }
}

#[derive(Args)]
struct UpArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// Do not create the demo catalog.
    #[arg(long)]
    no_demo: bool,
    /// Keep generated demo video here and reuse it for other data directories.
    #[arg(long, env = "REEL_DEMO_CACHE")]
    demo_cache: Option<PathBuf>,
    /// Do not start the demo fleet of edge appliances.
    #[arg(long)]
    no_fleet: bool,
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// List titles (newest first).
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// Only titles whose name contains this text.
        #[arg(long)]
        search: Option<String>,
    },
    /// Add a title.
    Add {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        name: String,
        /// movie, series or episode.
        #[arg(long, default_value = "movie")]
        kind: String,
        #[arg(long, default_value = "")]
        synopsis: String,
        #[arg(long)]
        year: i64,
        /// A rating such as G, PG, PG-13, R, TV-Y, TV-14, TV-MA.
        #[arg(long)]
        maturity: String,
        /// Genre name; repeat for several (created if new).
        #[arg(long = "genre")]
        genres: Vec<String>,
        #[arg(long, default_value_t = 0.0)]
        duration_s: f64,
        /// The series an episode belongs to.
        #[arg(long)]
        series: Option<String>,
        #[arg(long)]
        season: Option<i64>,
        #[arg(long)]
        episode: Option<i64>,
    },
    /// Change a title's fields.
    Edit {
        #[command(flatten)]
        store: StoreArgs,
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        synopsis: Option<String>,
        #[arg(long)]
        year: Option<i64>,
        #[arg(long)]
        maturity: Option<String>,
        /// Replace the genres (repeat for several).
        #[arg(long = "genre")]
        genres: Vec<String>,
    },
}

#[derive(Subcommand)]
enum AccountsCommand {
    /// Give an account the admin role (or take it away with --viewer).
    Promote {
        #[command(flatten)]
        store: StoreArgs,
        email: String,
        #[arg(long)]
        viewer: bool,
    },
}

pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Up(args) => up(args).await,
        Command::Serve(args) => {
            init_logging();
            let store = args.store.open().await?;
            serve(args, store).await
        }
        Command::Catalog(cmd) => catalog(cmd).await,
        Command::Edge(args) => edge(args).await,
        Command::Fleet(cmd) => fleet(cmd).await,
        Command::Recs(cmd) => crate::recs::run(cmd).await,
        Command::Insight(cmd) => crate::insight::run(cmd),
        Command::Metrics(cmd) => crate::insight::metrics(cmd).await,
        Command::Media(cmd) => crate::media::run(cmd).await,
        Command::Fill(FillCommand::Plan { store, origin_dir, evaluate, titles, views, zipf, capacity_share, seed, json }) => {
            if evaluate {
                return fill_evaluate(titles, views, zipf, capacity_share, seed, json);
            }
            let origin = origin_dir.unwrap_or_else(|| store.data_dir.join("origin"));
            let store = store.open().await?;
            let fill = reel_control::fleet::fill_plan(&store, &origin, 512 * 1024 * 1024).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&fill)?);
                return Ok(());
            }
            println!("fill plan from {} viewing events", fill.views);
            for a in &fill.plan.appliances {
                let used = a.bytes_planned as f64 / a.capacity_bytes.max(1) as f64;
                println!(
                    "  {:<14} {:<6} {:<8} {:>3} titles  {:>8.1} MiB of {:>8.1} MiB  [{:<20}]",
                    a.appliance_id, a.site_id, a.region, a.titles.len(),
                    a.bytes_planned as f64 / 1048576.0, a.capacity_bytes as f64 / 1048576.0,
                    "#".repeat((used * 20.0).round().clamp(0.0, 20.0) as usize)
                );
            }
            println!("predicted edge hit ratio: {:.1}%", fill.plan.predicted_hit_ratio * 100.0);
            match fill.realized_hit_ratio {
                Some(r) => println!("realized edge hit ratio (appliance reports): {:.1}%", r * 100.0),
                None => println!("realized edge hit ratio: no appliance has reported traffic yet"),
            }
            Ok(())
        }
        Command::Steer(SteerCommand::Explain { store, client, title, origin, json }) => {
            let store = store.open().await?;
            if store.title(&title).await?.is_none() {
                bail!("no title {title:?}: list them with `reel catalog list`");
            }
            let d = reel_control::fleet::decide(&store, client, &title, &origin).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&d)?);
                return Ok(());
            }
            println!(
                "client {client}: site {}, region {}",
                d.client_site.as_deref().unwrap_or("(none matches)"),
                d.client_region.as_deref().unwrap_or("(none)")
            );
            for p in &d.places {
                let who = p.appliance_id.as_deref().unwrap_or("origin");
                println!("{:>2}. {:<14} {:<28} {:?}: {}", p.rank, who, p.url, p.tier, p.reasons.join("; "));
            }
            for (id, why) in &d.excluded {
                println!(" -  {id:<14} left out: {why}");
            }
            Ok(())
        }
        Command::Accounts(AccountsCommand::Promote { store, email, viewer }) => {
            let store = store.open().await?;
            let role = if viewer { Role::Viewer } else { Role::Admin };
            let account = store
                .set_role(&email.trim().to_lowercase(), role)
                .await
                .with_context(|| format!("no account with email {email:?}"))?;
            println!("{} is now {}", account.email, account.role.as_str());
            Ok(())
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("REEL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).try_init();
}

async fn up(args: UpArgs) -> Result<()> {
    init_logging();
    let store = args.serve.store.open().await?;
    if !args.no_demo {
        let origin = origin_dir(&args.serve);
        let bar = ProgressBar::new(reel_control::demo::demo_video_count() as u64);
        bar.set_style(
            ProgressStyle::with_template("{spinner} demo catalog [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message("checking");
        reel_control::demo::ensure_demo_catalog(&store, &origin, args.demo_cache.as_deref(), |done, _, name| {
            bar.set_position(done as u64);
            bar.set_message(name.to_string());
        })
        .await
        .context("cannot create the demo catalog")?;
        bar.finish_with_message("ready");
        // Viewing history and a trained model, so the home page is personalized from the start.
        let generated = reel_control::demo::ensure_demo_history(&store).await.context("cannot generate the demo viewing history")?;
        if generated > 0 {
            tracing::info!(message = "generated demo viewing history", events = generated);
        }
        if store.active_model_version().await?.is_none() {
            let report = reel_control::recs::train::train(&store, &reel_control::recs::train::TrainOptions::default())
                .await
                .context("cannot train the first recommendation model")?;
            tracing::info!(message = "trained the recommendation model", version = report.version, seconds = report.train_seconds);
        }
    }
    let listener = bind(&args.serve).await?;
    let local = listener.local_addr().context("listener has no address")?;
    // Appliances fill from and report to this node.
    let _fleet = if args.no_fleet {
        None
    } else {
        use base64::Engine;
        let key = reel_control::token_key(&store).await.context("cannot load the fleet key")?;
        let key_b64 = base64::engine::general_purpose::STANDARD.encode(key.as_bytes());
        let upstream = format!("http://{local}");
        let fleet = crate::fleet::start(&args.serve.store.data_dir, &key_b64, &upstream).await?;
        reel_control::demo::ensure_demo_fleet(&store, &fleet.urls).await.context("cannot record the demo fleet")?;
        for (id, url) in &fleet.urls {
            tracing::info!(message = "appliance up", appliance = %id, url = %url);
        }
        Some(fleet)
    };
    serve_on(listener, args.serve, store).await
}

async fn bind(args: &ServeArgs) -> Result<tokio::net::TcpListener> {
    std::fs::create_dir_all(&args.store.data_dir).ok();
    tokio::net::TcpListener::bind(args.listen).await.map_err(|e| listen_error(args.listen, e))
}

/// Why a listen address cannot be used, and what to do about it.
fn listen_error(addr: SocketAddr, e: std::io::Error) -> anyhow::Error {
    let how = match e.kind() {
        std::io::ErrorKind::AddrInUse => "something else is listening there; pick another port with --listen",
        std::io::ErrorKind::AddrNotAvailable => "this machine has no such address; use one of its own, e.g. 127.0.0.1",
        std::io::ErrorKind::PermissionDenied => "ports below 1024 need privileges; pick a higher one with --listen",
        _ => "pick another with --listen",
    };
    anyhow::anyhow!("cannot listen on {addr} ({e}): {how}")
}

async fn edge(args: EdgeArgs) -> Result<()> {
    init_logging();
    let raw = std::fs::read_to_string(&args.key_file).with_context(|| format!("cannot read the key file {}", args.key_file.display()))?;
    let key = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(raw.trim())
            .ok()
            .and_then(reel_domain::TokenKey::new)
            .context("the key file must hold at least 32 bytes, base64-encoded")?
    };
    if !reel_domain::is_valid_id(&args.appliance_id) {
        bail!("--appliance-id may hold letters, digits, '-' and '_' only");
    }
    if let Some(title) = &args.mint_token_for {
        let exp = reel_domain::now_ms() / 1000 + 3600;
        println!("{}", key.sign(&reel_domain::PlaybackClaims { sid: format!("diag-{}", args.appliance_id), tid: title.clone(), mh: 2160, exp }));
        return Ok(());
    }
    let edge = reel_edge::Edge::open(reel_edge::EdgeConfig {
        appliance_id: args.appliance_id.clone(),
        cache_dir: args.cache_dir.clone(),
        cache_bytes: args.cache_bytes,
        memory_bytes: args.memory_bytes,
        upstream: args.upstream.clone(),
        key,
        control_url: args.control_url.clone(),
        report_interval: std::time::Duration::from_millis(reel_control::fleet::REPORT_INTERVAL_MS as u64),
        header_read_timeout: reel_edge::HEADER_READ_TIMEOUT,
        fill_timeout: std::time::Duration::from_secs(30),
        sendfile: !args.no_sendfile,
    })
    .with_context(|| format!("cannot open the cache in {}", args.cache_dir.display()))?;
    let listener = tokio::net::TcpListener::bind(args.listen).await.map_err(|e| listen_error(args.listen, e))?;
    let local = listener.local_addr()?;
    // A bad certificate or key fails here, before "listening" is said.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(
            reel_edge::load_tls(cert, key)
                .await
                .with_context(|| format!("cannot use the TLS certificate {} and key {}", cert.display(), key.display()))?,
        ),
        _ => None,
    };
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {local}{}", if tls.is_some() { " (https)" } else { "" })?;
        out.flush()?;
    }
    tokio::spawn(reel_edge::report_loop(edge.clone()));
    tokio::spawn(reel_edge::prefill_loop(
        edge.clone(),
        args.fill_window,
        args.fill_rate_bytes,
        std::time::Duration::from_secs(args.fill_every_s.max(1)),
    ));
    let exit_with_parent = args.exit_with_parent;
    let stop = async move {
        if exit_with_parent {
            #[cfg(unix)]
            {
                let parent = std::os::unix::process::parent_id();
                let orphaned = async move {
                    loop {
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                        if std::os::unix::process::parent_id() != parent {
                            return;
                        }
                    }
                };
                tokio::select! { _ = shutdown_signal() => {}, _ = orphaned => {} }
                return;
            }
        }
        shutdown_signal().await
    };
    match tls {
        Some(tls) => {
            let std_listener = listener.into_std()?;
            reel_edge::serve_tls(std_listener, edge, tls, stop).await.context("appliance failed")?
        }
        None => reel_edge::serve(listener, edge, stop).await.context("appliance failed")?,
    }
    Ok(())
}

fn origin_dir(args: &ServeArgs) -> PathBuf {
    args.origin_dir.clone().unwrap_or_else(|| args.store.data_dir.join("origin"))
}

async fn serve(args: ServeArgs, store: Store) -> Result<()> {
    let listener = bind(&args).await?;
    serve_on(listener, args, store).await
}

async fn serve_on(listener: tokio::net::TcpListener, args: ServeArgs, store: Store) -> Result<()> {
    let local = listener.local_addr().context("listener has no address")?;
    let mut config = reel_control::Config::new(origin_dir(&args));
    config.public_url = args.public_url.clone().unwrap_or_else(|| format!("http://{local}"));
    config.secure_cookies = args.secure_cookies;
    config.stream_stale_after = std::time::Duration::from_secs(args.stream_stale_after.max(5));
    let mut state = reel_control::AppState::new(store.clone(), config).await.context("cannot load control-plane state")?;
    // This node's metrics store, fed by its own metrics and the appliances'.
    let tsdb_dir = args.store.data_dir.join("tsdb");
    // Raw samples for 15 days, then 5-minute downsampled samples for 90.
    let tsdb_opts = reel_tsdb::Options { rollup_retention_ms: Some(90 * 24 * 3600 * 1000), ..reel_tsdb::Options::default() };
    let tsdb = tokio::task::spawn_blocking(move || reel_tsdb::Tsdb::open(&tsdb_dir, tsdb_opts))
        .await?
        .with_context(|| format!("cannot open the metrics store in {}", args.store.data_dir.join("tsdb").display()))?;
    state.tsdb = Some(std::sync::Arc::new(tsdb));
    tokio::spawn(reel_control::ops::collect_loop(state.clone(), local.to_string(), std::time::Duration::from_secs(5), args.remote_write.clone()));
    tokio::spawn(reel_control::alerts::alert_loop(state.clone(), std::time::Duration::from_secs(5)));
    if let Some(url) = args.nats_url.clone() {
        tokio::spawn(reel_control::events::relay_loop(state.clone(), url));
    }
    tracing::info!(message = "reel is up", url = %format!("http://{local}"), backend = ?store.backend());
    println!("Reel is up: open http://{local} in a browser (Ctrl-C to stop)");
    reel_control::serve(listener, state, shutdown_signal()).await.context("server failed")?;
    store.close().await;
    tracing::info!(message = "reel stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

fn parse_maturity(m: &str) -> Result<Maturity> {
    match Maturity::parse(m) {
        Some(m) => Ok(m),
        None => {
            let all: Vec<&str> = Maturity::ALL.iter().map(|m| m.as_str()).collect();
            bail!("unknown maturity {m:?}: use one of {}", all.join(", "))
        }
    }
}

async fn ensure_genres(store: &Store, names: &[String]) -> Result<Vec<String>> {
    let mut slugs = Vec::new();
    for name in names {
        let slug = slugify(name);
        if slug.is_empty() {
            bail!("genre {name:?} has no letters or digits");
        }
        store.upsert_genre(&slug, name.trim()).await?;
        slugs.push(slug);
    }
    Ok(slugs)
}

async fn catalog(cmd: CatalogCommand) -> Result<()> {
    match cmd {
        CatalogCommand::List { store, search } => {
            let store = store.open().await?;
            let titles = store
                .titles(&TitleFilter { query: search, kinds: vec![TitleKind::Movie, TitleKind::Series, TitleKind::Episode], ..Default::default() })
                .await?;
            for t in titles {
                println!("{:<32} {:<8} {:<6} {:<6} {}", t.id, t.kind.as_str(), t.year, t.maturity.as_str(), t.name);
            }
            Ok(())
        }
        CatalogCommand::Add { store, name, kind, synopsis, year, maturity, genres, duration_s, series, season, episode } => {
            let store = store.open().await?;
            let kind = TitleKind::parse(&kind).with_context(|| format!("unknown kind {kind:?}: use movie, series or episode"))?;
            if kind == TitleKind::Episode && series.is_none() {
                bail!("an episode needs --series ID");
            }
            let new = NewTitle {
                id: None,
                kind,
                parent_id: series,
                season_number: season,
                episode_number: episode,
                artwork: reel_control::demo::artwork_styles(name.trim()),
                name,
                synopsis,
                year,
                maturity: parse_maturity(&maturity)?,
                duration_s,
                genres: Vec::new(),
                created_ms: None,
            };
            // The same checks as the API's, before anything is written (the
            // series first, so a store failure is reported as itself).
            if let Some(parent) = &new.parent_id {
                if reel_domain::is_valid_id(parent) && store.title(parent).await.context("cannot look up the series")?.is_none() {
                    bail!("series {parent:?} does not exist (reel catalog list shows the ids)");
                }
            }
            let mut new = reel_control::check_new_title(&store, new).await?;
            new.genres = ensure_genres(&store, &genres).await?;
            let t = store.create_title(new).await.context("cannot add the title")?;
            println!("{}", t.id);
            Ok(())
        }
        CatalogCommand::Edit { store, id, name, synopsis, year, maturity, genres } => {
            let store = store.open().await?;
            let patch = TitlePatch { name, synopsis, year, maturity: maturity.as_deref().map(parse_maturity).transpose()?, genres: None, duration_s: None };
            let mut patch = reel_control::check_title_patch(patch)?;
            patch.genres = if genres.is_empty() { None } else { Some(ensure_genres(&store, &genres).await?) };
            let t = store
                .update_title(&id, patch)
                .await
                .with_context(|| format!("cannot edit title {id:?}"))?;
            println!("{} {} ({}, {})", t.id, t.name, t.year, t.maturity.as_str());
            Ok(())
        }
    }
}

fn fill_evaluate(titles: usize, views: usize, zipf: f64, capacity_share: f64, seed: u64, json: bool) -> Result<()> {
    use reel_steering::fill::{evaluate, synthetic_week, FillTarget};
    if !(10..=1_000_000).contains(&titles)
        || !(100..=100_000_000).contains(&views)
        || !(0.0..=1.0).contains(&capacity_share)
        || !(zipf > 0.0 && zipf < 5.0)
    {
        bail!("use --titles from 10 to 1,000,000, --views from 100 to 100,000,000, --capacity-share in 0..1 and --zipf in (0, 5)");
    }
    let week = synthetic_week(titles, views, &["us-east", "eu-west"], zipf, seed);
    let catalog: u64 = week.sizes.values().sum();
    let capacity = (catalog as f64 * capacity_share) as u64;
    let targets: Vec<FillTarget> = reel_control::demo::DEMO_FLEET
        .iter()
        .map(|(site, _, region, _, appliance)| FillTarget {
            appliance_id: appliance.to_string(),
            site_id: site.to_string(),
            region: region.to_string(),
            capacity_bytes: capacity,
        })
        .collect();
    let e = evaluate(&week, &targets);
    if json {
        println!("{}", serde_json::to_string_pretty(&e)?);
        return Ok(());
    }
    let bar = |r: f64| "#".repeat((r * 40.0).round().clamp(0.0, 40.0) as usize);
    println!("synthetic week: {} titles, {} viewings, Zipf s={zipf}, seed {seed}; each site holds {:.0}% of the catalog", e.titles, e.views, capacity_share * 100.0);
    println!("trained on days 1-6, scored on day 7 by bytes served from the edge:");
    println!("  planned fill (predicted) {:>5.1}%  {}", e.plan_predicted_hit_ratio * 100.0, bar(e.plan_predicted_hit_ratio));
    println!("  planned fill (realized)  {:>5.1}%  {}", e.plan_realized_hit_ratio * 100.0, bar(e.plan_realized_hit_ratio));
    println!("  LRU cache, same size     {:>5.1}%  {}", e.lru_hit_ratio * 100.0, bar(e.lru_hit_ratio));
    Ok(())
}

fn cli_actor() -> String {
    format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()))
}

async fn fleet(cmd: FleetCommand) -> Result<()> {
    use reel_control::fleet::inventory::{self, AppliancePatch, Part};
    let actor = cli_actor();
    match cmd {
        FleetCommand::List { store } => {
            let store = store.open().await?;
            println!("sites:");
            for s in store.sites().await? {
                println!("  {:<10} {:<20} {:<10} {}", s.id, s.name, s.region, s.prefixes.join(" "));
            }
            println!("models:");
            for m in store.models().await? {
                println!("  {:<16} {:<28} {}", m.id, m.name, m.vendor);
            }
            println!("appliances:");
            let now = reel_domain::now_ms();
            for a in store.appliances().await? {
                let health = match a.last_report_ms {
                    Some(t) if now - t <= 3 * reel_control::fleet::REPORT_INTERVAL_MS => "healthy".to_string(),
                    Some(t) => format!("silent {} s", (now - t) / 1000),
                    None => "never reported".to_string(),
                };
                println!("  {:<14} {:<20} {:<8} {:<14} {:<12} {:<16} {}", a.id, a.serial, a.site_id, a.model, a.state, health, a.base_url);
            }
        }
        FleetCommand::Site { store, id, name, region, location, prefixes } => {
            let store = store.open().await?;
            // An update keeps what it was not told to change.
            let before = store.sites().await?.into_iter().find(|s| s.id == id);
            let location = location.or_else(|| before.as_ref().map(|s| s.location.clone())).unwrap_or_default();
            let prefixes = if prefixes.is_empty() { before.map(|s| s.prefixes).unwrap_or_default() } else { prefixes };
            inventory::put_site(&store, &actor, reel_store::Site { id: id.clone(), name, region, location, prefixes }).await?;
            println!("site {id} saved");
        }
        FleetCommand::Model { store, id, name, vendor, parts } => {
            let store = store.open().await?;
            let parts = parts
                .iter()
                .map(|p| {
                    let mut it = p.splitn(4, ':');
                    let (kind, qty, cap, desc) = (it.next(), it.next(), it.next(), it.next());
                    match (kind, qty.and_then(|q| q.parse().ok()), cap.and_then(|c| c.parse().ok())) {
                        (Some(kind), Some(quantity), Some(capacity)) => Ok(Part {
                            kind: kind.into(),
                            quantity,
                            capacity,
                            description: desc.unwrap_or("").into(),
                        }),
                        _ => Err(anyhow::anyhow!("part {p:?} is not KIND:QUANTITY:CAPACITY:DESCRIPTION")),
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            let parts = match store.models().await?.into_iter().find(|m| m.id == id) {
                Some(before) if parts.is_empty() => serde_json::from_str(&before.parts).context("the model's stored parts are unreadable")?,
                _ => parts,
            };
            inventory::put_model(&store, &actor, &id, &name, &vendor, &parts).await?;
            println!("model {id} saved");
        }
        FleetCommand::Add { store, id, serial, site, model, state, base_url } => {
            let store = store.open().await?;
            let a = reel_store::Appliance { id: id.clone(), serial, site_id: site, model, state, base_url, last_report_ms: None, report: "{}".into() };
            inventory::add_appliance(&store, &actor, a).await?;
            println!("appliance {id} added");
        }
        FleetCommand::Set { store, id, state, model, site } => {
            let store = store.open().await?;
            let a = inventory::change_appliance(&store, &actor, &id, AppliancePatch { state, model, site_id: site, base_url: None }).await?;
            println!("appliance {} is {} ({} at {})", a.id, a.state, a.model, a.site_id);
        }
        FleetCommand::Config(ConfigCommand::Render { store, id }) => {
            let store = store.open().await?;
            let (version, text, changed) = inventory::render_config(&store, &actor, &id).await?;
            eprintln!("{id}: version {version}{}", if changed { " (new)" } else { " (unchanged)" });
            print!("{text}");
        }
        FleetCommand::Config(ConfigCommand::Versions { store, id }) => {
            let store = store.open().await?;
            let versions = store.config_versions(&id).await?;
            if versions.is_empty() {
                if store.appliance(&id).await?.is_none() {
                    bail!("no appliance {id:?}: reel fleet list shows the ids");
                }
                eprintln!("appliance {id} has no saved config yet: reel fleet config render {id} saves one");
            }
            for v in versions {
                println!("v{:<4} {}  {}  {}", v.version, utc(v.created_ms), &v.sha256[..12.min(v.sha256.len())], v.actor);
            }
        }
        FleetCommand::Config(ConfigCommand::Diff { store, id, from, to }) => {
            let store = store.open().await?;
            let (_, _, diff) = inventory::diff(&store, &id, from, to).await?;
            if diff.is_empty() {
                println!("(no differences)");
            } else {
                print!("{diff}");
            }
        }
        FleetCommand::Audit { store, limit } => {
            let store = store.open().await?;
            for e in store.audit(limit.clamp(1, 1000)).await? {
                println!("{}  {:<24} {:<14} {:<10} {:<16} {}", utc(e.at_ms), e.actor, e.action, e.entity, e.entity_id, e.after.unwrap_or_default());
            }
        }
    }
    Ok(())
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SSZ` (UTC), for people reading the CLI.
pub(crate) fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_times() {
        assert_eq!(super::utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::utc(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(super::utc(1_795_322_635_047), "2026-11-22T04:43:55Z");
    }
}
