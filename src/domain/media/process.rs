//! Turning uploaded bytes into what is stored: pure and synchronous, so it
//! can be tested alone and run on the worker threads (see `worker.rs`).
//!
//! Every accepted image is decoded and re-encoded. That is what strips EXIF,
//! GPS and any other metadata, and what guarantees the stored file is a
//! well-formed image of the declared type, whatever the upload contained.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::error::ImageError;
use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{
    DynamicImage, ExtendedColorType, ImageDecoder as _, ImageEncoder as _, ImageFormat, ImageReader,
};

/// Neither side of a decoded image may exceed this.
pub const MAX_DIMENSION: u32 = 12_000;
/// The decoder may allocate at most this much, checked from the header
/// before any pixel is decoded: a small file declaring a huge canvas is
/// refused without allocating it.
pub const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;
/// Stored images are downscaled to at most this on their longer side.
pub const MAX_STORED_SIDE: u32 = 2048;
pub const THUMBNAIL_SIDE: u32 = 400;
pub const JPEG_QUALITY: u8 = 85;
/// 4x3 components: the usual choice, enough for a placeholder.
const BLURHASH_COMPONENTS: (u32, u32) = (4, 3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Jpeg,
    Png,
}

impl OutputFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
        }
    }
}

/// The processed upload: the image to store, its thumbnail and placeholder.
#[derive(Debug)]
pub struct ProcessedImage {
    pub format: OutputFormat,
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
    pub thumb_width: u32,
    pub thumb_height: u32,
    pub thumb: Vec<u8>,
    pub blurhash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is not a JPEG, PNG, GIF or WebP image")]
    Unsupported,
    #[error("the image is too large to process: {0}")]
    TooLarge(String),
    #[error("the image could not be decoded: {0}")]
    Undecodable(String),
    #[error("encoding failed: {0}")]
    Encode(String),
}

fn decode_error(err: ImageError) -> ProcessError {
    match err {
        ImageError::Limits(e) => ProcessError::TooLarge(e.to_string()),
        other => ProcessError::Undecodable(other.to_string()),
    }
}

/// Detects the format from the bytes themselves: the file name and the
/// declared content type are the client's word, not evidence.
pub fn detect(bytes: &[u8]) -> Result<ImageFormat, ProcessError> {
    if bytes.is_empty() {
        return Err(ProcessError::Empty);
    }
    match image::guess_format(bytes) {
        Ok(f @ (ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Gif | ImageFormat::WebP)) => {
            Ok(f)
        }
        _ => Err(ProcessError::Unsupported),
    }
}

fn limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    limits
}

/// Decodes within [`limits`]; a GIF yields its first frame. The EXIF
/// orientation is applied, since re-encoding drops the tag that carried it.
pub fn decode(bytes: &[u8]) -> Result<DynamicImage, ProcessError> {
    let format = detect(bytes)?;
    // The JPEG decoder paints a truncated scan grey rather than failing, so
    // the structure is checked first.
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(ProcessError::Undecodable(
            "the JPEG is truncated (no end-of-image marker)".into(),
        ));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits());
    // Building the decoder reads only the header and checks its dimensions.
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    // The output buffer is the big allocation; refuse it before making it.
    limits()
        .reserve(decoder.total_bytes())
        .map_err(decode_error)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// Whether a JPEG runs, segment by segment, to its end-of-image marker.
/// Data after that marker (such as a phone's appended motion-photo video)
/// is allowed; it is dropped by the re-encoding anyway.
fn jpeg_is_complete(data: &[u8]) -> bool {
    if !data.starts_with(&[0xFF, 0xD8]) {
        return false;
    }
    let mut i = 2;
    loop {
        if data.get(i) != Some(&0xFF) {
            return false;
        }
        // Any number of 0xFF fill bytes may precede a marker.
        while data.get(i) == Some(&0xFF) {
            i += 1;
        }
        let Some(&marker) = data.get(i) else {
            return false;
        };
        i += 1;
        match marker {
            0xD9 => return true,
            // TEM and RSTn stand alone, without a length.
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let Some(length) = data.get(i..i + 2) else {
            return false;
        };
        let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
        if length < 2 || i + length > data.len() {
            return false;
        }
        i += length;
        if marker == 0xDA {
            // Entropy-coded data follows a start-of-scan header, up to the
            // next marker: 0xFF 0x00 is an escaped byte, RSTn belong to the scan.
            loop {
                let Some(offset) = data[i..].iter().position(|&b| b == 0xFF) else {
                    return false;
                };
                i += offset;
                match data.get(i + 1) {
                    None => return false,
                    Some(0x00 | 0xD0..=0xD7) => i += 2,
                    Some(0xFF) => i += 1,
                    Some(_) => break,
                }
            }
        }
    }
}

/// Whether any pixel is not fully opaque: an RGBA file whose alpha is all
/// 255 is stored as a (much smaller) JPEG.
fn uses_transparency(image: &DynamicImage) -> bool {
    if !image.color().has_alpha() {
        return false;
    }
    image.to_rgba8().pixels().any(|p| p.0[3] < u8::MAX)
}

/// Scales down so the longer side is at most `side`; never scales up.
fn fit(image: &DynamicImage, side: u32, filter: FilterType) -> Option<DynamicImage> {
    (image.width() > side || image.height() > side).then(|| image.resize(side, side, filter))
}

fn encode(image: &DynamicImage, format: OutputFormat) -> Result<Vec<u8>, ProcessError> {
    let mut out = Vec::new();
    let result = match format {
        OutputFormat::Jpeg => {
            let rgb = image.to_rgb8();
            JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY).write_image(
                rgb.as_raw(),
                rgb.width(),
                rgb.height(),
                ExtendedColorType::Rgb8,
            )
        }
        OutputFormat::Png => {
            let rgba = image.to_rgba8();
            PngEncoder::new_with_quality(&mut out, CompressionType::Default, PngFilter::Adaptive)
                .write_image(
                    rgba.as_raw(),
                    rgba.width(),
                    rgba.height(),
                    ExtendedColorType::Rgba8,
                )
        }
    };
    result.map_err(|e| ProcessError::Encode(e.to_string()))?;
    Ok(out)
}

/// The whole pipeline: detect, decode (bounded), downscale, re-encode, thumbnail, blurhash.
pub fn process(bytes: &[u8]) -> Result<ProcessedImage, ProcessError> {
    let decoded = decode(bytes)?;
    let format = if uses_transparency(&decoded) {
        OutputFormat::Png
    } else {
        OutputFormat::Jpeg
    };
    let image = fit(&decoded, MAX_STORED_SIDE, FilterType::Lanczos3).unwrap_or(decoded);
    // Triangle is plenty for a small preview and several times faster.
    let thumb = fit(&image, THUMBNAIL_SIDE, FilterType::Triangle).unwrap_or_else(|| image.clone());
    let thumb_rgba = thumb.to_rgba8();
    let blurhash = blurhash::encode(
        BLURHASH_COMPONENTS.0,
        BLURHASH_COMPONENTS.1,
        thumb_rgba.width(),
        thumb_rgba.height(),
        thumb_rgba.as_raw(),
    )
    .map_err(|e| ProcessError::Encode(format!("blurhash: {e}")))?;
    Ok(ProcessedImage {
        format,
        width: image.width(),
        height: image.height(),
        data: encode(&image, format)?,
        thumb_width: thumb.width(),
        thumb_height: thumb.height(),
        thumb: encode(&thumb, format)?,
        blurhash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage, Rgba, RgbaImage};

    fn encoded(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn gradient(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
            Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        }))
    }

    #[test]
    fn opaque_images_become_jpeg_and_transparent_ones_png() {
        let jpeg = process(&encoded(gradient(64, 48), ImageFormat::Png)).unwrap();
        assert_eq!(jpeg.format, OutputFormat::Jpeg);
        assert_eq!((jpeg.width, jpeg.height), (64, 48));
        assert_eq!(image::guess_format(&jpeg.data).unwrap(), ImageFormat::Jpeg);

        let alpha = DynamicImage::ImageRgba8(RgbaImage::from_fn(32, 32, |x, _| {
            Rgba([255, 0, 0, if x < 16 { 0 } else { 255 }])
        }));
        let png = process(&encoded(alpha, ImageFormat::Png)).unwrap();
        assert_eq!(png.format, OutputFormat::Png);
        assert_eq!(image::guess_format(&png.thumb).unwrap(), ImageFormat::Png);
    }

    #[test]
    fn large_images_are_downscaled_and_thumbnailed() {
        let p = process(&encoded(gradient(3000, 1000), ImageFormat::Png)).unwrap();
        assert_eq!((p.width, p.height), (2048, 683));
        assert_eq!((p.thumb_width, p.thumb_height), (400, 133));
        assert!(!p.blurhash.is_empty());
        let thumb = image::load_from_memory(&p.thumb).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (400, 133));
    }

    #[test]
    fn small_images_are_not_upscaled() {
        let p = process(&encoded(gradient(10, 20), ImageFormat::Png)).unwrap();
        assert_eq!((p.thumb_width, p.thumb_height), (10, 20));
    }

    #[test]
    fn gif_and_webp_are_accepted() {
        for format in [ImageFormat::Gif, ImageFormat::WebP] {
            let rgba = DynamicImage::ImageRgba8(gradient(40, 30).to_rgba8());
            let p = process(&encoded(rgba, format)).unwrap();
            assert_eq!((p.width, p.height), (40, 30), "{format:?}");
        }
    }

    #[test]
    fn non_images_are_unsupported() {
        assert!(matches!(
            process(b"hello, I am text"),
            Err(ProcessError::Unsupported)
        ));
        assert!(matches!(process(b""), Err(ProcessError::Empty)));
        // A real format, just not one we accept (the BMP magic number).
        let bmp = b"BM\x46\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00";
        assert_eq!(image::guess_format(bmp).unwrap(), ImageFormat::Bmp);
        assert!(matches!(process(bmp), Err(ProcessError::Unsupported)));
    }

    #[test]
    fn truncated_files_are_undecodable() {
        let jpeg = encoded(gradient(64, 64), ImageFormat::Jpeg);
        for end in [
            jpeg.len() / 10,
            jpeg.len() / 2,
            jpeg.len() * 9 / 10,
            jpeg.len() - 2,
        ] {
            assert!(
                matches!(process(&jpeg[..end]), Err(ProcessError::Undecodable(_))),
                "JPEG cut at {end} of {} accepted",
                jpeg.len()
            );
        }
        let png = encoded(gradient(64, 64), ImageFormat::Png);
        assert!(matches!(
            process(&png[..png.len() / 2]),
            Err(ProcessError::Undecodable(_))
        ));
    }

    #[test]
    fn jpeg_structure_check_allows_metadata_and_trailers() {
        let jpeg = encoded(gradient(64, 64), ImageFormat::Jpeg);
        assert!(jpeg_is_complete(&jpeg));
        let mut trailer = jpeg.clone();
        trailer.extend_from_slice(b"appended video data");
        assert!(jpeg_is_complete(&trailer));
        // An APP1 segment holding bytes that look like markers, EOI included.
        let mut with_app1 = jpeg[..2].to_vec();
        with_app1.extend_from_slice(&[0xFF, 0xE1, 0x00, 0x08, 0xFF, 0xD9, 0xFF, 0xDA, 0x00, 0x00]);
        with_app1.extend_from_slice(&jpeg[2..]);
        assert!(jpeg_is_complete(&with_app1));
        assert!(!jpeg_is_complete(&with_app1[..with_app1.len() / 2]));
    }

    /// A tiny PNG whose header claims a `side` x `side` canvas.
    fn png_bomb(side: u32) -> Vec<u8> {
        let mut png = encoded(gradient(1, 1), ImageFormat::Png);
        // IHDR data starts after the 8-byte signature, 4-byte length and 4-byte type.
        png[16..20].copy_from_slice(&side.to_be_bytes());
        png[20..24].copy_from_slice(&side.to_be_bytes());
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        png
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = u32::MAX;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn decompression_bombs_are_refused_before_decoding() {
        // Beyond the side limit (10 GB of pixels).
        assert!(matches!(
            process(&png_bomb(50_000)),
            Err(ProcessError::TooLarge(_))
        ));
        // Within the side limit, beyond the allocation limit (300 MB of RGB).
        assert!(matches!(
            process(&png_bomb(10_000)),
            Err(ProcessError::TooLarge(_))
        ));
    }
}
