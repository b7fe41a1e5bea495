//! Binary fixtures for image and audio content, and their base64 form.
//!
//! MCP carries binary data as base64 strings: `data` of image and audio
//! content blocks, `blob` of binary resource contents (MCP 2025-06-18, Server
//! Features §Tools, Tool Result). The fixtures are tiny and made here, so the
//! repository holds no binary files.

use std::f64::consts::TAU;

use base64::{Engine, engine::general_purpose::STANDARD};

/// MIME type of [`RED_PIXEL_PNG`].
pub const PNG_MIME_TYPE: &str = "image/png";

/// MIME type of [`tone_wav`].
pub const WAV_MIME_TYPE: &str = "audio/wav";

/// A 1×1 PNG image of one opaque red pixel (8-bit RGB): the signature, an
/// `IHDR`, one zlib-compressed `IDAT` row and `IEND`, each chunk with its CRC.
pub const RED_PIXEL_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, // signature
    0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, // IHDR, 13 bytes
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, // width 1, height 1
    0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53, 0xde, // 8-bit RGB, CRC
    0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, // IDAT, 12 bytes
    0x78, 0xda, 0x63, 0xf8, 0xcf, 0xc0, 0x00, 0x00, 0x03, 0x01, 0x01, 0x00, // zlib
    0xf7, 0x03, 0x41, 0x43, // CRC
    0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82, // IEND
];

/// Sample rate of [`tone_wav`], in Hz.
const SAMPLE_RATE: u32 = 8_000;
/// Pitch of [`tone_wav`], in Hz (concert A).
const TONE_HZ: f64 = 440.0;
/// Length of [`tone_wav`], in samples (a tenth of a second).
const TONE_SAMPLES: u32 = SAMPLE_RATE / 10;

/// A tenth of a second of a 440 Hz sine tone as a WAV file: RIFF header,
/// `fmt ` chunk (PCM, mono, 8 kHz, 8-bit unsigned) and `data` chunk.
pub fn tone_wav() -> Vec<u8> {
    let data_len = TONE_SAMPLES; // one byte per sample
    let mut wav = Vec::with_capacity(44 + data_len as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVE");
    wav.extend_from_slice(b"fmt ");
    wav.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    wav.extend_from_slice(&SAMPLE_RATE.to_le_bytes()); // bytes per second
    wav.extend_from_slice(&1u16.to_le_bytes()); // block align
    wav.extend_from_slice(&8u16.to_le_bytes()); // bits per sample
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    wav.extend((0..TONE_SAMPLES).map(|n| {
        let t = f64::from(n) / f64::from(SAMPLE_RATE);
        // 8-bit WAV samples are unsigned, centred on 128; half amplitude.
        (128.0 + 63.0 * (TAU * TONE_HZ * t).sin()).round() as u8
    }));
    wav
}

/// `bytes` in standard base64 with padding, as MCP content expects.
pub fn base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// [`RED_PIXEL_PNG`] in base64.
pub fn red_pixel_png_base64() -> String {
    base64(RED_PIXEL_PNG)
}

/// [`tone_wav`] in base64.
pub fn tone_wav_base64() -> String {
    base64(&tone_wav())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_is_one_by_one() {
        assert_eq!(&RED_PIXEL_PNG[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&RED_PIXEL_PNG[12..16], b"IHDR");
        assert_eq!(&RED_PIXEL_PNG[16..24], &[0, 0, 0, 1, 0, 0, 0, 1]);
        assert!(RED_PIXEL_PNG.ends_with(b"IEND\xae\x42\x60\x82"));
        assert_eq!(
            red_pixel_png_base64(),
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR42mP4z8AAAAMBAQD3A0FDAAAAAElFTkSuQmCC"
        );
    }

    #[test]
    fn wav_header_describes_the_samples() {
        let wav = tone_wav();
        assert_eq!(wav.len(), 44 + TONE_SAMPLES as usize);
        assert_eq!(&wav[0..4], b"RIFF");
        assert_eq!(
            u32::from_le_bytes(wav[4..8].try_into().unwrap()) as usize,
            wav.len() - 8
        );
        assert_eq!(&wav[8..16], b"WAVEfmt ");
        assert_eq!(&wav[36..40], b"data");
        assert_eq!(
            u32::from_le_bytes(wav[40..44].try_into().unwrap()),
            TONE_SAMPLES
        );
        // The tone starts at the centre line and swings both ways.
        assert_eq!(wav[44], 128);
        assert!(wav[44..].iter().any(|&s| s > 180));
        assert!(wav[44..].iter().any(|&s| s < 76));
    }
}
