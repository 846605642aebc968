//! An HTTP/1.1 load generator for servers started on this machine (benchmarks only).
//!
//! Two modes, each bounded by `--duration` (plus an optional unrecorded `--warmup`):
//! - `--rate R`: open loop. Request *i* is due at `start + i / R` whether or not earlier ones
//!   have answered; latency is measured from the moment a request was due, so a server (or a
//!   load generator) that falls behind shows it in the latency instead of hiding it
//!   (no coordinated omission). `--max-in-flight` bounds the requests outstanding; past it a
//!   due request is counted as `dropped` rather than sent. `--dump FILE` writes each recorded
//!   request's due time and latency, one line each.
//!   With `--sides FILE` (instead of `--url`) the open loop goes to several servers in turn:
//!   time is cut into `--slice-ms` slices, each cycle of slices visits every side once in a
//!   random order, and a request goes to the side whose slice it is due in. Every side then
//!   sees `R` requests/s during its slices and the same machine (background work, slow
//!   wake-ups) as the others over the run, so their latencies can be compared percentile by
//!   percentile; separate runs one after another differ by the drift between them. The
//!   result gets a `sides` list with each side's figures (the dump a third column, the
//!   side's index).
//! - `--concurrency C`: closed loop. C workers each send the next request as soon as the
//!   previous one has been read to the end: the maximum throughput.
//!
//! Every response body is read to the end. With `--stream` the time to the first body byte is
//! recorded too, and a response must contain `[DONE]` to count as a success. One JSON line
//! with the results goes to stdout.
//!
//! Usage: `loadgen --url http://127.0.0.1:8080/v1/chat/completions --header 'authorization: Bearer cfk_…'
//! --body-file body.json [--stream] (--rate 1000 | --concurrency 32) --duration 10 [--warmup 2]`

mod record;
mod sides;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use http::{HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio::time::Instant;

use record::{Outcome, Record, figures, micros};
use sides::{Schedule, Side, checked_url};

#[derive(Debug, Parser)]
#[command(about = "HTTP load generator for loopback benchmarks")]
struct Args {
    /// The URL to load: http:// on a loopback address only.
    #[arg(long, required_unless_present = "sides", conflicts_with = "sides")]
    url: Option<Uri>,
    /// Open loop over several servers in turn: a JSON file, a list of
    /// `{"name": …, "url": …, "headers": ["name: value", …]}` (the headers after --header's).
    #[arg(long)]
    sides: Option<std::path::PathBuf>,
    /// With --sides: the length of one side's slice of time, in milliseconds.
    #[arg(long, default_value_t = 100)]
    slice_ms: u64,
    /// A request header, `name: value`; repeatable.
    #[arg(long = "header")]
    headers: Vec<String>,
    /// A JSON request body: the request is a POST with `content-type: application/json`
    /// (a GET without it).
    #[arg(long)]
    body_file: Option<std::path::PathBuf>,
    /// Responses are server-sent events: record the time to first byte and require `[DONE]`.
    #[arg(long)]
    stream: bool,
    /// Open loop: requests per second.
    #[arg(
        long,
        conflicts_with = "concurrency",
        required_unless_present = "concurrency"
    )]
    rate: Option<f64>,
    /// Closed loop: workers, each with one request in flight.
    #[arg(long)]
    concurrency: Option<usize>,
    /// Seconds of recorded load.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before recording starts (connections open, caches warm).
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    /// Per-request limit in milliseconds; a request past it is a `timeout` error.
    #[arg(long, default_value_t = 30_000)]
    timeout_ms: u64,
    /// Open loop: most requests outstanding at once; past it due requests are dropped.
    #[arg(long, default_value_t = 20_000)]
    max_in_flight: usize,
    /// Tokio worker threads of the load generator.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// A label copied into the JSON line.
    #[arg(long, default_value = "")]
    label: String,
    /// Open loop: write each recorded request as a line `due_us latency_us` (due time from
    /// the start of recording), to see whether slow requests come together.
    #[arg(long)]
    dump: Option<std::path::PathBuf>,
}

/// The request every worker sends (to one side).
struct Target {
    client: Client<HttpConnector, Full<Bytes>>,
    method: Method,
    uri: Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    stream: bool,
    timeout: Duration,
}

impl Target {
    fn request(&self) -> anyhow::Result<Request<Full<Bytes>>> {
        let mut builder = Request::builder()
            .method(self.method.clone())
            .uri(self.uri.clone());
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        Ok(builder.body(Full::new(self.body.clone()))?)
    }

    /// Sends one request and reads the whole answer; times count from `due`.
    async fn send(&self, due: Instant) -> Outcome {
        let result = tokio::time::timeout(self.timeout, self.exchange(due)).await;
        let latency = due.elapsed();
        match result {
            Ok(Ok(ttfb)) => Outcome {
                latency,
                ttfb,
                error: None,
            },
            Ok(Err(kind)) => Outcome {
                latency,
                ttfb: None,
                error: Some(kind),
            },
            Err(_) => Outcome {
                latency,
                ttfb: None,
                error: Some("timeout".into()),
            },
        }
    }

    async fn exchange(&self, due: Instant) -> Result<Option<Duration>, String> {
        let request = self.request().map_err(|_| "request".to_owned())?;
        let response = self.client.request(request).await.map_err(|e| {
            if e.is_connect() {
                "connect".to_owned()
            } else {
                "io".to_owned()
            }
        })?;
        let status = response.status();
        let mut body = response.into_body();
        let mut ttfb = None;
        let mut tail: Vec<u8> = Vec::new();
        let mut done = false;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| "body".to_owned())?;
            if let Some(data) = frame.data_ref() {
                if ttfb.is_none() && !data.is_empty() {
                    ttfb = Some(due.elapsed());
                }
                if self.stream && !done {
                    // `[DONE]` may straddle two frames: search the last bytes of the previous
                    // frame together with this one.
                    tail.extend_from_slice(data);
                    done = tail.windows(6).any(|w| w == b"[DONE]");
                    let keep = tail.len().saturating_sub(5);
                    tail.drain(..keep);
                }
            }
        }
        if !status.is_success() {
            return Err(format!("status_{}", status.as_u16()));
        }
        if self.stream && !done {
            return Err("no_done".into());
        }
        Ok(ttfb)
    }
}

fn secs(s: f64, what: &str) -> anyhow::Result<Duration> {
    if !(s.is_finite() && (0.0..=3600.0).contains(&s)) {
        bail!("--{what} must be between 0 and 3600 seconds");
    }
    Ok(Duration::from_secs_f64(s))
}

/// What a run recorded: a record per side (one without --sides), and with `--dump` each
/// recorded open-loop request as (due after recording began, latency, side), in microseconds.
struct Recorded {
    sides: Vec<Record>,
    samples: Option<Vec<(u64, u64, usize)>>,
}

impl Recorded {
    /// One finished task: recorded (due this long after recording began) or warm-up.
    fn reap(&mut self, done: Result<Sent, tokio::task::JoinError>) {
        match done {
            Ok(Sent {
                recorded: Some(due),
                side,
                outcome,
            }) => {
                if let Some(samples) = &mut self.samples {
                    samples.push((micros(due), micros(outcome.latency), side));
                }
                if let Some(record) = self.sides.get_mut(side) {
                    record.add(outcome);
                }
            }
            Ok(Sent { recorded: None, .. }) => {}
            Err(_) => {
                if let Some(record) = self.sides.first_mut() {
                    *record.errors.entry("task".into()).or_default() += 1;
                }
            }
        }
    }
}

/// One open-loop request, answered.
struct Sent {
    recorded: Option<Duration>,
    side: usize,
    outcome: Outcome,
}

/// Open loop at `rate` requests per second, to `targets[0]` or, with a schedule, to the side
/// whose slice each request is due in. This thread keeps the schedule with the operating
/// system's sleep (tens of microseconds late, where the runtime's timer wheel would be up to a
/// millisecond late) and hands each due request to the runtime's workers.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the run's parameters, as given"
)]
fn open_loop(
    runtime: &tokio::runtime::Runtime,
    targets: &[Arc<Target>],
    schedule: Option<&Schedule>,
    rate: f64,
    warmup: Duration,
    duration: Duration,
    max_in_flight: usize,
    dump: bool,
) -> anyhow::Result<(Recorded, Duration)> {
    if !(rate.is_finite() && rate > 0.0 && rate <= 1_000_000.0) {
        bail!("--rate must be between 0 and 1000000");
    }
    let _runtime = runtime.enter();
    let total = ((warmup + duration).as_secs_f64() * rate).floor() as u64;
    let start = Instant::now();
    let recording = start + warmup;
    let offset = |i: u64| Duration::from_secs_f64(i as f64 / rate);
    let due = |i: u64| start + offset(i);
    let mut run = Recorded {
        sides: targets
            .iter()
            .map(|_| Record::new())
            .collect::<anyhow::Result<_>>()?,
        samples: dump.then(|| Vec::with_capacity(usize::try_from(total).unwrap_or(0))),
    };
    let mut tasks: JoinSet<Sent> = JoinSet::new();
    let mut i = 0;
    while i < total {
        let now = Instant::now();
        while i < total && due(i) <= now {
            let when = due(i);
            let side = schedule.map_or(0, |s| s.side(offset(i)));
            let recorded = when >= recording;
            i += 1;
            let Some(target) = targets.get(side) else {
                continue;
            };
            let mut record = run.sides.get_mut(side).filter(|_| recorded);
            if let Some(record) = record.as_deref_mut() {
                record.lag.saturating_record(micros(now - when));
            }
            if tasks.len() >= max_in_flight {
                if let Some(record) = record {
                    record.dropped += 1;
                }
                continue;
            }
            let target = target.clone();
            let at = recorded.then(|| when - recording);
            tasks.spawn(async move {
                Sent {
                    recorded: at,
                    side,
                    outcome: target.send(when).await,
                }
            });
        }
        while let Some(done) = tasks.try_join_next() {
            run.reap(done);
        }
        if i < total {
            std::thread::sleep(due(i).saturating_duration_since(Instant::now()));
        }
    }
    // The recorded window: as scheduled, or longer when sending itself fell behind.
    let sent_for = start.elapsed().saturating_sub(warmup).max(duration);
    // Wait for the stragglers (each is bounded by the request timeout).
    runtime.block_on(async {
        while let Some(done) = tasks.join_next().await {
            run.reap(done);
        }
    });
    Ok((run, sent_for))
}

/// Closed loop with `concurrency` workers.
async fn closed_loop(
    target: Arc<Target>,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<(Record, Duration)> {
    if concurrency == 0 || concurrency > 10_000 {
        bail!("--concurrency must be between 1 and 10000");
    }
    let start = Instant::now();
    let recording = start + warmup;
    let end = recording + duration;
    let mut workers: JoinSet<anyhow::Result<Record>> = JoinSet::new();
    for _ in 0..concurrency {
        let target = target.clone();
        workers.spawn(async move {
            let mut record = Record::new()?;
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let outcome = target.send(sent).await;
                if sent >= recording {
                    record.add(outcome);
                }
            }
            anyhow::Ok(record)
        });
    }
    let mut total = Record::new()?;
    while let Some(done) = workers.join_next().await {
        total.merge(&done.context("a worker failed")??)?;
    }
    // Requests sent before the end count; the last ones finish a little after it.
    let elapsed = start.elapsed().saturating_sub(warmup);
    Ok((total, elapsed.max(duration)))
}

fn parse_header(line: &str) -> anyhow::Result<(HeaderName, HeaderValue)> {
    let (name, value) = line
        .split_once(':')
        .with_context(|| format!("--header {line:?} is not `name: value`"))?;
    Ok((
        HeaderName::from_bytes(name.trim().as_bytes()).context("header name")?,
        HeaderValue::from_str(value.trim()).context("header value")?,
    ))
}

/// The sides to load: `--url` alone, or each of the `--sides` file's.
fn sides(args: &Args) -> anyhow::Result<Vec<Side>> {
    match (&args.url, &args.sides) {
        (Some(url), _) => {
            checked_url(url)?;
            Ok(vec![Side {
                name: String::new(),
                url: url.clone(),
                headers: Vec::new(),
            }])
        }
        (None, Some(path)) => sides::load(path),
        (None, None) => bail!("give --url or --sides"),
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let sides = sides(&args)?;
    if args.dump.is_some() && args.rate.is_none() {
        bail!("--dump records open-loop runs only: give --rate");
    }
    if args.sides.is_some() && args.rate.is_none() {
        bail!("--sides interleaves open-loop runs only: give --rate");
    }
    let warmup = secs(args.warmup, "warmup")?;
    let duration = secs(args.duration, "duration")?;
    if duration.is_zero() {
        bail!("--duration must be positive");
    }
    let mut headers = args
        .headers
        .iter()
        .map(|h| parse_header(h.as_str()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (method, body) = match &args.body_file {
        Some(path) => {
            let body =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            serde_json::from_slice::<Value>(&body)
                .with_context(|| format!("{} is not JSON", path.display()))?;
            if !headers.iter().any(|(n, _)| n == http::header::CONTENT_TYPE) {
                headers.push((
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ));
            }
            (Method::POST, Bytes::from(body))
        }
        None => (Method::GET, Bytes::new()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let client = {
        let _runtime = runtime.enter();
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_keepalive(Some(Duration::from_secs(60)));
        Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(usize::MAX)
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector)
    };
    let targets = sides
        .iter()
        .map(|side| {
            let mut headers = headers.clone();
            for h in &side.headers {
                headers.push(parse_header(h)?);
            }
            Ok(Arc::new(Target {
                client: client.clone(),
                method: method.clone(),
                uri: side.url.clone(),
                headers,
                body: body.clone(),
                stream: args.stream,
                timeout: Duration::from_millis(args.timeout_ms.max(1)),
            }))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (run, elapsed) = match (args.rate, args.concurrency) {
        (Some(rate), _) => {
            let schedule = match targets.len() {
                1 => None,
                n => Some(Schedule::new(
                    n,
                    Duration::from_millis(args.slice_ms),
                    warmup + duration,
                )?),
            };
            open_loop(
                &runtime,
                &targets,
                schedule.as_ref(),
                rate,
                warmup,
                duration,
                args.max_in_flight,
                args.dump.is_some(),
            )?
        }
        (None, Some(c)) => {
            let target = targets.first().context("no side to load")?.clone();
            let (record, elapsed) = runtime.block_on(closed_loop(target, c, warmup, duration))?;
            (
                Recorded {
                    sides: vec![record],
                    samples: None,
                },
                elapsed,
            )
        }
        (None, None) => bail!("give --rate or --concurrency"),
    };
    if let (Some(path), Some(samples)) = (&args.dump, &run.samples) {
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        );
        for (due, latency, side) in samples {
            if sides.len() > 1 {
                writeln!(file, "{due} {latency} {side}")
            } else {
                writeln!(file, "{due} {latency}")
            }
            .context("cannot write the dump")?;
        }
        file.flush().context("cannot write the dump")?;
    }
    let seconds = elapsed.as_secs_f64().max(1e-9);
    let mut record = Record::new()?;
    for side in &run.sides {
        record.merge(side)?;
    }
    let mut line = figures(&record, seconds, args.stream);
    line["label"] = json!(args.label);
    line["mode"] = json!(if args.rate.is_some() {
        "rate"
    } else {
        "concurrency"
    });
    line["stream"] = json!(args.stream);
    line["target_rate"] = json!(args.rate);
    line["concurrency"] = json!(args.concurrency);
    line["duration_s"] = json!((seconds * 1000.0).round() / 1000.0);
    if let Some(url) = &args.url {
        line["url"] = json!(url.to_string());
    } else {
        // Each side had 1/n of the time: its rate is over its own slices.
        let share = seconds / sides.len() as f64;
        line["slice_ms"] = json!(args.slice_ms);
        line["sides"] = sides
            .iter()
            .zip(&run.sides)
            .map(|(side, record)| {
                let mut figures = figures(record, share, args.stream);
                figures["name"] = json!(side.name);
                figures["url"] = json!(side.url.to_string());
                figures
            })
            .collect();
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").context("cannot write the result")?;
    Ok(())
}
