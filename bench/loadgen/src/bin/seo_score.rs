//! The SEO studio's validation and scoring on one thread, beside plain JSON parsing of the
//! same packages: generated-like packages (five title candidates, a ~250-word body,
//! chapters, 15 tags, hashtags) are made once through the repair, then each round parses
//! every package's JSON (`serde_json::from_str::<Package>`) and validates and scores every
//! package (`validate_package` + `score`), each operation timed.
//!
//! Prints one JSON line: packages/s and p50/p99 latency for both, and the ratio of scoring
//! time to parsing time (the target: at most 3, and at least 50,000 packages/s scored).
//!
//! Usage: `seo-score [--packages 20000] [--rounds 5]`

use std::hint::black_box;
use std::io::Write;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use confab_seo::domain::draft::{Draft, DraftChapter, DraftTitle};
use confab_seo::domain::{
    Link, Package, RepairContext, ScoreContext, TitleStrategy, Weights, evaluate, repair,
};
use hdrhistogram::Histogram;
use serde_json::json;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 20_000)]
    packages: usize,
    #[arg(long, default_value_t = 5)]
    rounds: usize,
}

const WORDS: [&str; 16] = [
    "sourdough",
    "starter",
    "flour",
    "water",
    "crumb",
    "crust",
    "oven",
    "proof",
    "shape",
    "bake",
    "knead",
    "salt",
    "dough",
    "loaf",
    "steam",
    "rise",
];

fn sentence(i: usize, n: usize) -> String {
    let words: Vec<&str> = (0..n)
        .map(|k| WORDS[(i * 7 + k * 3) % WORDS.len()])
        .collect();
    format!("{}.", words.join(" "))
}

fn draft(i: usize) -> Draft {
    Draft {
        titles: TitleStrategy::ALL
            .iter()
            .map(|&s| DraftTitle {
                text: format!("Sourdough Bread {} {}", s.as_str(), sentence(i, 5)),
                strategy: Some(s),
            })
            .collect(),
        hook: format!("Sourdough bread at home: {}", sentence(i, 10)),
        body: (0..25)
            .map(|k| sentence(i + k, 10))
            .collect::<Vec<_>>()
            .join(" "),
        tags: (0..15)
            .map(|k| format!("{} bread {k}", WORDS[(i + k) % WORDS.len()]))
            .collect(),
        hashtags: vec![
            "sourdough".into(),
            "bread".into(),
            format!("baking{}", i % 10),
        ],
        chapters: (0..8)
            .map(|k| DraftChapter {
                start_secs: Some(k * 100 + (i as u32 % 7)),
                title: sentence(i + k as usize, 3),
            })
            .collect(),
        thumbnail_texts: vec!["Perfect Crust Every Time".into(), "No Knead Loaf".into()],
    }
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).context("histogram bounds")
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let secondary = vec!["sourdough starter".to_owned(), "bread baking".to_owned()];
    let links = vec![Link {
        label: "Recipe".into(),
        url: "https://example.com/recipe".into(),
    }];
    let ctx = RepairContext {
        primary_keyword: "sourdough bread",
        secondary_keywords: &secondary,
        topic: "Sourdough for beginners",
        links: &links,
        call_to_action: Some("Subscribe for a new loaf every week."),
        duration_secs: Some(900),
        segments: &[],
        default_hashtags: &[],
    };
    let packages: Vec<Package> = (0..args.packages)
        .map(|i| repair(&draft(i), &ctx))
        .collect();
    let jsons: Vec<String> = packages
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<_, _>>()
        .context("serialise")?;
    let score_ctx = ScoreContext {
        primary_keyword: "sourdough bread".into(),
        secondary_keywords: secondary.clone(),
        duration_secs: Some(900),
        thumbnail_texts: Vec::new(),
    };
    let weights = Weights::default();

    let (mut parse_h, mut score_h) = (histogram()?, histogram()?);
    let (mut parse_ns, mut score_ns) = (0u128, 0u128);
    for _ in 0..args.rounds {
        // As the service does with a hand edit: parse a package, then validate and score
        // what was parsed. Each step is timed on its own.
        for json in &jsons {
            let start = Instant::now();
            let package: Package = serde_json::from_str(json).context("parse")?;
            black_box(&package);
            let ns = start.elapsed().as_nanos();
            parse_ns += ns;
            parse_h.record(u64::try_from(ns).unwrap_or(u64::MAX).max(1))?;

            let start = Instant::now();
            black_box(evaluate(&package, &score_ctx, &weights));
            let ns = start.elapsed().as_nanos();
            score_ns += ns;
            score_h.record(u64::try_from(ns).unwrap_or(u64::MAX).max(1))?;
        }
    }
    let ops = (args.packages * args.rounds) as f64;
    let per_s = |ns: u128| ops / (ns as f64 / 1e9);
    let mean_bytes = jsons.iter().map(String::len).sum::<usize>() / jsons.len().max(1);
    let line = json!({
        "bench": "seo-score",
        "packages": args.packages,
        "rounds": args.rounds,
        "mean_json_bytes": mean_bytes,
        "parse": {
            "per_s": per_s(parse_ns).round(),
            "p50_us": parse_h.value_at_quantile(0.5) as f64 / 1e3,
            "p99_us": parse_h.value_at_quantile(0.99) as f64 / 1e3,
        },
        "validate_and_score": {
            "per_s": per_s(score_ns).round(),
            "p50_us": score_h.value_at_quantile(0.5) as f64 / 1e3,
            "p99_us": score_h.value_at_quantile(0.99) as f64 / 1e3,
        },
        "ratio_score_to_parse": (score_ns as f64 / parse_ns.max(1) as f64 * 100.0).round() / 100.0,
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").context("cannot write the result")?;
    Ok(())
}
