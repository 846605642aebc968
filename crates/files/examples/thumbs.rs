//! Thumbnail cost per image (issue 17): `confab_files::images::variants`, what the
//! `files.variants` job runs (header probe, decode under limits, EXIF orientation, a 1600 px
//! preview, a 320 px thumbnail made from it, both encoded), against the least work a thumbnail
//! needs: decode with `image` and one `fast_image_resize` resize (Lanczos3, as `variants` uses)
//! to 320 px on the longer side, nothing encoded. Decoding alone is timed too, as the floor both
//! share.
//!
//! ```sh
//! cargo run --release -p confab-files --example thumbs -- [--jpegs 20] [--pngs 20] [--rounds 3]
//! ```
//!
//! The images are made here, each from its own seed: `--jpegs` JPEGs of 4000×3000 (quality 90)
//! and `--pngs` PNGs of 2000×2000 (RGB), of a photo-like pattern (gradients, waves and pixel
//! noise, so they compress like photographs rather than like flat colour). Every image is
//! processed `--rounds` times by each of the three, the order rotating between rounds; the time
//! of an image is its median over the rounds. One thread: `variants` runs on one blocking thread
//! in the server too.

use std::error::Error;
use std::hint::black_box;
use std::io::{Cursor, Write};
use std::time::Instant;

use confab_files::images::{ImageLimits, variants};
use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{DynamicImage, ImageReader, RgbImage};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const THUMB_SIDE: u32 = 320;

struct Args {
    jpegs: usize,
    pngs: usize,
    rounds: usize,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        jpegs: 20,
        pngs: 20,
        rounds: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let n: usize = value.parse().map_err(|e| format!("{flag} {value}: {e}"))?;
        match flag.as_str() {
            "--jpegs" => args.jpegs = n,
            "--pngs" => args.pngs = n,
            "--rounds" => args.rounds = n.max(1),
            _ => {
                return Err(
                    format!("unknown option {flag} (--jpegs N, --pngs N, --rounds N)").into(),
                );
            }
        }
    }
    Ok(args)
}

/// A photo-like RGB image: smooth gradients, a few waves, and per-pixel noise (xorshift).
fn synthetic(width: u32, height: u32, seed: u64) -> RgbImage {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let phase = (seed % 97) as f32 / 97.0 * std::f32::consts::TAU;
    let (w, h) = (width as f32, height as f32);
    RgbImage::from_fn(width, height, |x, y| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let noise = (state % 25) as f32 - 12.0;
        let (fx, fy) = (x as f32 / w, y as f32 / h);
        let wave = ((fx * 23.0 + phase).sin() * (fy * 17.0).cos()) * 40.0;
        let channel = |base: f32| -> u8 { (base + wave + noise).clamp(0.0, 255.0) as u8 };
        image::Rgb([
            channel(60.0 + 150.0 * fx),
            channel(40.0 + 170.0 * fy),
            channel(200.0 - 120.0 * (fx + fy) / 2.0),
        ])
    })
}

fn encode_jpeg(image: RgbImage) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    DynamicImage::ImageRgb8(image)
        .write_with_encoder(JpegEncoder::new_with_quality(&mut bytes, 90))?;
    Ok(bytes)
}

fn encode_png(image: RgbImage) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    DynamicImage::ImageRgb8(image).write_with_encoder(PngEncoder::new(&mut bytes))?;
    Ok(bytes)
}

fn decode(bytes: &[u8]) -> Result<DynamicImage> {
    Ok(ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()?
        .decode()?)
}

/// Decode and one resize to [`THUMB_SIDE`] on the longer side: the minimum a thumbnail costs.
fn direct(resizer: &mut Resizer, bytes: &[u8]) -> Result<DynamicImage> {
    let image = decode(bytes)?;
    let (width, height) = (image.width(), image.height());
    let longer = width.max(height);
    let scale = |side: u32| ((u64::from(side) * u64::from(THUMB_SIDE)) / u64::from(longer)).max(1);
    let mut thumb = DynamicImage::new(
        u32::try_from(scale(width))?,
        u32::try_from(scale(height))?,
        image.color(),
    );
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    resizer.resize(&image, &mut thumb, &options)?;
    Ok(thumb)
}

/// Resized so the longer side is `max_side` (Lanczos3), as `variants` does.
fn shrink(resizer: &mut Resizer, image: &DynamicImage, max_side: u32) -> Result<DynamicImage> {
    let (width, height) = (image.width(), image.height());
    let longer = width.max(height);
    let scale = |side: u32| ((u64::from(side) * u64::from(max_side)) / u64::from(longer)).max(1);
    let mut out = DynamicImage::new(
        u32::try_from(scale(width))?,
        u32::try_from(scale(height))?,
        image.color(),
    );
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    resizer.resize(image, &mut out, &options)?;
    Ok(out)
}

/// The steps of `variants`, timed one by one on one image (the same settings: Lanczos3, the
/// thumbnail from the preview, JPEG quality 82), median of `rounds`: where its time goes.
fn breakdown(bytes: &[u8], rounds: usize) -> Result<[f64; 5]> {
    let mut resizer = Resizer::new();
    let mut samples: [Vec<f64>; 5] = Default::default();
    for _ in 0..rounds {
        let mut lap = Instant::now();
        let mut next = |k: usize, samples: &mut [Vec<f64>; 5]| {
            samples[k].push(lap.elapsed().as_secs_f64() * 1000.0);
            lap = Instant::now();
        };
        let image = decode(bytes)?;
        next(0, &mut samples);
        let preview = shrink(&mut resizer, &image, 1600)?;
        next(1, &mut samples);
        let thumb = shrink(&mut resizer, &preview, THUMB_SIDE)?;
        next(2, &mut samples);
        for (k, encoded) in [(3, &preview), (4, &thumb)] {
            let mut out = Vec::new();
            encoded.write_with_encoder(JpegEncoder::new_with_quality(&mut out, 82))?;
            black_box(out);
            next(k, &mut samples);
        }
    }
    Ok(samples.map(|mut s| median(&mut s)))
}

#[derive(Clone, Copy)]
enum Op {
    Decode,
    Direct,
    Variants,
}

const OPS: [Op; 3] = [Op::Decode, Op::Direct, Op::Variants];

/// Runs one operation on one image; milliseconds.
fn time_op(op: Op, resizer: &mut Resizer, bytes: &[u8], limits: &ImageLimits) -> Result<f64> {
    let started = Instant::now();
    match op {
        Op::Decode => {
            black_box(decode(bytes)?);
        }
        Op::Direct => {
            black_box(direct(resizer, bytes)?);
        }
        Op::Variants => {
            black_box(variants(bytes, limits)?);
        }
    }
    Ok(started.elapsed().as_secs_f64() * 1000.0)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// Per image: the median over rounds of each operation, in [`OPS`] order.
fn measure(images: &[Vec<u8>], rounds: usize, limits: &ImageLimits) -> Result<Vec<[f64; 3]>> {
    let mut resizer = Resizer::new();
    let mut per_image = Vec::with_capacity(images.len());
    for (i, bytes) in images.iter().enumerate() {
        let mut samples: [Vec<f64>; 3] = [Vec::new(), Vec::new(), Vec::new()];
        for round in 0..rounds {
            for k in 0..OPS.len() {
                let at = (k + round + i) % OPS.len();
                samples[at].push(time_op(OPS[at], &mut resizer, bytes, limits)?);
            }
        }
        per_image.push([
            median(&mut samples[0]),
            median(&mut samples[1]),
            median(&mut samples[2]),
        ]);
    }
    Ok(per_image)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let mut out = std::io::stdout().lock();
    let limits = ImageLimits::default();

    let made = Instant::now();
    let mut sets: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
    if args.jpegs > 0 {
        let jpegs = (0..args.jpegs)
            .map(|i| encode_jpeg(synthetic(4000, 3000, i as u64 + 1)))
            .collect::<Result<Vec<_>>>()?;
        sets.push(("JPEG 4000x3000".to_owned(), jpegs));
    }
    if args.pngs > 0 {
        let pngs = (0..args.pngs)
            .map(|i| encode_png(synthetic(2000, 2000, i as u64 + 1001)))
            .collect::<Result<Vec<_>>>()?;
        sets.push(("PNG 2000x2000".to_owned(), pngs));
    }
    writeln!(
        out,
        "made {} images in {:.1} s; {} round(s) each, one thread",
        sets.iter().map(|(_, s)| s.len()).sum::<usize>(),
        made.elapsed().as_secs_f64(),
        args.rounds
    )?;

    // Warm-up: one image of each set through each operation (allocator, page faults, tables).
    let mut resizer = Resizer::new();
    for (_, images) in &sets {
        if let Some(first) = images.first() {
            for op in OPS {
                time_op(op, &mut resizer, first, &limits)?;
            }
        }
    }

    writeln!(
        out,
        "\nthumbnail per image, ms (median over images of each image's median over rounds; mean in brackets)"
    )?;
    writeln!(
        out,
        "{:<16} {:>7} {:>9} {:>17} {:>17} {:>19} {:>16} {:>15}",
        "images",
        "count",
        "avg MB",
        "decode only",
        "direct",
        "variants",
        "variants/direct",
        "direct/decode"
    )?;
    for (label, images) in &sets {
        let per_image = measure(images, args.rounds, &limits)?;
        let column = |k: usize| per_image.iter().map(|t| t[k]).collect::<Vec<_>>();
        let (mut decode_ms, mut direct_ms, mut variants_ms) = (column(0), column(1), column(2));
        let (decode_mean, direct_mean, variants_mean) =
            (mean(&decode_ms), mean(&direct_ms), mean(&variants_ms));
        let mut ratios: Vec<f64> = per_image.iter().map(|t| t[2] / t[1]).collect();
        let mut over_decode: Vec<f64> = per_image.iter().map(|t| t[1] / t[0]).collect();
        let avg_mb = images.iter().map(Vec::len).sum::<usize>() as f64 / images.len() as f64 / 1e6;
        writeln!(
            out,
            "{:<16} {:>7} {:>9.2} {:>8.1} ({:>6.1}) {:>8.1} ({:>6.1}) {:>10.1} ({:>6.1}) {:>15.2}x {:>14.2}x",
            label,
            images.len(),
            avg_mb,
            median(&mut decode_ms),
            decode_mean,
            median(&mut direct_ms),
            direct_mean,
            median(&mut variants_ms),
            variants_mean,
            median(&mut ratios),
            median(&mut over_decode),
        )?;
    }
    writeln!(
        out,
        "\nwhere variants' time goes, first image of each set, ms (median of the rounds)"
    )?;
    writeln!(
        out,
        "{:<16} {:>8} {:>15} {:>16} {:>15} {:>14}",
        "images", "decode", "resize to 1600", "1600 -> 320", "encode preview", "encode thumb"
    )?;
    for (label, images) in &sets {
        if let Some(first) = images.first() {
            let [d, r1, r2, e1, e2] = breakdown(first, args.rounds)?;
            writeln!(
                out,
                "{label:<16} {d:>8.1} {r1:>15.1} {r2:>16.1} {e1:>15.1} {e2:>14.1}"
            )?;
        }
    }
    writeln!(
        out,
        "\ndirect = decode + one Lanczos3 resize to 320 px (nothing encoded); variants = \
         confab_files::images::variants\n(probe, decode, orientation, 1600 px preview, 320 px \
         thumbnail from it, both JPEG-encoded at quality 82)"
    )?;
    Ok(())
}
