//! The embedded engine driven directly, without Confab's HTTP layer: loads a GGUF file with
//! `confab_inference::engine::Engine::load` and generates with `Engine::generate`, exactly
//! as the server's embedded provider does, timing each generation the way `bench/engine.py`
//! times a streamed HTTP answer.
//!
//! Per generation one JSON line goes to stdout: completion tokens (from the engine's usage),
//! seconds from the first to the last text piece, tokens/s over that span
//! ((tokens − 1) ÷ span, the same formula as the HTTP side), the time to the first piece and
//! a hash of the text (to check both sides generated the same answer).
//!
//! Usage: `engine-direct --model target/test-models/SmolLM2-135M-Instruct.Q4_1.gguf
//! --threads 2 --max-tokens 256 --prompt "…" [--runs 3 | --stdin]`
//! With `--stdin` it loads the model, prints `{"ready": true}` and then runs one generation
//! per line read from stdin until end of input (so a script can interleave it with another
//! measurement while the model stays loaded).

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Parser;
use confab_inference::engine::{Engine, EngineSettings};
use confab_inference::types::{ChatEvent, ChatMessage, Role, SamplingParams};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(about = "Generate with the embedded engine directly (benchmark)")]
struct Args {
    /// The GGUF file.
    #[arg(long)]
    model: PathBuf,
    /// CPU threads (the server's `inference.engine.threads`).
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// Context tokens (the server's default: 4096).
    #[arg(long, default_value_t = 4096)]
    context_size: u32,
    /// Prompt tokens per step (the server's default: 512).
    #[arg(long, default_value_t = 512)]
    batch_size: u32,
    /// Most generated tokens.
    #[arg(long, default_value_t = 256)]
    max_tokens: u32,
    /// The user message.
    #[arg(long)]
    prompt: String,
    /// Generations to run (after one unrecorded warm-up) when not reading stdin.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Run one generation per line of stdin instead of `--runs`.
    #[arg(long)]
    stdin: bool,
}

/// FNV-1a, enough to tell whether two answers are the same text.
fn fnv1a(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

fn generate(engine: &Engine, args: &Args) -> anyhow::Result<serde_json::Value> {
    let params = SamplingParams {
        temperature: 0.0,
        max_tokens: Some(args.max_tokens),
        ..SamplingParams::default()
    };
    let started = Instant::now();
    let mut events = engine.generate(
        vec![ChatMessage::new(Role::User, args.prompt.clone())],
        params,
        None,
        CancellationToken::new(),
    )?;
    let mut first = None;
    let mut last = None;
    let mut pieces = 0u32;
    let mut text = String::new();
    while let Some(event) = events.blocking_recv() {
        match event? {
            ChatEvent::Started => {}
            ChatEvent::Delta(piece) => {
                let now = Instant::now();
                if first.is_none() {
                    first = Some(now);
                }
                last = Some(now);
                pieces += 1;
                text.push_str(&piece);
            }
            ChatEvent::Finished { reason, usage } => {
                let (Some(first), Some(last)) = (first, last) else {
                    bail!("the engine generated no text");
                };
                let span = (last - first).as_secs_f64();
                let tokens = usage.completion_tokens;
                let tokens_per_s = if span > 0.0 {
                    f64::from(tokens.saturating_sub(1)) / span
                } else {
                    0.0
                };
                return Ok(json!({
                    "completion_tokens": tokens,
                    "prompt_tokens": usage.prompt_tokens,
                    "pieces": pieces,
                    "finish_reason": reason,
                    "span_s": span,
                    "tokens_per_s": tokens_per_s,
                    "ttft_s": (first - started).as_secs_f64(),
                    "total_s": started.elapsed().as_secs_f64(),
                    "text_hash": fnv1a(&text),
                }));
            }
        }
    }
    bail!("the generation ended without finishing")
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let settings = EngineSettings {
        threads: args.threads,
        context_size: args.context_size,
        parallel: 1,
        batch_size: args.batch_size,
        queue: 0,
    };
    let name = args
        .model
        .file_stem()
        .map_or_else(|| "model".to_owned(), |s| s.to_string_lossy().into_owned());
    let engine = Engine::load(&name, &args.model, &settings)
        .with_context(|| format!("cannot load {}", args.model.display()))?;
    let mut out = std::io::stdout().lock();
    if args.stdin {
        writeln!(out, "{}", json!({"ready": true}))?;
        out.flush()?;
        for line in std::io::stdin().lock().lines() {
            line?;
            writeln!(out, "{}", generate(&engine, &args)?)?;
            out.flush()?;
        }
    } else {
        generate(&engine, &args)?; // warm-up
        for _ in 0..args.runs {
            writeln!(out, "{}", generate(&engine, &args)?)?;
        }
    }
    Ok(())
}
