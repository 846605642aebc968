//! Event fan-out latency: one publisher sends events at a steady rate to one topic that many
//! subscribers follow (as one user's open tabs, or many users' on a hot topic), while other
//! topics carry as many events again to subscribers of their own (noise the bus must route
//! around). Each delivery's latency runs from just before `publish` to the moment the
//! subscriber's stream yields it; the publish instant travels in the payload, as nanoseconds
//! since the start of the run (one process, one monotonic clock).
//!
//! Runs [`MemoryBus`] (the all-in-one server's bus), then [`NatsBus`] when a NATS URL is given
//! (`--nats-url` or `TEST_NATS_URL`; `scripts/lib/nats.sh` starts a throwaway server): the
//! publisher and the subscribers on two connections, as two replicas would be. Prints a table
//! with p50, p99 and max latency, deliveries per second and the NATS / memory ratios, then one
//! JSON line.
//!
//! Usage: `fanout [--subscribers 100] [--events 10000] [--rate 2000] [--noise-topics 10]
//! [--nats-url nats://127.0.0.1:4222]`

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use confab_bus::{Envelope, EventBus, MemoryBus, NatsBus, Received};
use futures::StreamExt;
use futures::stream::BoxStream;
use hdrhistogram::Histogram;
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(about = "Event bus fan-out latency (benchmark)")]
struct Args {
    /// Subscribers of the measured topic.
    #[arg(long, default_value_t = 100)]
    subscribers: usize,
    /// Events published to the measured topic.
    #[arg(long, default_value_t = 10_000)]
    events: usize,
    /// Events per second to the measured topic (the noise topics get as many again).
    #[arg(long, default_value_t = 2_000)]
    rate: u32,
    /// Other topics, one subscriber each, sharing the noise events round-robin.
    #[arg(long, default_value_t = 10)]
    noise_topics: usize,
    /// Payload padding in bytes, to make events the size of a chat delta.
    #[arg(long, default_value_t = 200)]
    padding: usize,
    /// NATS server for the NatsBus run (else `TEST_NATS_URL`; neither: memory only).
    #[arg(long)]
    nats_url: Option<String>,
}

/// What one bus run measured.
struct Run {
    name: &'static str,
    latency: Histogram<u64>,
    /// Deliveries expected and received on the measured topic.
    expected: u64,
    received: u64,
    /// `Lagged` notices and the events they reported missed.
    lagged: u64,
    /// From the first publish to the last delivery.
    elapsed: Duration,
    /// Events received on noise topics (each subscriber must get exactly its own).
    noise_received: u64,
    noise_expected: u64,
}

impl Run {
    fn per_second(&self) -> f64 {
        (self.received + self.noise_received) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn summary(&self) -> Value {
        json!({
            "bus": self.name,
            "deliveries": self.received,
            "expected": self.expected,
            "lagged": self.lagged,
            "noise_deliveries": self.noise_received,
            "p50_us": self.latency.value_at_quantile(0.5),
            "p99_us": self.latency.value_at_quantile(0.99),
            "max_us": self.latency.max(),
            "deliveries_per_s": self.per_second().round(),
            "seconds": self.elapsed.as_secs_f64(),
        })
    }
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 600_000_000, 3).context("histogram bounds")
}

/// What one subscriber saw.
struct Seen {
    latency: Histogram<u64>,
    received: u64,
    lagged: u64,
    last: Instant,
}

/// Reads `stream` until `expected` events came, or nothing came for `idle` after the
/// publisher finished (`done` then holds its end).
async fn subscriber(
    mut stream: BoxStream<'static, Received>,
    expected: u64,
    start: Instant,
    done: Arc<tokio::sync::Notify>,
) -> anyhow::Result<Seen> {
    let mut seen = Seen {
        latency: histogram()?,
        received: 0,
        lagged: 0,
        last: start,
    };
    let idle = Duration::from_secs(3);
    let finished = done.notified();
    tokio::pin!(finished);
    let mut publisher_done = false;
    while seen.received < expected {
        let next = if publisher_done {
            match tokio::time::timeout(idle, stream.next()).await {
                Ok(next) => next,
                Err(_) => break,
            }
        } else {
            tokio::select! {
                next = stream.next() => next,
                () = &mut finished => {
                    publisher_done = true;
                    continue;
                }
            }
        };
        let now = start.elapsed();
        match next {
            Some(Received::Event(event)) => {
                let sent = event.data["t"].as_u64().unwrap_or(0);
                let micros = u64::try_from(now.as_nanos())
                    .unwrap_or(u64::MAX)
                    .saturating_sub(sent)
                    / 1_000;
                seen.latency.saturating_record(micros.max(1));
                seen.received += 1;
                seen.last = Instant::now();
            }
            Some(Received::Lagged(n)) => seen.lagged += n.max(1),
            None => break,
        }
    }
    Ok(seen)
}

async fn run(
    name: &'static str,
    publisher: Arc<dyn EventBus>,
    subscribers: Arc<dyn EventBus>,
    args: &Args,
    settle: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<Run> {
    let topic = format!("bench.fanout.{}", uuid::Uuid::now_v7().simple());
    let noise: Vec<String> = (0..args.noise_topics)
        .map(|i| format!("{topic}.noise{i}"))
        .collect();
    let start = Instant::now();
    let done = Arc::new(tokio::sync::Notify::new());
    let expected = u64::try_from(args.events)?;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.subscribers {
        let stream = subscribers.subscribe(&topic);
        tasks.spawn(subscriber(stream, expected, start, Arc::clone(&done)));
    }
    let mut noise_tasks = tokio::task::JoinSet::new();
    let per_noise = |i: usize| {
        // Noise event j goes to topic j % noise_topics.
        u64::try_from((args.events + args.noise_topics - 1 - i) / args.noise_topics.max(1))
            .unwrap_or(0)
    };
    for (i, noise_topic) in noise.iter().enumerate() {
        let stream = subscribers.subscribe(noise_topic);
        noise_tasks.spawn(subscriber(stream, per_noise(i), start, Arc::clone(&done)));
    }
    settle.await?;

    let padding = "x".repeat(args.padding);
    let interval = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
    let first = Instant::now();
    for i in 0..args.events {
        let due = first + interval.mul_f64(i as f64);
        let now = Instant::now();
        if due > now + Duration::from_millis(1) {
            tokio::time::sleep_until(due.into()).await;
        }
        if !noise.is_empty() {
            let noise_topic = &noise[i % noise.len()];
            let t = u64::try_from(start.elapsed().as_nanos())?;
            publisher
                .publish(Envelope::new(
                    noise_topic.as_str(),
                    "message.delta",
                    json!({ "t": t, "i": i, "text": padding }),
                ))
                .await?;
        }
        let t = u64::try_from(start.elapsed().as_nanos())?;
        publisher
            .publish(Envelope::new(
                topic.as_str(),
                "message.delta",
                json!({ "t": t, "i": i, "text": padding }),
            ))
            .await?;
    }
    done.notify_waiters();

    let mut latency = histogram()?;
    let (mut received, mut lagged, mut last) = (0, 0, first);
    while let Some(seen) = tasks.join_next().await {
        let seen = seen??;
        latency.add(&seen.latency)?;
        received += seen.received;
        lagged += seen.lagged;
        last = last.max(seen.last);
    }
    let mut noise_received = 0;
    while let Some(seen) = noise_tasks.join_next().await {
        let seen = seen??;
        noise_received += seen.received;
        last = last.max(seen.last);
    }
    Ok(Run {
        name,
        latency,
        expected: expected * u64::try_from(args.subscribers)?,
        received,
        lagged,
        elapsed: last.duration_since(first),
        noise_received,
        noise_expected: if args.noise_topics == 0 { 0 } else { expected },
    })
}

fn ratio(nats: u64, memory: u64) -> f64 {
    nats as f64 / (memory.max(1) as f64)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.subscribers == 0 || args.events == 0 {
        bail!("--subscribers and --events must be positive");
    }
    let nats_url = args.nats_url.clone().or_else(|| {
        std::env::var("TEST_NATS_URL")
            .ok()
            .filter(|u| !u.is_empty())
    });

    let memory: Arc<dyn EventBus> = Arc::new(MemoryBus::default());
    let mut runs = vec![
        run("MemoryBus", Arc::clone(&memory), memory, &args, async {
            Ok(())
        })
        .await?,
    ];
    if let Some(url) = &nats_url {
        let publisher = NatsBus::connect(url).await?;
        let subscribers = NatsBus::connect(url).await?;
        let settle = {
            let subscribers = subscribers.clone();
            async move {
                // The subscriptions are live on the server before the first publish.
                subscribers.flush().await?;
                Ok(())
            }
        };
        runs.push(
            run(
                "NatsBus",
                Arc::new(publisher),
                Arc::new(subscribers),
                &args,
                settle,
            )
            .await?,
        );
    }

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "event fan-out: {} subscribers on one topic, {} events at {}/s, {} noise topics \
         with as many events again, {} B padding",
        args.subscribers, args.events, args.rate, args.noise_topics, args.padding
    )?;
    writeln!(
        out,
        "{:<12} {:>12} {:>8} {:>9} {:>9} {:>9} {:>14}",
        "bus", "deliveries", "lagged", "p50 µs", "p99 µs", "max µs", "deliveries/s"
    )?;
    for r in &runs {
        writeln!(
            out,
            "{:<12} {:>12} {:>8} {:>9} {:>9} {:>9} {:>14.0}",
            r.name,
            format!("{}/{}", r.received, r.expected),
            r.lagged,
            r.latency.value_at_quantile(0.5),
            r.latency.value_at_quantile(0.99),
            r.latency.max(),
            r.per_second()
        )?;
        if r.noise_received != r.noise_expected {
            writeln!(
                out,
                "  noise topics: {} of {} events delivered",
                r.noise_received, r.noise_expected
            )?;
        }
    }
    if let [memory, nats] = runs.as_slice() {
        writeln!(
            out,
            "NATS / memory: p50 {:.1}x, p99 {:.1}x, max {:.1}x",
            ratio(
                nats.latency.value_at_quantile(0.5),
                memory.latency.value_at_quantile(0.5)
            ),
            ratio(
                nats.latency.value_at_quantile(0.99),
                memory.latency.value_at_quantile(0.99)
            ),
            ratio(nats.latency.max(), memory.latency.max())
        )?;
    } else {
        writeln!(
            out,
            "(no NATS URL: --nats-url or TEST_NATS_URL runs NatsBus too)"
        )?;
    }
    let summary: Vec<Value> = runs.iter().map(Run::summary).collect();
    writeln!(
        out,
        "{}",
        json!({
            "subscribers": args.subscribers,
            "events": args.events,
            "rate": args.rate,
            "noise_topics": args.noise_topics,
            "runs": summary,
        })
    )?;
    Ok(())
}
