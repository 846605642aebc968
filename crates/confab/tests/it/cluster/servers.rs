//! Servers of a fault test's own, so that restarting them disturbs no other test: PostgreSQL
//! (through scripts/lib/postgres.sh, which finds the binaries, runs initdb and starts it as
//! the right user), Redis and NATS with JetStream (its store kept across restarts), each on a
//! free loopback port it comes back on. Each is stopped and its files removed on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use super::{free_addr, release};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `script` in bash after sourcing scripts/lib/postgres.sh, with `args` as `$1…`.
fn postgres_script(script: &str, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new("bash");
    command
        .arg("-c")
        .arg(format!("source scripts/lib/postgres.sh\n{script}"))
        .arg("postgres.sh")
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::null());
    command
}

/// Where a server of `start_postgres` lives (the script's variables).
#[derive(Debug, Clone)]
struct PgState {
    port: String,
    dir: String,
    bindir: String,
    owner: String,
}

/// The script's state, restored from the values `start_postgres` printed.
const RESTORE: &str = "_PG_DIR=$1; _PG_BINDIR=$2; _PG_OWNER=$3";

impl PgState {
    fn run(&self, script: &str) -> Result<(), String> {
        let output = postgres_script(
            &format!("{RESTORE}\n{script}"),
            &[&self.dir, &self.bindir, &self.owner, &self.port],
        )
        .output()
        .map_err(|e| e.to_string())?;
        if output.status.success() {
            return Ok(());
        }
        let log = std::fs::read_to_string(Path::new(&self.dir).join("postgres.log"));
        Err(format!(
            "{script}: {}\n{}\nits log: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            log.unwrap_or_default()
        ))
    }
}

/// A throwaway PostgreSQL server of one test.
pub(crate) struct OwnPostgres {
    /// The server's URL (database `postgres`; its user may create databases).
    pub url: String,
    state: PgState,
}

impl OwnPostgres {
    pub(crate) async fn start() -> Self {
        let output = tokio::task::spawn_blocking(|| {
            postgres_script(
                "start_postgres >&2 && printf '%s\\n' \"$TEST_POSTGRES_URL\" \"$_PG_DIR\" \
                 \"$_PG_BINDIR\" \"$_PG_OWNER\"",
                &[],
            )
            // The test server's `synchronous_commit = off` acknowledges commits whose WAL an
            // immediate stop loses; this test must lose nothing acknowledged.
            .env("PG_EXTRA_CONF", "synchronous_commit = on")
            .output()
        })
        .await
        .unwrap()
        .unwrap();
        assert!(
            output.status.success(),
            "start_postgres: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8(output.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let url = lines[0].to_owned();
        let port = url
            .rsplit_once(':')
            .unwrap()
            .1
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        Self {
            url,
            state: PgState {
                port,
                dir: lines[1].to_owned(),
                bindir: lines[2].to_owned(),
                owner: lines.get(3).copied().unwrap_or_default().to_owned(),
            },
        }
    }

    /// Stops the server at once (`pg_ctl -m immediate`: like a crash).
    pub(crate) async fn stop(&self) {
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || {
            state
                .run(
                    "_pg_as_owner \"$_PG_BINDIR/pg_ctl\" -D \"$_PG_DIR/data\" -m immediate -w \
                     -t 30 stop",
                )
                .unwrap();
        })
        .await
        .unwrap();
    }

    /// Starts it again on its port and waits until it accepts connections (three tries: the
    /// port may still be held for a moment after the stop).
    pub(crate) async fn start_again(&self) {
        let mut failures = Vec::new();
        for _ in 0..3 {
            let state = self.state.clone();
            match tokio::task::spawn_blocking(move || state.run("_pg_start_on \"$4\""))
                .await
                .unwrap()
            {
                Ok(()) => {
                    if !failures.is_empty() {
                        eprintln!("postgres restarted after failed tries: {failures:?}");
                    }
                    return;
                }
                Err(e) => failures.push(e),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("PostgreSQL did not start again: {failures:#?}");
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let state = &self.state;
        let _ = postgres_script(
            &format!("{RESTORE}\nstop_postgres"),
            &[&state.dir, &state.bindir, &state.owner],
        )
        .status();
    }
}

/// Waits until something accepts connections on `addr` (bounded).
async fn wait_listening(addr: SocketAddr, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "{what} did not start on {addr}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A `redis-server` of one test, without persistence.
pub(crate) struct OwnRedis {
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl OwnRedis {
    pub(crate) async fn start() -> Self {
        let mut redis = Self {
            addr: free_addr(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        redis.run().await;
        redis
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    async fn run(&mut self) {
        release(self.addr);
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.addr.port().to_string(),
            ])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server (scripts/deps.sh installs it)");
        self.child = Some(child);
        wait_listening(self.addr, "redis-server").await;
    }

    /// Kills the server (its data goes with it: no persistence).
    pub(crate) async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    pub(crate) async fn start_again(&mut self) {
        self.run().await;
    }
}

/// A `nats-server -js` of one test; its JetStream store survives restarts.
pub(crate) struct OwnNats {
    pub addr: SocketAddr,
    monitor: SocketAddr,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl OwnNats {
    pub(crate) async fn start() -> Self {
        let mut nats = Self {
            addr: free_addr(),
            monitor: free_addr(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        nats.run().await;
        nats
    }

    pub(crate) fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    async fn run(&mut self) {
        let server = ["/usr/sbin/nats-server", "/usr/local/bin/nats-server"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("nats-server");
        release(self.addr);
        release(self.monitor);
        let child = Command::new(server)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.addr.port().to_string(),
            ])
            .args(["-m", &self.monitor.port().to_string(), "-sd"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server (scripts/deps.sh installs it)");
        self.child = Some(child);
        // Healthy once JetStream is up.
        let url = format!("http://{}/healthz", self.monitor);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = reqwest::get(&url).await
                && r.status() == 200
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "nats-server did not become healthy"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the server with SIGTERM (a clean shutdown that keeps its store).
    pub(crate) async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().unwrap();
            let status = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await
                .unwrap();
            assert!(status.success());
            tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .expect("nats-server stops within 10 s of SIGTERM")
                .unwrap();
        }
    }

    pub(crate) async fn start_again(&mut self) {
        self.run().await;
    }
}
