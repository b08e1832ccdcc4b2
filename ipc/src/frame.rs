//! Length-prefixed framing shared by every channel.
//!
//! A frame is a 4-byte big-endian payload length followed by the payload (postcard bytes). Each
//! channel has a hard cap on the payload length; a header announcing more is rejected *before*
//! anything is allocated. The decoder here is sans-IO (it works on a byte slice) so it can be fuzzed;
//! the async helpers below only move bytes.

use serde::{de::DeserializeOwned, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Size of the length prefix.
pub const HEADER_LEN: usize = 4;

/// The hello frame is tiny on every channel: no peer gets to send a large frame before it is known.
pub const HELLO_MAX: usize = 256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("empty frame")]
    Empty,
    #[error("connection closed in the middle of a frame ({got} of {want} bytes)")]
    Truncated { got: usize, want: usize },
    #[error("connection closed")]
    Closed,
    #[error("malformed message: {0}")]
    Decode(String),
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    #[error("message could not be encoded: {0}")]
    Encode(String),
    #[error("i/o error: {0}")]
    Io(String),
}

impl From<std::io::Error> for FrameError {
    fn from(e: std::io::Error) -> Self {
        FrameError::Io(e.to_string())
    }
}

/// Parse the length prefix and check it against `max`.
pub fn parse_header(header: [u8; HEADER_LEN], max: usize) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header) as usize;
    if len == 0 {
        return Err(FrameError::Empty);
    }
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(len)
}

/// Sans-IO decoder: look for one complete frame at the start of `buf`.
/// Returns `Ok(None)` when more bytes are needed, or the payload and the number of bytes consumed.
pub fn decode_frame(buf: &[u8], max: usize) -> Result<Option<(&[u8], usize)>, FrameError> {
    let Some(header) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let mut h = [0u8; HEADER_LEN];
    h.copy_from_slice(header);
    let len = parse_header(h, max)?;
    match buf.get(HEADER_LEN..HEADER_LEN + len) {
        Some(payload) => Ok(Some((payload, HEADER_LEN + len))),
        None => Ok(None),
    }
}

/// Serialize a message into a complete frame (header + payload), refusing to build one over `max`.
pub fn encode<T: Serialize>(msg: &T, max: usize) -> Result<Vec<u8>, FrameError> {
    // `to_extend` appends the payload after 4 placeholder bytes that become the header.
    let mut out = postcard::to_extend(msg, vec![0u8; HEADER_LEN])
        .map_err(|e| FrameError::Encode(e.to_string()))?;
    let len = out.len() - HEADER_LEN;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let len32 = u32::try_from(len).map_err(|_| FrameError::TooLarge { len, max })?;
    out.get_mut(..HEADER_LEN)
        .ok_or_else(|| FrameError::Encode("short buffer".into()))?
        .copy_from_slice(&len32.to_be_bytes());
    Ok(out)
}

/// Strict decode of one payload: unknown enum variants fail, and so do trailing bytes.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    let (msg, rest) =
        postcard::take_from_bytes::<T>(payload).map_err(|e| FrameError::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameError::TrailingBytes(rest.len()));
    }
    Ok(msg)
}

/// Read exactly one frame's payload from an async stream.
pub async fn read_payload<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Vec<u8>, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    read_full(r, &mut header, true).await?;
    let len = parse_header(header, max)?;
    read_body(r, len).await
}

/// Read the body of a frame whose header was already read (and checked against the limit).
pub async fn read_body<R: AsyncRead + Unpin>(r: &mut R, len: usize) -> Result<Vec<u8>, FrameError> {
    let mut body = vec![0u8; len];
    read_full(r, &mut body, false).await?;
    Ok(body)
}

/// Like `read_exact`, but tells a clean close between frames from a truncated frame.
async fn read_full<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut [u8],
    at_boundary: bool,
) -> Result<(), FrameError> {
    let want = buf.len();
    let mut got = 0;
    while got < want {
        let rest = buf.get_mut(got..).ok_or(FrameError::Closed)?;
        let n = r.read(rest).await?;
        if n == 0 {
            return Err(if got == 0 && at_boundary {
                FrameError::Closed
            } else {
                FrameError::Truncated { got, want }
            });
        }
        got += n;
    }
    Ok(())
}

pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, frame: &[u8]) -> Result<(), FrameError> {
    w.write_all(frame).await?;
    w.flush().await?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn header_limits() {
        assert_eq!(parse_header([0, 0, 0, 0], 10), Err(FrameError::Empty));
        assert_eq!(
            parse_header([0, 0, 0, 11], 10),
            Err(FrameError::TooLarge { len: 11, max: 10 })
        );
        assert_eq!(parse_header([0, 0, 0, 10], 10), Ok(10));
        assert!(matches!(
            parse_header([0xff, 0xff, 0xff, 0xff], 1 << 20),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn decode_needs_whole_frame() {
        let f = encode(&(1u8, 2u32), 64).unwrap();
        for cut in 0..f.len() {
            assert_eq!(decode_frame(&f[..cut], 64), Ok(None));
        }
        let (p, used) = decode_frame(&f, 64).unwrap().unwrap();
        assert_eq!(used, f.len());
        assert_eq!(decode::<(u8, u32)>(p).unwrap(), (1, 2));
    }

    #[test]
    fn trailing_bytes_rejected() {
        let mut p = postcard::to_stdvec(&7u8).unwrap();
        p.push(0);
        assert_eq!(decode::<u8>(&p), Err(FrameError::TrailingBytes(1)));
    }

    #[test]
    fn encode_refuses_oversized() {
        let big = vec![0u8; 100];
        assert!(matches!(encode(&big, 50), Err(FrameError::TooLarge { .. })));
    }
}
