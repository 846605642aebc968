//! The `confab` command line: `serve` and `migrate` (with `--services`), `config`, `users`,
//! `keys`, `models`, `chat`, `audit`, `backup`, `restore`, `openapi`.
//!
//! Long (about 790 lines) because it holds every subcommand's argument types and its output; each
//! command is a short function over the library, and the logic lives in the crates.

use confab_auth::actions::AuthAction;
use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use confab::app;
use confab_auth::domain::UserStatus;
use confab_auth::ports::UserFilter;
use confab_core::auth::Role;
use confab_core::config::{Config, Overrides, Sources, TelemetryConfig};
use confab_store::Db;

mod alloc;

#[derive(Debug, Parser)]
#[command(
    name = "confab",
    version = confab::build_info::VERSION_LINE,
    about = "Confab: a self-hosted AI chat platform in one binary"
)]
struct Cli {
    /// Configuration file (default: ./confab.toml if present; env CONFAB_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on (env CONFAB_LISTEN).
    #[arg(long, global = true, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Directory for local state (env CONFAB_DATA_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: every service in one process, or the services named by --services.
    Serve(ServicesArg),
    /// Apply pending database migrations of every service (or of those named by --services).
    Migrate(ServicesArg),
    /// Print the effective configuration, secrets redacted.
    Config,
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage the keys that sign access tokens.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage local models (GGUF files in the models directory).
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Chat with a model in the terminal: one answer for PROMPT, or a conversation.
    Chat(ChatArgs),
    /// Check or archive the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Back up the database and the audit archives while the server runs (`--to DIR`), or
    /// check (`verify`) or thin out (`prune`) backups (docs/operations.md, "Backups and
    /// restore").
    Backup(BackupArgs),
    /// Restore a backup into an empty database and data directory, checking it first.
    Restore {
        /// A backup directory, or a directory of backups (the newest complete one is used);
        /// or the same in S3-compatible storage, `s3://bucket/prefix[/confab-<time>]`.
        #[arg(long, value_name = "DIR|S3_URL")]
        from: String,
    },
    /// Print the OpenAPI document that `serve` publishes at /api/openapi.json (the web UI's
    /// API types are generated from it: web/scripts/gen-api-types.sh).
    Openapi,
}

#[derive(Debug, Args)]
struct ServicesArg {
    /// `all` (the all-in-one process), a comma-separated list of auth, chat, inference,
    /// admin and seo (split mode: this process runs only those), or `gateway`.
    #[arg(long, value_name = "LIST", default_value = "all")]
    services: confab::services::Services,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the audit log's hash chain (and the archive files in <data_dir>/audit-archive);
    /// exit 1 naming the first broken entry.
    Verify,
    /// Move entries older than admin.audit_retention_days into JSONL files under
    /// <data_dir>/audit-archive now.
    Archive {
        /// Use this many days instead of admin.audit_retention_days.
        #[arg(long)]
        days: Option<u32>,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct BackupArgs {
    /// Make the backup in a new directory `confab-<UTC time>` under DIR, or upload it under
    /// `s3://bucket/prefix` (connected with [storage.s3] and the AWS_* variables); prints
    /// where it is.
    #[arg(long, value_name = "DIR|S3_URL", required = true)]
    to: Option<String>,
    #[command(subcommand)]
    command: Option<BackupCommand>,
}

#[derive(Debug, Subcommand)]
enum BackupCommand {
    /// Restore a backup into a scratch place (a temporary SQLite file, or a scratch PostgreSQL
    /// database on the configured server) and check checksums, rows per table and the audit
    /// chain against its manifest; exit 1 on any mismatch.
    Verify {
        /// A backup directory, or a directory of backups (the newest complete one); or the
        /// same in S3-compatible storage, `s3://bucket/prefix[/confab-<time>]`.
        #[arg(value_name = "DIR|S3_URL")]
        place: String,
    },
    /// Keep the N newest complete backups under DIR (or `s3://bucket/prefix`); remove older
    /// ones and unfinished ones older than the newest complete backup.
    Prune {
        #[arg(value_name = "DIR|S3_URL")]
        place: String,
        #[arg(long, value_name = "N")]
        keep: usize,
    },
}

#[derive(Debug, Subcommand)]
enum ModelsCommand {
    /// Download or copy a model: a local .gguf path, an https URL, or org/repo/file.gguf on
    /// Hugging Face. An interrupted download resumes.
    Pull {
        source: String,
        /// Refuse the file unless its sha256 is this (hex).
        #[arg(long)]
        sha256: Option<String>,
    },
    /// List local models.
    List,
    /// Delete a local model.
    Rm { name: String },
}

#[derive(Debug, Args)]
struct ChatArgs {
    /// Ask this and print the answer; without it, a conversation on the terminal.
    prompt: Option<String>,
    /// The model (default: inference.default_model, else the first local model).
    #[arg(long)]
    model: Option<String>,
    /// A system prompt.
    #[arg(long)]
    system: Option<String>,
    /// Most tokens per answer.
    #[arg(long, default_value_t = 512)]
    max_tokens: u32,
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Create a user; the password is read from stdin (or prompted for on a terminal).
    Create(CreateUser),
    /// List users.
    List {
        /// Only users with this status: active, pending or disabled.
        #[arg(long)]
        status: Option<String>,
    },
    /// Set a user's role (admin or user).
    SetRole { email: String, role: String },
    /// Approve a pending user.
    Approve { email: String },
}

#[derive(Debug, Args)]
struct CreateUser {
    #[arg(long)]
    email: String,
    /// Display name (default: the part of the email before @).
    #[arg(long)]
    name: Option<String>,
    /// Make the user an admin.
    #[arg(long)]
    admin: bool,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Make a new signing key; tokens signed by the old one stay valid until they expire.
    Rotate,
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let explicit = cli
        .config
        .clone()
        .or_else(|| std::env::var_os("CONFAB_CONFIG").map(PathBuf::from));
    let sources = Sources {
        config_file_required: explicit.is_some(),
        config_file: Some(explicit.unwrap_or_else(|| PathBuf::from("confab.toml"))),
        dotenv_file: Some(PathBuf::from(".env")),
        env,
        overrides: Overrides {
            listen: cli.listen,
            data_dir: cli.data_dir.clone(),
        },
    };
    Ok(Config::load(&sources)?)
}

fn main() -> std::process::ExitCode {
    alloc::configure();
    let cli = Cli::parse();
    // `openapi` reads no configuration: the document is the same everywhere, and a broken
    // local confab.toml must not stop a type generation.
    let loaded = match cli.command {
        Command::Openapi => Ok(Config::default()),
        _ => load_config(&cli),
    };
    let config = match loaded {
        Ok(mut config) => {
            // Commands at a terminal only report problems unless asked for more.
            if !matches!(cli.command, Command::Serve(_)) && config.log.level == "info" {
                config.log.level = "warn".into();
            }
            config
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "confab: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "confab: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // Spans are exported by a server only (`telemetry.otlp_endpoint`), its exporter a task of
    // this runtime; a command at a terminal logs and exports nothing.
    let (telemetry, service) = match &cli.command {
        Command::Serve(args) => (
            config.telemetry.clone(),
            format!("confab-{}", args.services.to_string().replace(',', "-")),
        ),
        _ => (TelemetryConfig::default(), "confab".to_owned()),
    };
    let spans = {
        let _runtime = runtime.enter();
        match confab_core::telemetry::init(&config.log, &telemetry, &service) {
            Ok(spans) => spans,
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "confab: {e}");
                return std::process::ExitCode::from(2);
            }
        }
    };
    let outcome = runtime.block_on(run(cli.command, config));
    // The runtime still runs its exporter task here: the last spans go out before it stops.
    spans.shutdown();
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "confab failed");
            let _ = writeln!(std::io::stderr(), "confab: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        Command::Serve(args) => serve(config, args.services).await,
        Command::Config => {
            write!(out, "{}", config.to_redacted_toml()?)?;
            Ok(())
        }
        Command::Migrate(args) => {
            let db = Db::connect(&config.database_url(), &config.database).await?;
            let nats = config.bus.nats_url.is_some() && !args.services.is_all();
            for report in app::migrate_services(&db, &args.services, nats).await? {
                writeln!(
                    out,
                    "{}: {} applied now, {} before",
                    report.service, report.applied_now, report.applied_before
                )?;
            }
            db.close().await;
            Ok(())
        }
        Command::Users(users) => {
            let app = app::build(&config).await?;
            let result = users_command(&app, users, &mut out).await;
            app.db.close().await;
            result
        }
        Command::Models(command) => models_command(&config, command, &mut out).await,
        Command::Chat(args) => chat(&config, args, &mut out).await,
        Command::Audit(command) => audit_command(&config, command, &mut out).await,
        Command::Backup(args) => backup_command(&config, args, &mut out).await,
        Command::Restore { from } => {
            let restored =
                confab::backup::restore_at(&config, &confab::backup::Place::parse(&from)?).await?;
            report_verification(&restored, &mut out)?;
            writeln!(out, "restored {}", restored.location)?;
            Ok(())
        }
        Command::Openapi => openapi(&mut out).await,
        Command::Keys(KeysCommand::Rotate) => {
            let app = app::build(&config).await?;
            let kid = app.auth.keys().rotate().await?;
            app.auth
                .audit_cli(
                    AuthAction::SigningKeyRotated,
                    kid.to_string(),
                    serde_json::json!({}),
                )
                .await;
            writeln!(out, "new signing key {kid}")?;
            app.db.close().await;
            Ok(())
        }
    }
}

/// Prints the OpenAPI document as pretty JSON. The document is assembled from the services'
/// routers, which need a built application: it is built on the default configuration with a
/// throwaway SQLite database, so the output never depends on (nor touches) the local
/// configuration's database, and generated files stay the same on every machine.
async fn openapi(out: &mut impl Write) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("confab-openapi-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let config = Config {
        data_dir: dir.clone(),
        ..Config::default()
    };
    let result = async {
        let app = app::build(&config).await?;
        let json = serde_json::to_string_pretty(&app.openapi);
        app.shutdown.cancel();
        app.tasks.close();
        app.tasks.wait().await;
        app.db.close().await;
        writeln!(out, "{}", json?)?;
        anyhow::Ok(())
    }
    .await;
    // Best effort: a leftover directory in the temp dir is harmless.
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn audit_command(
    config: &Config,
    command: AuditCommand,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let db = Db::connect(&config.database_url(), &config.database).await?;
    let migrations = confab_admin::migrations();
    if config.database.auto_migrate {
        migrations.run(&db).await?;
    } else {
        migrations.verify(&db).await?;
    }
    let result = async {
        let log = confab_admin::SqlAuditLog::open(db.clone()).await?;
        let dir = confab_admin::archive_dir(&config.data_dir);
        match command {
            AuditCommand::Verify => {
                let report = log.verify_with_archives(Some(&dir)).await?;
                if let Some(broken) = report.first_broken {
                    bail!(
                        "audit log broken at {broken} ({} entries checked before it)",
                        report.entries
                    );
                }
                writeln!(
                    out,
                    "audit log intact: {} entries ({} archived, {} archive files checked)",
                    report.entries, report.archived_entries, report.archive_files_checked
                )?;
            }
            AuditCommand::Archive { days } => {
                let days = days.unwrap_or(config.admin.audit_retention_days);
                if days == 0 {
                    writeln!(
                        out,
                        "retention is off (admin.audit_retention_days = 0): nothing archived"
                    )?;
                    return Ok(());
                }
                let report = log.apply_retention(days, &dir).await?;
                for file in &report.files {
                    writeln!(
                        out,
                        "archived seq {} to {} into {}",
                        file.from_seq,
                        file.to_seq,
                        dir.join(&file.file_name).display()
                    )?;
                }
                writeln!(out, "{} entries archived", report.entries)?;
            }
        }
        Ok(())
    }
    .await;
    db.close().await;
    result
}

async fn backup_command(
    config: &Config,
    args: BackupArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    use confab::backup::Place;
    match (args.command, args.to) {
        (Some(BackupCommand::Verify { place }), _) => {
            let verification = confab::backup::verify_at(config, &Place::parse(&place)?).await?;
            report_verification(&verification, out)?;
            writeln!(out, "backup {} verified", verification.location)?;
        }
        (Some(BackupCommand::Prune { place, keep }), _) => {
            let (kept, removed) =
                confab::backup::prune_at(config, &Place::parse(&place)?, keep).await?;
            for location in &removed {
                writeln!(out, "removed {location}")?;
            }
            writeln!(
                out,
                "{} backups kept, {} removed",
                kept.len(),
                removed.len()
            )?;
        }
        (None, Some(to)) => {
            let created = confab::backup::create_at(config, &Place::parse(&to)?).await?;
            if !created.recorded {
                writeln!(
                    std::io::stderr(),
                    "confab: warning: the backup is complete but not recorded in admin_backups \
                     (confab_backup_last_success_timestamp_seconds will not move)"
                )?;
            }
            writeln!(
                out,
                "{}\t{} files, {} bytes, {} rows",
                created.location,
                created.manifest.files.len(),
                created.manifest.total_bytes(),
                created.manifest.row_counts.values().sum::<i64>()
            )?;
        }
        (None, None) => bail!("name where the backup goes: confab backup --to DIR"),
    }
    Ok(())
}

/// Prints what a restore or verification found; an error naming every problem if any.
fn report_verification(
    verification: &confab::backup::Verification,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if !verification.ok() {
        bail!(
            "the backup in {} does not match its manifest:\n  {}",
            verification.location,
            verification.problems.join("\n  ")
        );
    }
    writeln!(
        out,
        "{} backup of {}: {} files match their checksums, {} tables and {} rows match the \
         manifest, audit chain intact ({} entries)",
        verification.manifest.backend,
        verification.manifest.created_at,
        verification.manifest.files.len(),
        verification.manifest.row_counts.len(),
        verification.rows,
        verification.audit_entries
    )?;
    Ok(())
}

async fn serve(config: Config, services: confab::services::Services) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let listener = confab::server::bind(config.listen, services.is_gateway())
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let process = app::build_process(&config, &services).await?;
    tracing::info!(
        services = %services,
        startup_ms = started.elapsed().as_millis() as u64,
        database = if config.database.url.is_some() {
            "configured"
        } else {
            "sqlite (data dir)"
        },
        "ready"
    );
    confab::server::serve(
        process,
        listener,
        Duration::from_secs(config.server.shutdown_timeout_secs),
        confab::server::shutdown_signal(),
    )
    .await
}

fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Repeat password: ")?;
        if first != second {
            bail!("the passwords differ");
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\n', '\r']).to_owned())
    }
}

async fn users_command(
    app: &app::App,
    command: UsersCommand,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        UsersCommand::Create(args) => {
            let password = read_password()?;
            let name = args
                .name
                .unwrap_or_else(|| args.email.split('@').next().unwrap_or("user").to_owned());
            let role = if args.admin { Role::Admin } else { Role::User };
            let user = app
                .auth
                .create_user(
                    &args.email,
                    &name,
                    &password,
                    role,
                    UserStatus::Active,
                    false,
                )
                .await
                .map_err(describe)?;
            app.auth
                .audit_cli(
                    AuthAction::UserCreated,
                    user.id.to_string(),
                    serde_json::json!({"email": user.email, "role": user.role}),
                )
                .await;
            writeln!(out, "created {} ({}) {}", user.email, user.role, user.id)?;
        }
        UsersCommand::List { status } => {
            let status = match status.as_deref() {
                None => None,
                Some(s) => Some(
                    UserStatus::parse(s).context("status must be active, pending or disabled")?,
                ),
            };
            let mut after = None;
            loop {
                let filter = UserFilter {
                    status,
                    query: None,
                    after: after.clone(),
                    limit: 200,
                };
                let users = app.auth.list_users(&filter).await.map_err(describe)?;
                for user in users.iter().take(200) {
                    writeln!(
                        out,
                        "{}\t{}\t{}\t{}\t{}",
                        user.id,
                        user.email,
                        user.role,
                        user.status.as_str(),
                        user.name
                    )?;
                }
                if users.len() <= 200 {
                    break;
                }
                after = users.get(199).map(|u| (u.created_at, u.id.to_string()));
            }
        }
        UsersCommand::SetRole { email, role } => {
            let role: Role = role.parse().map_err(anyhow::Error::msg)?;
            let user = app
                .auth
                .set_role_by_email(&email, role)
                .await
                .map_err(describe)?;
            writeln!(out, "{} is now {}", user.email, user.role)?;
        }
        UsersCommand::Approve { email } => {
            let user = app.auth.approve_by_email(&email).await.map_err(describe)?;
            writeln!(out, "{} is now {}", user.email, user.status.as_str())?;
        }
    }
    Ok(())
}

/// Service errors as a person at a terminal wants them: the message and its reasons.
fn describe(error: confab_auth::AuthError) -> anyhow::Error {
    match error {
        confab_auth::AuthError::Invalid { message, .. } => anyhow::Error::msg(message),
        other => anyhow::Error::new(other),
    }
}

async fn models_command(
    config: &Config,
    command: ModelsCommand,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    use confab_inference::models::{ModelStore, Source};
    let store = ModelStore::from_config(config.models_dir(), &config.inference)?;
    match command {
        ModelsCommand::Pull { source, sha256 } => {
            let source = Source::parse(&source)?;
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message(source.model_name());
            let model = store
                .pull(&source, sha256.as_deref(), |p| {
                    if let Some(total) = p.total {
                        bar.set_length(total);
                    }
                    bar.set_position(p.bytes);
                })
                .await;
            bar.finish_and_clear();
            let model = model?;
            writeln!(
                out,
                "pulled {} ({} bytes, sha256 {})",
                model.name,
                model.size_bytes,
                model.sha256.as_deref().unwrap_or("?")
            )?;
        }
        ModelsCommand::List => {
            let models = store.list()?;
            if models.is_empty() {
                writeln!(
                    out,
                    "no local models in {}; run scripts/fetch-model.sh or `confab models pull <source>`",
                    store.dir().display()
                )?;
            }
            for model in models {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{} MB",
                    model.name,
                    model.meta.architecture.as_deref().unwrap_or("?"),
                    model.meta.parameters.as_deref().unwrap_or("?"),
                    model.meta.quantization.as_deref().unwrap_or("?"),
                    model.size_bytes / 1_000_000
                )?;
            }
        }
        ModelsCommand::Rm { name } => {
            store.remove(&name)?;
            writeln!(out, "removed {name}")?;
        }
    }
    Ok(())
}

async fn chat(config: &Config, args: ChatArgs, out: &mut impl Write) -> anyhow::Result<()> {
    use confab_inference::types::{ChatEvent, ChatMessage, ChatRequest, Role, SamplingParams};
    use futures::StreamExt;
    let metrics = confab_inference::metrics::InferenceMetrics::register(
        &mut confab_core::metrics::MetricsBuilder::new(),
    );
    let service = std::sync::Arc::new(confab_inference::InferenceService::new(
        confab_inference::service::InferenceDeps::standalone(metrics),
        confab_inference::service::InferenceSettings {
            config: config.inference.clone(),
            models_dir: config.models_dir(),
        },
    )?);
    // The person at the terminal owns the machine: an admin, with no account behind it
    // (no database, so nothing is recorded).
    let operator = confab_core::auth::Principal {
        user_id: uuid::Uuid::nil(),
        role: confab_core::auth::Role::Admin,
        credential: confab_core::auth::Credential::Session {
            session_id: uuid::Uuid::nil(),
        },
    };
    let Some(model) = args.model.or_else(|| service.default_model()) else {
        bail!(
            "no model to chat with: {} holds no GGUF model. Run scripts/fetch-model.sh, or `confab models pull <org/repo/file.gguf | URL | path>`",
            config.models_dir().display()
        );
    };
    let mut messages = Vec::new();
    if let Some(system) = args.system {
        messages.push(ChatMessage::new(Role::System, system));
    }
    let interactive = args.prompt.is_none();
    let mut pending = args.prompt;
    let stdin = std::io::stdin();
    loop {
        let prompt = match pending.take() {
            Some(prompt) => prompt,
            None if interactive => {
                write!(out, "> ")?;
                out.flush()?;
                let mut line = String::new();
                if stdin.lock().read_line(&mut line)? == 0 {
                    break;
                }
                let line = line.trim().to_owned();
                if line.is_empty() {
                    continue;
                }
                if line == "/exit" || line == "/quit" {
                    break;
                }
                line
            }
            None => break,
        };
        messages.push(ChatMessage::new(Role::User, prompt));
        let request = ChatRequest {
            model: model.clone(),
            messages: messages.clone(),
            params: SamplingParams {
                temperature: 0.7,
                max_tokens: Some(args.max_tokens),
                ..SamplingParams::default()
            },
            response_format: None,
            stream: true,
        };
        let mut stream = service
            .chat_completion(
                &operator,
                request,
                tokio_util::sync::CancellationToken::new(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .stream;
        let mut answer = String::new();
        while let Some(event) = stream.next().await {
            match event.map_err(|e| anyhow::anyhow!("{e}"))? {
                ChatEvent::Delta(text) => {
                    write!(out, "{text}")?;
                    out.flush()?;
                    answer.push_str(&text);
                }
                ChatEvent::Started | ChatEvent::Finished { .. } => {}
            }
        }
        writeln!(out)?;
        messages.push(ChatMessage::new(Role::Assistant, answer));
    }
    Ok(())
}
