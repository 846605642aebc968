//! An HTTP/1.1 load generator for servers started on this machine (benchmarks only).
//!
//! Two modes, each bounded by `--duration` (plus an optional unrecorded `--warmup`):
//! - `--rate R`: open loop. Request *i* is due at `start + i / R` whether or not earlier ones
//!   have answered; latency is measured from the moment a request was due, so a server (or a
//!   load generator) that falls behind shows it in the latency instead of hiding it
//!   (no coordinated omission). `--max-in-flight` bounds the requests outstanding; past it a
//!   due request is counted as `dropped` rather than sent. `--dump FILE` writes each recorded
//!   request's due time and latency, one line each.
//! - `--concurrency C`: closed loop. C workers each send the next request as soon as the
//!   previous one has been read to the end: the maximum throughput.
//!
//! Every response body is read to the end. With `--stream` the time to the first body byte is
//! recorded too, and a response must contain `[DONE]` to count as a success. One JSON line
//! with the results goes to stdout.
//!
//! Usage: `loadgen --url http://127.0.0.1:8080/v1/chat/completions --header 'authorization: Bearer cfk_…'
//! --body-file body.json [--stream] (--rate 1000 | --concurrency 32) --duration 10 [--warmup 2]`

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use http::{HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio::time::Instant;

#[derive(Debug, Parser)]
#[command(about = "HTTP load generator for loopback benchmarks")]
struct Args {
    /// The URL to load: http:// on a loopback address only.
    #[arg(long)]
    url: Uri,
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

/// The request every worker sends.
struct Target {
    client: Client<HttpConnector, Full<Bytes>>,
    method: Method,
    uri: Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    stream: bool,
    timeout: Duration,
}

/// What happened to one request.
struct Outcome {
    latency: Duration,
    ttfb: Option<Duration>,
    error: Option<String>,
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

/// Recorded results of one worker or of the whole run.
struct Record {
    latency: Histogram<u64>,
    ttfb: Histogram<u64>,
    lag: Histogram<u64>,
    errors: BTreeMap<String, u64>,
    ok: u64,
    dropped: u64,
    /// With `--dump`: (due, latency) of each recorded open-loop request, in microseconds.
    samples: Option<Vec<(u64, u64)>>,
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    // Microseconds, 1 µs to 10 min, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).context("histogram bounds")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

impl Record {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            latency: histogram()?,
            ttfb: histogram()?,
            lag: histogram()?,
            errors: BTreeMap::new(),
            ok: 0,
            dropped: 0,
            samples: None,
        })
    }

    fn add(&mut self, outcome: Outcome) {
        self.latency.saturating_record(micros(outcome.latency));
        match outcome.error {
            None => {
                self.ok += 1;
                if let Some(ttfb) = outcome.ttfb {
                    self.ttfb.saturating_record(micros(ttfb));
                }
            }
            Some(kind) => *self.errors.entry(kind).or_default() += 1,
        }
    }

    /// One finished open-loop task: recorded (due this long after recording began) or
    /// warm-up.
    fn reap(&mut self, done: Result<(Option<Duration>, Outcome), tokio::task::JoinError>) {
        match done {
            Ok((Some(due), outcome)) => {
                if let Some(samples) = &mut self.samples {
                    samples.push((micros(due), micros(outcome.latency)));
                }
                self.add(outcome);
            }
            Ok((None, _)) => {}
            Err(_) => *self.errors.entry("task".into()).or_default() += 1,
        }
    }

    fn merge(&mut self, other: &Record) -> anyhow::Result<()> {
        self.latency.add(&other.latency).context("merge")?;
        self.ttfb.add(&other.ttfb).context("merge")?;
        self.lag.add(&other.lag).context("merge")?;
        for (kind, n) in &other.errors {
            *self.errors.entry(kind.clone()).or_default() += n;
        }
        self.ok += other.ok;
        self.dropped += other.dropped;
        Ok(())
    }

    fn errors(&self) -> u64 {
        self.errors.values().sum::<u64>() + self.dropped
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn summary(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return Value::Null;
    }
    json!({
        "p50": ms(h.value_at_quantile(0.50)),
        "p90": ms(h.value_at_quantile(0.90)),
        "p99": ms(h.value_at_quantile(0.99)),
        "p999": ms(h.value_at_quantile(0.999)),
        "max": ms(h.max()),
        "mean": (h.mean()).round() / 1000.0,
    })
}

fn secs(s: f64, what: &str) -> anyhow::Result<Duration> {
    if !(s.is_finite() && (0.0..=3600.0).contains(&s)) {
        bail!("--{what} must be between 0 and 3600 seconds");
    }
    Ok(Duration::from_secs_f64(s))
}

/// Open loop at `rate` requests per second. This thread keeps the schedule with the
/// operating system's sleep (tens of microseconds late, where the runtime's timer wheel
/// would be up to a millisecond late) and hands each due request to the runtime's workers.
fn open_loop(
    runtime: &tokio::runtime::Runtime,
    target: &Arc<Target>,
    rate: f64,
    warmup: Duration,
    duration: Duration,
    max_in_flight: usize,
    dump: bool,
) -> anyhow::Result<(Record, Duration)> {
    if !(rate.is_finite() && rate > 0.0 && rate <= 1_000_000.0) {
        bail!("--rate must be between 0 and 1000000");
    }
    let _runtime = runtime.enter();
    let total = ((warmup + duration).as_secs_f64() * rate).floor() as u64;
    let start = Instant::now();
    let recording = start + warmup;
    let due = |i: u64| start + Duration::from_secs_f64(i as f64 / rate);
    let mut record = Record::new()?;
    if dump {
        record.samples = Some(Vec::with_capacity(usize::try_from(total).unwrap_or(0)));
    }
    let mut tasks: JoinSet<(Option<Duration>, Outcome)> = JoinSet::new();
    let mut i = 0;
    while i < total {
        let now = Instant::now();
        while i < total && due(i) <= now {
            let when = due(i);
            let recorded = when >= recording;
            i += 1;
            if recorded {
                record.lag.saturating_record(micros(now - when));
            }
            if tasks.len() >= max_in_flight {
                if recorded {
                    record.dropped += 1;
                }
                continue;
            }
            let target = target.clone();
            let at = recorded.then(|| when - recording);
            tasks.spawn(async move { (at, target.send(when).await) });
        }
        while let Some(done) = tasks.try_join_next() {
            record.reap(done);
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
            record.reap(done);
        }
    });
    Ok((record, sent_for))
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

/// Load goes only to servers on this machine.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.url.scheme_str() != Some("http") {
        bail!("only http:// URLs are supported");
    }
    if !is_loopback(args.url.host().unwrap_or_default()) {
        bail!("only loopback hosts (127.0.0.0/8, localhost, [::1]) may be loaded");
    }
    if args.dump.is_some() && args.rate.is_none() {
        bail!("--dump records open-loop runs only: give --rate");
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
    let target = Arc::new(Target {
        client,
        method,
        uri: args.url.clone(),
        headers,
        body,
        stream: args.stream,
        timeout: Duration::from_millis(args.timeout_ms.max(1)),
    });
    let (record, elapsed) = match (args.rate, args.concurrency) {
        (Some(rate), _) => open_loop(
            &runtime,
            &target,
            rate,
            warmup,
            duration,
            args.max_in_flight,
            args.dump.is_some(),
        )?,
        (None, Some(c)) => runtime.block_on(closed_loop(target, c, warmup, duration))?,
        (None, None) => bail!("give --rate or --concurrency"),
    };
    if let (Some(path), Some(samples)) = (&args.dump, &record.samples) {
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        );
        for (due, latency) in samples {
            writeln!(file, "{due} {latency}").context("cannot write the dump")?;
        }
        file.flush().context("cannot write the dump")?;
    }
    let seconds = elapsed.as_secs_f64().max(1e-9);
    let requests = record.ok + record.errors();
    let line = json!({
        "label": args.label,
        "mode": if args.rate.is_some() { "rate" } else { "concurrency" },
        "url": args.url.to_string(),
        "stream": args.stream,
        "target_rate": args.rate,
        "concurrency": args.concurrency,
        "duration_s": (seconds * 1000.0).round() / 1000.0,
        "requests": requests,
        "ok": record.ok,
        "errors": record.errors(),
        "error_kinds": {
            "dropped": record.dropped,
            "other": record.errors,
        },
        "rps": (record.ok as f64 / seconds * 10.0).round() / 10.0,
        "latency_ms": summary(&record.latency),
        "ttfb_ms": if args.stream { summary(&record.ttfb) } else { Value::Null },
        "send_lag_ms": summary(&record.lag),
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").context("cannot write the result")?;
    Ok(())
}
