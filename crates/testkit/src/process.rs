//! The real `confab` binary, spawned on port 0, for end-to-end tests.

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

impl ConfabProcess {
    /// Starts `bin serve --listen 127.0.0.1:0` with `env` added, and waits until it logs the
    /// address it listens on (it only does so once ready).
    pub async fn spawn(bin: &Path, data_dir: &Path, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let mut command = Command::new(bin);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
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
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
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
        .context("confab did not start within 30 s")??;
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
