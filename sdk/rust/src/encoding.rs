//! Hex and base64, as signature headers carry them.
//!
//! Owns small, dependency-free codecs so a verifier's `.wasm` stays small: lower- or upper-case
//! hex, and standard-alphabet base64 (RFC 4648 §4) with optional `=` padding. Pure; strict
//! (no whitespace, no URL-safe alphabet) because a signature that does not decode exactly is
//! not a signature.

use std::fmt;

/// Text that does not decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// A character outside the alphabet, at this byte offset.
    InvalidCharacter(usize),
    /// A length no encoding produces (an odd number of hex digits, a lone base64 digit, or
    /// misplaced padding).
    InvalidLength,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::InvalidCharacter(offset) => {
                write!(formatter, "invalid character at offset {offset}")
            }
            DecodeError::InvalidLength => formatter.write_str("invalid length"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes hex digits (either case) into bytes.
///
/// ```
/// use switchyard_sdk::encoding::decode_hex;
///
/// assert_eq!(decode_hex("00ffA0"), Ok(vec![0x00, 0xff, 0xa0]));
/// assert!(decode_hex("abc").is_err());
/// ```
pub fn decode_hex(text: &str) -> Result<Vec<u8>, DecodeError> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return Err(DecodeError::InvalidLength);
    }
    let digit = |offset: usize| -> Result<u8, DecodeError> {
        match bytes[offset] {
            byte @ b'0'..=b'9' => Ok(byte - b'0'),
            byte @ b'a'..=b'f' => Ok(byte - b'a' + 10),
            byte @ b'A'..=b'F' => Ok(byte - b'A' + 10),
            _ => Err(DecodeError::InvalidCharacter(offset)),
        }
    };
    (0..bytes.len()).step_by(2).map(|offset| Ok(digit(offset)? << 4 | digit(offset + 1)?)).collect()
}

/// Encodes bytes as lower-case hex.
///
/// ```
/// assert_eq!(switchyard_sdk::encoding::encode_hex(&[0x00, 0xff]), "00ff");
/// ```
pub fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// Decodes standard-alphabet base64 (`A–Z a–z 0–9 + /`), with or without `=` padding.
///
/// ```
/// use switchyard_sdk::encoding::decode_base64;
///
/// assert_eq!(decode_base64("aGk="), Ok(b"hi".to_vec()));
/// assert_eq!(decode_base64("aGk"), Ok(b"hi".to_vec()));
/// assert!(decode_base64("aG-k").is_err());
/// ```
pub fn decode_base64(text: &str) -> Result<Vec<u8>, DecodeError> {
    let bytes = text.as_bytes();
    let unpadded = bytes.len() - bytes.iter().rev().take_while(|&&byte| byte == b'=').count();
    let padding = bytes.len() - unpadded;
    // Padding, when present, must complete the last group of four; a group of one digit
    // carries fewer than 8 bits and is never produced by an encoder.
    if unpadded % 4 == 1 || (padding > 0 && (!bytes.len().is_multiple_of(4) || padding > 2)) {
        return Err(DecodeError::InvalidLength);
    }
    let mut output = Vec::with_capacity(unpadded * 3 / 4);
    let mut accumulator: u32 = 0;
    let mut bits = 0;
    for (offset, &byte) in bytes[..unpadded].iter().enumerate() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(DecodeError::InvalidCharacter(offset)),
        };
        accumulator = (accumulator << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            output.push((accumulator >> bits) as u8);
            accumulator &= (1 << bits) - 1;
        }
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(decode_hex(&encode_hex(&bytes)), Ok(bytes));
    }

    #[test]
    fn hex_refuses_bad_input() {
        assert_eq!(decode_hex("0"), Err(DecodeError::InvalidLength));
        assert_eq!(decode_hex("0g"), Err(DecodeError::InvalidCharacter(1)));
        assert_eq!(decode_hex(" 00"), Err(DecodeError::InvalidLength));
        assert_eq!(decode_hex("+0"), Err(DecodeError::InvalidCharacter(0)));
        assert_eq!(decode_hex(""), Ok(vec![]));
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (encoded, decoded) in [
            ("", ""),
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
            ("Zm9vYmFy", "foobar"),
            ("Zg", "f"),
            ("Zm8", "fo"),
        ] {
            assert_eq!(decode_base64(encoded), Ok(decoded.as_bytes().to_vec()), "{encoded}");
        }
    }

    #[test]
    fn base64_decodes_a_signature() {
        // The first Standard Webhooks vector's `v1` signature: 32 bytes.
        let mac = decode_base64("tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=").unwrap();
        assert_eq!(mac.len(), 32);
        assert_eq!(encode_hex(&mac[..4]), "b59d48e3");
    }

    #[test]
    fn base64_refuses_bad_input() {
        for text in
            ["Z", "Zg=", "Zg===", "Z===", "Zm9v=", "Zm 9", "Zm9-", "Zm9_", "=Zm9", "Zg==Zg=="]
        {
            assert!(decode_base64(text).is_err(), "{text}");
        }
    }
}
