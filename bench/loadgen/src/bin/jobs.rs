//! The durable job queue under load: enqueues N jobs, drains them with the `Workers` runtime
//! running a no-op handler, then trickles jobs in at a steady rate and times each from
//! enqueue to its `job.updated` (succeeded) event. Each phase is set beside a raw baseline
//! on the same database: single-row INSERTs for the enqueue, two UPDATEs by primary key per
//! job (a claim and a finish) from as many tasks as workers for the drain, and one INSERT
//! plus one UPDATE in a row for the trickle, so the queue's own overhead shows. Enqueue and
//! its baseline alternate in chunks, and the drain's baseline runs half before and half
//! after it, so that other load on the machine weighs on both sides alike.
//!
//! Prints one JSON line.
//!
//! Usage: `jobs [--jobs 20000] [--workers 8] [--trickle 1000] [--rate 200] [--database-url URL]`
//! (default: a fresh SQLite file in a temporary directory; with a `postgres://` URL, the
//! bench's own rows are deleted first).

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use clap::Parser;
use confab_bus::{
    EventBus, Job, JobContext, JobFailure, JobHandler, JobQueue, MemoryBus, NewJob, Received,
    SqlJobQueue, WorkerConfig, Workers,
};
use confab_core::config::DatabaseConfig;
use confab_store::Db;
use futures::StreamExt;
use serde_json::json;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(about = "Durable job queue throughput and latency (benchmark)")]
struct Args {
    /// Jobs enqueued, then drained.
    #[arg(long, default_value_t = 20_000)]
    jobs: usize,
    /// Jobs run at once (the kind's concurrency; tasks of the raw baseline).
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// Jobs of the trickle phase.
    #[arg(long, default_value_t = 1_000)]
    trickle: usize,
    /// Jobs per second in the trickle phase.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    #[arg(long)]
    database_url: Option<String>,
}

const KIND: &str = "bench.noop";
const TRICKLE_KIND: &str = "bench.trickle";
/// Rows per alternating chunk of the enqueue phase.
const CHUNK: usize = 1_000;

struct Noop;

#[async_trait]
impl JobHandler for Noop {
    async fn run(&self, _job: &Job, _ctx: JobContext) -> Result<serde_json::Value, JobFailure> {
        Ok(serde_json::Value::Null)
    }
}

fn quantiles(mut samples: Vec<Duration>) -> serde_json::Value {
    if samples.is_empty() {
        return json!({"n": 0});
    }
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        (samples[i].as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
    };
    json!({"n": samples.len(), "p50_ms": at(0.5), "p90_ms": at(0.9), "p99_ms": at(0.99), "max_ms": at(1.0)})
}

fn per_second(count: usize, elapsed: Duration) -> f64 {
    (count as f64 / elapsed.as_secs_f64()).round()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("jobs.db").display()));
    let db = Db::connect(&url, &DatabaseConfig::default()).await?;
    confab_bus::migrations().run(&db).await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_raw_jobs (id TEXT PRIMARY KEY NOT NULL, \
         kind TEXT NOT NULL, payload TEXT NOT NULL, state TEXT NOT NULL, updated_at BIGINT NOT NULL)",
    )
    .execute(db.pool())
    .await?;
    sqlx::query("DELETE FROM bench_raw_jobs")
        .execute(db.pool())
        .await?;
    sqlx::query("DELETE FROM jobs WHERE kind IN ($1, $2)")
        .bind(KIND)
        .bind(TRICKLE_KIND)
        .execute(db.pool())
        .await?;

    // The enqueue beside its raw baseline (one INSERT per row), both one after another, in
    // alternating chunks so that other load on the machine weighs on both alike.
    let queue = Arc::new(SqlJobQueue::new(db.clone()));
    let mut raw_ids = Vec::with_capacity(args.jobs);
    let (mut raw_time, mut enqueue_time) = (Duration::ZERO, Duration::ZERO);
    for chunk in (0..args.jobs).collect::<Vec<_>>().chunks(CHUNK) {
        let started = Instant::now();
        for &i in chunk {
            let id = Uuid::now_v7().to_string();
            raw_insert(&db, &id, i).await?;
            raw_ids.push(id);
        }
        raw_time += started.elapsed();
        let started = Instant::now();
        for &i in chunk {
            queue.enqueue(NewJob::new(KIND, json!({ "i": i }))).await?;
        }
        enqueue_time += started.elapsed();
    }
    let raw_insert_rate = per_second(args.jobs, raw_time);
    let enqueue_rate = per_second(args.jobs, enqueue_time);

    // Raw baseline of the drain: a claim and a finish by primary key per row, from as many
    // tasks as the queue gets workers; half of the rows before the queue's drain, half after.
    let (first_half, second_half) = raw_ids.split_at(raw_ids.len() / 2);
    let mut raw_drain_time = raw_drain(&db, first_half.to_vec(), args.workers).await?;
    // The queue's drain: the Workers runtime, lease + complete per job.
    let bus = Arc::new(MemoryBus::new(65_536));
    let tracker = TaskTracker::new();
    let shutdown = CancellationToken::new();
    let mut workers = Workers::new(
        Arc::clone(&queue) as Arc<dyn JobQueue>,
        Arc::clone(&bus) as Arc<dyn EventBus>,
        WorkerConfig {
            name: "bench".to_owned(),
            ..WorkerConfig::default()
        },
    );
    workers.register(KIND, args.workers, Arc::new(Noop));
    workers.register(TRICKLE_KIND, args.workers, Arc::new(Noop));
    // Completions are counted from the succeeded events (published after the database
    // write); should the counter fall behind the bus, the database is asked instead.
    let mut updates = bus.subscribe(confab_bus::JOBS_TOPIC);
    let started = Instant::now();
    workers.start(&tracker, shutdown.clone());
    let mut succeeded = 0;
    while succeeded < args.jobs {
        match updates.next().await {
            Some(Received::Event(event)) => {
                if event.data["kind"] == KIND && event.data["state"] == "succeeded" {
                    succeeded += 1;
                }
            }
            Some(Received::Lagged(_)) | None => break,
        }
    }
    drop(updates);
    while succeeded < args.jobs {
        let done: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE kind = $1 AND state = 'succeeded'")
                .bind(KIND)
                .fetch_one(db.pool())
                .await?;
        succeeded = usize::try_from(done).unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drain_rate = per_second(args.jobs, started.elapsed());
    raw_drain_time += raw_drain(&db, second_half.to_vec(), args.workers).await?;
    let raw_drain_rate = per_second(args.jobs, raw_drain_time);

    // Raw baseline of one job's latency: an INSERT then an UPDATE.
    let mut raw_latency = Vec::with_capacity(args.trickle);
    let mut tick = tokio::time::interval(Duration::from_secs(1) / args.rate.max(1));
    for i in 0..args.trickle {
        tick.tick().await;
        let id = Uuid::now_v7().to_string();
        let started = Instant::now();
        raw_insert(&db, &id, i).await?;
        raw_update(&db, &id, "done").await?;
        raw_latency.push(started.elapsed());
    }

    // The trickle: enqueue at a steady rate, time each job to its succeeded event.
    let mut events = bus.subscribe(confab_bus::JOBS_TOPIC);
    let expected = args.trickle;
    let mut collector = JoinSet::new();
    collector.spawn(async move {
        let mut arrived: HashMap<Uuid, Instant> = HashMap::with_capacity(expected);
        let mut lagged = 0;
        while arrived.len() < expected {
            match tokio::time::timeout(Duration::from_secs(30), events.next()).await {
                Ok(Some(Received::Event(event))) => {
                    if event.data["kind"] == TRICKLE_KIND
                        && event.data["state"] == "succeeded"
                        && let Some(id) = event.data["id"].as_str().and_then(|s| s.parse().ok())
                    {
                        arrived.insert(id, Instant::now());
                    }
                }
                Ok(Some(Received::Lagged(n))) => lagged += n,
                Ok(None) | Err(_) => break,
            }
        }
        (arrived, lagged)
    });
    let mut enqueued: Vec<(Uuid, Instant)> = Vec::with_capacity(args.trickle);
    let mut tick = tokio::time::interval(Duration::from_secs(1) / args.rate.max(1));
    for i in 0..args.trickle {
        tick.tick().await;
        let started = Instant::now();
        let job = queue
            .enqueue(NewJob::new(TRICKLE_KIND, json!({ "i": i })))
            .await?;
        enqueued.push((job.id, started));
    }
    let (arrived, lagged) = collector
        .join_next()
        .await
        .context("the event collector")??;
    let latency: Vec<Duration> = enqueued
        .iter()
        .filter_map(|(id, at)| arrived.get(id).map(|done| done.duration_since(*at)))
        .collect();

    shutdown.cancel();
    tracker.close();
    tracker.wait().await;

    let raw_latency = quantiles(raw_latency);
    let latency = quantiles(latency);
    let ratio = |a: f64, b: f64| ((a / b) * 100.0).round() / 100.0;
    let line = json!({
        "backend": format!("{:?}", db.backend()),
        "jobs": args.jobs,
        "workers": args.workers,
        "enqueue_per_s": enqueue_rate,
        "raw_insert_per_s": raw_insert_rate,
        "enqueue_over_raw": ratio(enqueue_rate, raw_insert_rate),
        "drain_jobs_per_s": drain_rate,
        "raw_two_updates_per_s": raw_drain_rate,
        "drain_over_raw": ratio(drain_rate, raw_drain_rate),
        "trickle_rate_per_s": args.rate,
        "trickle_enqueue_to_done": latency,
        "trickle_lost_events": lagged,
        "raw_insert_update": raw_latency,
        "trickle_p50_over_raw": ratio(
            latency["p50_ms"].as_f64().unwrap_or(0.0),
            raw_latency["p50_ms"].as_f64().unwrap_or(1.0)
        ),
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").context("cannot write the result")?;
    db.close().await;
    Ok(())
}

/// Claims and finishes `ids` from `workers` tasks; returns the time it took.
async fn raw_drain(db: &Db, ids: Vec<String>, workers: usize) -> anyhow::Result<Duration> {
    let ids = Arc::new(ids);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..workers {
        let (db, ids, next) = (db.clone(), Arc::clone(&ids), Arc::clone(&next));
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(id) = ids.get(i) else {
                    return Ok::<_, anyhow::Error>(());
                };
                raw_update(&db, id, "running").await?;
                raw_update(&db, id, "done").await?;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(started.elapsed())
}

async fn raw_insert(db: &Db, id: &str, i: usize) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO bench_raw_jobs (id, kind, payload, state, updated_at) \
         VALUES ($1, $2, $3, 'queued', $4)",
    )
    .bind(id)
    .bind(KIND)
    .bind(json!({ "i": i }).to_string())
    .bind(confab_core::now_ms())
    .execute(db.writer())
    .await?;
    Ok(())
}

async fn raw_update(db: &Db, id: &str, state: &str) -> anyhow::Result<()> {
    sqlx::query("UPDATE bench_raw_jobs SET state = $1, updated_at = $2 WHERE id = $3")
        .bind(state)
        .bind(confab_core::now_ms())
        .bind(id)
        .execute(db.writer())
        .await?;
    Ok(())
}
