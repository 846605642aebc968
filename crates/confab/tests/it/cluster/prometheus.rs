//! Debian's `prometheus` scrapes every process of the cluster (scrape interval 1 s) from a
//! configuration generated here, and the metrics come back through its HTTP API: one
//! `confab_build_info` per process with this binary's commit, `confab_nats_up` 1 everywhere,
//! and the metrics that belong to some processes only (the audit chain on admin, WebSockets
//! on chat, the data directory everywhere but the gateways).

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use super::{Cluster, Deps, NODES, Options, free_addr};

/// The `prometheus` binary, or a failure that says how to install it.
fn prometheus_binary() -> std::path::PathBuf {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("prometheus"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("`prometheus` is not installed: run scripts/deps.sh (Debian's `prometheus` package)")
    })
}

/// The values of `query` by the `node` label of each series.
async fn by_node(client: &reqwest::Client, api: &str, query: &str) -> Vec<(String, String)> {
    let answer: Value = client
        .get(format!("{api}/api/v1/query"))
        .query(&[("query", query)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["status"], "success", "{query}: {answer}");
    answer["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|series| {
            (
                series["metric"]["node"].as_str().unwrap().to_owned(),
                series["value"][1].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn nodes(series: &[(String, String)]) -> BTreeSet<&str> {
    series.iter().map(|(node, _)| node.as_str()).collect()
}

#[tokio::test]
async fn cluster_prometheus_scrapes_every_process() {
    let Some(deps) = Deps::from_env("cluster_prometheus_scrapes_every_process") else {
        return;
    };
    let binary = prometheus_binary();
    let cluster = Cluster::start(&deps, Options::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = String::from(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: confab\n    static_configs:\n",
    );
    for (name, _) in NODES {
        config.push_str(&format!(
            "      - targets: ['{}']\n        labels: {{node: '{name}'}}\n",
            cluster.addr(name)
        ));
    }
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, &config).unwrap();
    let listen = free_addr();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let _prometheus = tokio::process::Command::new(&binary)
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={listen}"))
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let api = format!("http://{listen}");
    let client = cluster.client.clone();
    let log_text =
        || std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();

    // Every target up: Prometheus has scraped each process at least once.
    let started = std::time::Instant::now();
    let mut last = Value::Null;
    loop {
        let targets = async {
            let answer = client.get(format!("{api}/api/v1/targets")).send().await;
            answer.ok()?.json::<Value>().await.ok()
        };
        if let Some(targets) = targets.await {
            let active = targets["data"]["activeTargets"].as_array().cloned();
            let healthy = active
                .iter()
                .flatten()
                .filter(|t| t["health"] == "up")
                .count();
            if healthy == NODES.len() {
                break;
            }
            last = targets;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "targets not up within 60 s: {last}\nprometheus said:\n{}",
            log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = started.elapsed();
    eprintln!("prometheus: every target up after {} ms", took.as_millis());

    let all: BTreeSet<&str> = NODES.iter().map(|(name, _)| *name).collect();
    let info = by_node(&client, &api, "confab_build_info").await;
    assert_eq!(nodes(&info), all, "{info:?}");
    let commits = by_node(
        &client,
        &api,
        "count by (node) (confab_build_info{commit=\"\"})",
    )
    .await;
    assert!(
        commits.is_empty(),
        "every process names its commit: {commits:?}"
    );

    let nats = by_node(&client, &api, "confab_nats_up").await;
    assert_eq!(nodes(&nats), all, "{nats:?}");
    assert!(nats.iter().all(|(_, v)| v == "1"), "{nats:?}");
    let memory = by_node(&client, &api, "process_resident_memory_bytes").await;
    assert_eq!(nodes(&memory), all, "{memory:?}");
    let cpu = by_node(&client, &api, "process_cpu_seconds_total").await;
    assert_eq!(nodes(&cpu), all, "{cpu:?}");

    // Metrics of some processes only.
    let audit = by_node(&client, &api, "confab_audit_chain_length").await;
    assert_eq!(nodes(&audit), BTreeSet::from(["admin"]), "{audit:?}");
    let sockets = by_node(&client, &api, "confab_websockets_active").await;
    assert_eq!(
        nodes(&sockets),
        BTreeSet::from(["chat1", "chat2"]),
        "{sockets:?}"
    );
    let disk = by_node(&client, &api, "confab_data_dir_capacity_bytes").await;
    let keeping_data: BTreeSet<&str> = all
        .iter()
        .copied()
        .filter(|n| !n.starts_with("gw"))
        .collect();
    assert_eq!(nodes(&disk), keeping_data, "{disk:?}");
}
