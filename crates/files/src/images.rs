//! Image variants: a thumbnail (320 px) and a preview (1600 px), re-encoded from decoded
//! pixels so no metadata survives (EXIF, GPS position, camera serials), turned upright by the
//! EXIF orientation first. CPU-bound and synchronous: the caller runs it on a blocking thread.
//!
//! Decoding is bounded twice: [`probe`] reads the dimensions from the header at upload, so a
//! pixel bomb (a small file claiming 100000×100000 pixels) is refused before it is stored, and
//! [`variants`] checks them again and decodes under `image`'s allocation limit.

use std::io::Cursor;

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits, metadata::Orientation};

use crate::domain::Variant;

/// JPEG quality of the variants: visually clean at preview size, a fraction of PNG's bytes.
const JPEG_QUALITY: u8 = 82;

/// Bounds on what an image may cost to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    /// Width × height above which an image is refused.
    pub max_pixels: u64,
    /// The most bytes the decoder may allocate for one image.
    pub max_alloc_bytes: u64,
}

impl Default for ImageLimits {
    /// 50 megapixels (a large phone camera's photo) and 512 MiB.
    fn default() -> Self {
        Self {
            max_pixels: 50_000_000,
            max_alloc_bytes: 512 * 1024 * 1024,
        }
    }
}

/// Why an image's variants cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(
        "the image is {width}×{height} pixels, more than the {max} allowed: scale it down and \
         upload it again"
    )]
    TooManyPixels { width: u32, height: u32, max: u64 },
    #[error("the image's format cannot be processed ({0}): convert it to PNG, JPEG, GIF or WebP")]
    Unsupported(String),
    #[error("the image could not be read ({0}): it may be damaged or cut short; export it again")]
    Corrupt(String),
    #[error("the image needs more memory to process than allowed ({0}): upload a smaller image")]
    TooLarge(String),
}

impl From<image::ImageError> for ImageError {
    fn from(err: image::ImageError) -> Self {
        use image::ImageError as E;
        match err {
            E::Unsupported(e) => Self::Unsupported(e.to_string()),
            E::Limits(e) => Self::TooLarge(e.to_string()),
            E::Decoding(e) => Self::Corrupt(e.to_string()),
            E::Parameter(e) => Self::Corrupt(e.to_string()),
            E::IoError(e) => Self::Corrupt(e.to_string()),
            E::Encoding(e) => Self::Unsupported(format!("re-encoding failed: {e}")),
        }
    }
}

/// One encoded variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    /// `image/jpeg`, or `image/png` for images with an alpha channel.
    pub content_type: &'static str,
    pub width: u32,
    pub height: u32,
}

/// An image's variants, and its own dimensions once upright.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variants {
    pub width: u32,
    pub height: u32,
    pub thumb: Encoded,
    pub preview: Encoded,
}

/// The dimensions in an image's header, as stored (before orientation), when `head` holds
/// the header and the format is one Confab decodes. Refuses an image over the pixel limit.
///
/// A head that is cut before the dimensions, or a format without a decoder here (HEIC, TIFF),
/// gives `Ok(None)`: the upload goes on and [`variants`] decides later.
pub fn probe(head: &[u8], limits: &ImageLimits) -> Result<Option<(u32, u32)>, ImageError> {
    let mut reader = ImageReader::new(Cursor::new(head))
        .with_guessed_format()
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;
    // No dimension caps here: the pixel check below reports the dimensions it refuses.
    let mut header_limits = Limits::default();
    header_limits.max_alloc = Some(limits.max_alloc_bytes);
    reader.limits(header_limits);
    let (width, height) = match reader.into_dimensions() {
        Ok(dimensions) => dimensions,
        Err(image::ImageError::Limits(e)) => return Err(ImageError::TooLarge(e.to_string())),
        Err(_) => return Ok(None),
    };
    check_pixels(width, height, limits)?;
    Ok(Some((width, height)))
}

fn check_pixels(width: u32, height: u32, limits: &ImageLimits) -> Result<(), ImageError> {
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(ImageError::TooManyPixels {
            width,
            height,
            max: limits.max_pixels,
        });
    }
    Ok(())
}

/// Decodes an image, turns it upright, and makes its thumbnail and preview.
///
/// Neither is ever larger than the image: a small image is re-encoded at its own size, which
/// still drops its metadata.
pub fn variants(bytes: &[u8], limits: &ImageLimits) -> Result<Variants, ImageError> {
    // The header alone first, so an image over the pixel limit is refused by its dimensions
    // whatever the decoder's own limits say about them.
    probe(bytes, limits)?;
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;
    let side = u32::try_from(limits.max_pixels).unwrap_or(u32::MAX);
    let mut decode_limits = Limits::default();
    decode_limits.max_image_width = Some(side);
    decode_limits.max_image_height = Some(side);
    decode_limits.max_alloc = Some(limits.max_alloc_bytes);
    reader.limits(decode_limits);
    let mut decoder = reader.into_decoder()?;
    let (width, height) = decoder.dimensions();
    check_pixels(width, height, limits)?;
    // `DynamicImage::from_decoder` allocates the whole buffer without consulting the limits.
    if decoder.total_bytes() > limits.max_alloc_bytes {
        return Err(ImageError::TooLarge(format!(
            "{} bytes of pixels, over {}",
            decoder.total_bytes(),
            limits.max_alloc_bytes
        )));
    }
    // A broken EXIF block is no reason to refuse the image: it is shown as stored.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder)?;
    image.apply_orientation(orientation);

    // 8 bits per channel, with alpha only when the image has an alpha channel.
    let image = if image.color().has_alpha() {
        DynamicImage::ImageRgba8(image.into_rgba8())
    } else {
        DynamicImage::ImageRgb8(image.into_rgb8())
    };
    let (width, height) = (image.width(), image.height());
    let mut resizer = Resizer::new();
    // The thumbnail comes from the preview: the same result for far less work.
    let preview_image = shrink(&mut resizer, &image, Variant::Preview.max_side())?;
    let thumb_image = shrink(&mut resizer, &preview_image, Variant::Thumb.max_side())?;
    Ok(Variants {
        width,
        height,
        thumb: encode(&thumb_image)?,
        preview: encode(&preview_image)?,
    })
}

/// The image scaled down (never up) so its longer side is at most `max_side`.
fn shrink(
    resizer: &mut Resizer,
    image: &DynamicImage,
    max_side: u32,
) -> Result<DynamicImage, ImageError> {
    let (width, height) = (image.width(), image.height());
    let longer = width.max(height);
    if longer <= max_side {
        return Ok(image.clone());
    }
    let scale = |side: u32| -> u32 {
        let scaled =
            (u64::from(side) * u64::from(max_side) + u64::from(longer) / 2) / u64::from(longer);
        u32::try_from(scaled).unwrap_or(max_side).clamp(1, max_side)
    };
    let mut resized = DynamicImage::new(scale(width), scale(height), image.color());
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    resizer
        .resize(image, &mut resized, &options)
        .map_err(|e| ImageError::Unsupported(format!("resizing failed: {e}")))?;
    Ok(resized)
}

/// JPEG without alpha, PNG with it. Only pixels are written: no metadata is carried over.
fn encode(image: &DynamicImage) -> Result<Encoded, ImageError> {
    let mut bytes = Vec::new();
    let content_type = if image.color().has_alpha() {
        image.write_with_encoder(PngEncoder::new(&mut bytes))?;
        "image/png"
    } else {
        image.write_with_encoder(JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY))?;
        "image/jpeg"
    };
    Ok(Encoded {
        bytes,
        content_type,
        width: image.width(),
        height: image.height(),
    })
}

#[cfg(test)]
mod tests;
