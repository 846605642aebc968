//! The `confab` command line: `serve`, `migrate`, `config`, `users`, `keys`.

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
use confab_core::config::{Config, Overrides, Sources};
use confab_store::Db;

#[derive(Debug, Parser)]
#[command(
    name = "confab",
    version,
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
    /// Run the all-in-one server.
    Serve,
    /// Apply pending database migrations of every service.
    Migrate,
    /// Print the effective configuration, secrets redacted.
    Config,
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage the keys that sign access tokens.
    #[command(subcommand)]
    Keys(KeysCommand),
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
    let cli = Cli::parse();
    let config = match load_config(&cli) {
        Ok(config) => config,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "confab: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Err(e) = confab_core::telemetry::init(&config.log) {
        let _ = writeln!(std::io::stderr(), "confab: {e}");
        return std::process::ExitCode::from(2);
    }
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
    match runtime.block_on(run(cli.command, config)) {
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
        Command::Serve => serve(config).await,
        Command::Config => {
            write!(out, "{}", config.to_redacted_toml()?)?;
            Ok(())
        }
        Command::Migrate => {
            let db = Db::connect(&config.database_url(), &config.database).await?;
            for report in app::migrate(&db).await? {
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
        Command::Keys(KeysCommand::Rotate) => {
            let app = app::build(&config).await?;
            let kid = app.auth.keys().rotate().await?;
            writeln!(out, "new signing key {kid}")?;
            app.db.close().await;
            Ok(())
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let app = app::build(&config).await?;
    tracing::info!(
        startup_ms = started.elapsed().as_millis() as u64,
        database = if config.database.url.is_some() {
            "configured"
        } else {
            "sqlite (data dir)"
        },
        "ready"
    );
    confab::server::serve(
        app,
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
