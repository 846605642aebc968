//! Tests for image variants: orientation, metadata removal, sizes, formats and limits.

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

use super::*;

/// A 40×20 JPEG, red on the left half and blue on the right.
fn landscape_jpeg() -> Vec<u8> {
    let image = RgbImage::from_fn(40, 20, |x, _| {
        if x < 20 {
            Rgb([255, 0, 0])
        } else {
            Rgb([0, 0, 255])
        }
    });
    let mut bytes = Vec::new();
    DynamicImage::ImageRgb8(image)
        .write_with_encoder(JpegEncoder::new_with_quality(&mut bytes, 95))
        .unwrap();
    bytes
}

const GPS_MARKER: &[u8] = b"GPS 51.5007N 0.1246W secret-place";

/// An EXIF APP1 segment: a big-endian TIFF header and one IFD with Orientation = 6 (rotate 90°
/// clockwise to display) and an ImageDescription holding [`GPS_MARKER`].
fn exif_app1() -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"MM\0\x2a\0\0\0\x08"); // header, IFD0 at offset 8
    tiff.extend_from_slice(&2u16.to_be_bytes()); // two entries
    // Orientation (0x0112), SHORT, count 1, value 6 in the first two bytes.
    tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0]);
    // ImageDescription (0x010E), ASCII, count, offset of the string after the IFD.
    let text_offset = 8 + 2 + 2 * 12 + 4;
    tiff.extend_from_slice(&[0x01, 0x0e, 0, 2]);
    tiff.extend_from_slice(&u32::try_from(GPS_MARKER.len() + 1).unwrap().to_be_bytes());
    tiff.extend_from_slice(&u32::try_from(text_offset).unwrap().to_be_bytes());
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    assert_eq!(tiff.len(), text_offset);
    tiff.extend_from_slice(GPS_MARKER);
    tiff.push(0);

    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&tiff);
    let mut segment = vec![0xff, 0xe1];
    segment.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
    segment.extend_from_slice(&payload);
    segment
}

/// The JPEG with the EXIF segment right after its start-of-image marker.
fn jpeg_with_exif() -> Vec<u8> {
    let plain = landscape_jpeg();
    assert_eq!(&plain[..2], b"\xff\xd8");
    let mut bytes = plain[..2].to_vec();
    bytes.extend_from_slice(&exif_app1());
    bytes.extend_from_slice(&plain[2..]);
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

fn png(image: DynamicImage) -> Vec<u8> {
    let mut bytes = Vec::new();
    image
        .write_with_encoder(PngEncoder::new(&mut bytes))
        .unwrap();
    bytes
}

fn decode(encoded: &Encoded) -> DynamicImage {
    image::load_from_memory(&encoded.bytes).unwrap()
}

#[test]
fn exif_orientation_is_applied_and_all_metadata_dropped() {
    let bytes = jpeg_with_exif();
    // The test's own input does carry what must disappear.
    assert!(contains(&bytes, b"Exif"));
    assert!(contains(&bytes, GPS_MARKER));
    assert_eq!(
        probe(&bytes, &ImageLimits::default()).unwrap(),
        Some((40, 20))
    );

    let made = variants(&bytes, &ImageLimits::default()).unwrap();
    // Stored 40×20, displayed 20×40.
    assert_eq!((made.width, made.height), (20, 40));
    for encoded in [&made.thumb, &made.preview] {
        assert_eq!(encoded.content_type, "image/jpeg");
        assert_eq!((encoded.width, encoded.height), (20, 40));
        assert!(!contains(&encoded.bytes, b"Exif"));
        assert!(!contains(&encoded.bytes, GPS_MARKER));
        assert!(!contains(&encoded.bytes, b"GPS"));
        let image = decode(encoded).to_rgb8();
        assert_eq!(image.dimensions(), (20, 40));
        // Rotated clockwise: the left (red) half is now on top, the blue half below.
        let top = image.get_pixel(10, 5);
        let bottom = image.get_pixel(10, 35);
        assert!(top[0] > 200 && top[2] < 60, "top is {top:?}");
        assert!(bottom[2] > 200 && bottom[0] < 60, "bottom is {bottom:?}");
    }
}

#[test]
fn without_exif_the_image_is_kept_as_stored() {
    let made = variants(&landscape_jpeg(), &ImageLimits::default()).unwrap();
    assert_eq!((made.width, made.height), (40, 20));
    assert_eq!((made.thumb.width, made.thumb.height), (40, 20));
}

#[test]
fn alpha_gives_png_variants() {
    let image = RgbaImage::from_fn(50, 30, |x, _| {
        Rgba([0, 128, 0, if x < 25 { 0 } else { 255 }])
    });
    let made = variants(
        &png(DynamicImage::ImageRgba8(image)),
        &ImageLimits::default(),
    )
    .unwrap();
    for encoded in [&made.thumb, &made.preview] {
        assert_eq!(encoded.content_type, "image/png");
        assert_eq!(
            image::guess_format(&encoded.bytes).unwrap(),
            ImageFormat::Png
        );
        let decoded = decode(encoded);
        assert!(decoded.color().has_alpha());
        assert_eq!(decoded.to_rgba8().get_pixel(5, 5)[3], 0);
        assert_eq!(decoded.to_rgba8().get_pixel(45, 5)[3], 255);
    }
}

#[test]
fn opaque_png_gives_jpeg_variants() {
    let image = RgbImage::from_pixel(10, 10, Rgb([1, 2, 3]));
    let made = variants(
        &png(DynamicImage::ImageRgb8(image)),
        &ImageLimits::default(),
    )
    .unwrap();
    assert_eq!(made.thumb.content_type, "image/jpeg");
    assert_eq!(
        image::guess_format(&made.thumb.bytes).unwrap(),
        ImageFormat::Jpeg
    );
}

#[test]
fn small_images_are_not_upscaled() {
    let image = RgbImage::from_pixel(100, 60, Rgb([9, 9, 9]));
    let made = variants(
        &png(DynamicImage::ImageRgb8(image)),
        &ImageLimits::default(),
    )
    .unwrap();
    assert_eq!((made.width, made.height), (100, 60));
    assert_eq!((made.thumb.width, made.thumb.height), (100, 60));
    assert_eq!((made.preview.width, made.preview.height), (100, 60));
    assert_eq!(decode(&made.preview).width(), 100);
}

#[test]
fn large_images_are_scaled_to_each_variants_longer_side() {
    let image = RgbImage::from_fn(1000, 2000, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, 0])
    });
    let made = variants(
        &png(DynamicImage::ImageRgb8(image)),
        &ImageLimits::default(),
    )
    .unwrap();
    assert_eq!((made.width, made.height), (1000, 2000));
    assert_eq!((made.preview.width, made.preview.height), (800, 1600));
    assert_eq!((made.thumb.width, made.thumb.height), (160, 320));
    let thumb = decode(&made.thumb);
    assert_eq!((thumb.width(), thumb.height()), (160, 320));
}

/// A CRC-32 (ISO-HDLC, as PNG uses) for hand-made chunks.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(data.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc_input = kind.to_vec();
    crc_input.extend_from_slice(data);
    out.extend_from_slice(&crc32(&crc_input).to_be_bytes());
    out
}

/// A PNG of a few dozen bytes whose header claims `width`×`height` RGBA pixels.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]); // 8-bit RGBA, no interlace
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend_from_slice(&chunk(b"IHDR", &ihdr));
    // An empty zlib stream: the data ends long before the rows do.
    bytes.extend_from_slice(&chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    bytes.extend_from_slice(&chunk(b"IEND", &[]));
    bytes
}

#[test]
fn the_hand_made_png_header_is_valid() {
    let generated = png(DynamicImage::ImageRgba8(RgbaImage::new(3, 2)));
    let ours = png_claiming(3, 2);
    // Same signature and IHDR chunk, CRC included, as the image crate writes.
    assert_eq!(&ours[..33], &generated[..33]);
}

#[test]
fn pixel_bombs_are_refused_from_the_header() {
    let bomb = png_claiming(100_000, 100_000);
    let refused = |result: Result<_, ImageError>| {
        matches!(
            result,
            Err(ImageError::TooManyPixels {
                width: 100_000,
                height: 100_000,
                max: 50_000_000
            })
        )
    };
    assert!(refused(probe(&bomb, &ImageLimits::default()).map(|_| ())));
    // 40 GB of pixels: had it been allocated, this would not return.
    assert!(refused(
        variants(&bomb, &ImageLimits::default()).map(|_| ())
    ));
    // One very long side is refused the same way.
    assert!(matches!(
        variants(&png_claiming(60_000_000, 1), &ImageLimits::default()),
        Err(ImageError::TooManyPixels { .. })
    ));
}

#[test]
fn limits_are_configurable() {
    let image = png(DynamicImage::ImageRgb8(RgbImage::new(20, 20)));
    let few_pixels = ImageLimits {
        max_pixels: 399,
        ..ImageLimits::default()
    };
    assert!(matches!(
        probe(&image, &few_pixels),
        Err(ImageError::TooManyPixels {
            width: 20,
            height: 20,
            max: 399
        })
    ));
    assert!(
        probe(
            &image,
            &ImageLimits {
                max_pixels: 400,
                ..ImageLimits::default()
            }
        )
        .is_ok()
    );
    let little_memory = ImageLimits {
        max_alloc_bytes: 100,
        ..ImageLimits::default()
    };
    assert!(matches!(
        variants(&image, &little_memory),
        Err(ImageError::TooLarge(_))
    ));
}

#[test]
fn a_cut_head_or_another_format_probes_to_nothing() {
    let bytes = png(DynamicImage::ImageRgb8(RgbImage::new(20, 20)));
    assert_eq!(probe(&bytes[..20], &ImageLimits::default()).unwrap(), None);
    assert_eq!(probe(b"%PDF-1.7", &ImageLimits::default()).unwrap(), None);
    // A BMP is recognised but has no decoder here.
    let bmp = b"BM\x46\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0\x02\0\0\0\x02\0\0\0\x01\0\x18\0";
    assert_eq!(probe(bmp, &ImageLimits::default()).unwrap(), None);
}

#[test]
fn garbage_and_truncated_images_are_refused() {
    for bytes in [
        b"definitely not an image".to_vec(),
        vec![0u8; 64],
        b"BM\x46\0\0\0\0\0\0\0\x36\0\0\0".to_vec(),
    ] {
        assert!(
            matches!(
                variants(&bytes, &ImageLimits::default()),
                Err(ImageError::Unsupported(_) | ImageError::Corrupt(_))
            ),
            "{bytes:?}"
        );
    }
    let whole = landscape_jpeg();
    assert!(matches!(
        variants(&whole[..whole.len() / 3], &ImageLimits::default()),
        Err(ImageError::Corrupt(_))
    ));
    let png_bytes = png(DynamicImage::ImageRgb8(RgbImage::new(64, 64)));
    assert!(matches!(
        variants(&png_bytes[..png_bytes.len() - 20], &ImageLimits::default()),
        Err(ImageError::Corrupt(_))
    ));
}

#[test]
fn errors_say_what_to_do() {
    let err = ImageError::TooManyPixels {
        width: 100_000,
        height: 100_000,
        max: 50_000_000,
    };
    assert!(err.to_string().contains("100000×100000"));
    assert!(err.to_string().contains("scale it down"));
    assert!(
        ImageError::Unsupported("x".into())
            .to_string()
            .contains("convert it")
    );
}
