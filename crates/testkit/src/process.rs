//! The real `confab` binary, spawned on port 0 (or a fixed address, so that it can be
//! restarted where it was), for end-to-end tests.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running `confab serve`.
#[derive(Debug)]
pub struct ConfabProcess {
    pub child: Child,
    pub addr: SocketAddr,
    /// Every stderr line after the listening line, collected in the background.
    pub logs: tokio::sync::mpsc::UnboundedReceiver<String>,
}

/// How [`ConfabProcess::spawn_with`] starts the binary.
#[derive(Debug, Clone)]
pub struct SpawnOptions {
    /// `--services LIST` (split mode); `None` runs the all-in-one process.
    pub services: Option<String>,
    /// `--listen ADDR`; `None` is `127.0.0.1:0` (a free port).
    pub listen: Option<SocketAddr>,
    /// How long the process may take to log that it listens.
    pub start_timeout: Duration,
}

impl Default for SpawnOptions {
    fn default() -> Self {
        Self {
            services: None,
            listen: None,
            start_timeout: Duration::from_secs(30),
        }
    }
}

impl ConfabProcess {
    /// Starts `bin serve --listen 127.0.0.1:0` with `env` added, and waits until it logs the
    /// address it listens on (it only does so once ready).
    pub async fn spawn(bin: &Path, data_dir: &Path, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::spawn_with(bin, data_dir, &SpawnOptions::default(), env).await
    }

    /// Starts `bin serve` as `options` say, with `env` added, and waits until it logs the
    /// address it listens on.
    pub async fn spawn_with(
        bin: &Path,
        data_dir: &Path,
        options: &SpawnOptions,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let listen = options
            .listen
            .map_or_else(|| "127.0.0.1:0".to_owned(), |a| a.to_string());
        let mut command = Command::new(bin);
        command.args(["serve", "--listen", &listen]);
        if let Some(services) = &options.services {
            command.args(["--services", services]);
        }
        command
            .arg("--data-dir")
            .arg(data_dir)
            .current_dir(data_dir)
            .envs(env.iter().copied())
            .env("CONFAB_LOG__FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("spawn {}", bin.display()))?;
        let stderr = child.stderr.take().context("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = Vec::new();
        let waited = options.start_timeout;
        let addr = tokio::time::timeout(waited, async {
            while let Some(line) = lines.next_line().await? {
                if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line)
                    && value["message"] == "listening"
                {
                    let addr = value["addr"]
                        .as_str()
                        .context("listening line without addr")?;
                    return Ok::<_, anyhow::Error>(Some(addr.parse::<SocketAddr>()?));
                }
                seen.push(line);
            }
            Ok(None)
        })
        .await
        .with_context(|| format!("confab did not start within {waited:?}"))??;
        let Some(addr) = addr else {
            bail!(
                "confab exited before listening; its output:\n{}",
                seen.join("\n")
            );
        };
        let (tx, logs) = tokio::sync::mpsc::unbounded_channel();
        #[expect(
            clippy::disallowed_methods,
            reason = "a test helper draining a pipe until the child exits"
        )]
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Self { child, addr, logs })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Kills the process without warning (SIGKILL) and waits until it is gone.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.start_kill().context("kill -9")?;
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .context("confab did not exit within 10 s of SIGKILL")??;
        Ok(())
    }

    /// [`Self::terminate`], handing back the log lines still to be read (the last ones may
    /// still be on their way through the pipe when the process has exited).
    pub async fn terminate_with_logs(
        mut self,
    ) -> anyhow::Result<(
        std::process::ExitStatus,
        tokio::sync::mpsc::UnboundedReceiver<String>,
    )> {
        let logs = std::mem::replace(&mut self.logs, tokio::sync::mpsc::unbounded_channel().1);
        Ok((self.terminate().await?, logs))
    }

    /// Sends SIGTERM and waits for the exit status.
    pub async fn terminate(mut self) -> anyhow::Result<std::process::ExitStatus> {
        let pid = self.child.id().context("already exited")?;
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await?;
        if !status.success() {
            bail!("kill -TERM {pid} failed");
        }
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .context("confab did not exit within 30 s of SIGTERM")??;
        Ok(status)
    }
}
