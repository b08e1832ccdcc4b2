//! A bounds-checked cursor over a byte slice.

use super::codec::DecodeError;

/// Cursor over input bytes. Every read checks the remaining length first;
/// [`Reader::expect_empty`] rejects trailing bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not yet consumed.
    pub fn left(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Bytes consumed so far.
    pub fn used(&self) -> usize {
        self.pos
    }

    /// True when nothing remains.
    pub fn is_empty(&self) -> bool {
        self.left() == 0
    }

    /// Take exactly `n` bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let have = self.left();
        if n > have {
            return Err(DecodeError::Truncated {
                what,
                need: n,
                have,
            });
        }
        let start = self.pos;
        let end = start + n;
        let out = self.buf.get(start..end).ok_or(DecodeError::Truncated {
            what,
            need: n,
            have,
        })?;
        self.pos = end;
        Ok(out)
    }

    /// Take a sub-reader over exactly `n` bytes.
    pub fn sub(&mut self, n: usize, what: &'static str) -> Result<Reader<'a>, DecodeError> {
        self.take(n, what).map(Reader::new)
    }

    /// Take everything that remains.
    pub fn rest(&mut self) -> &'a [u8] {
        let out = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        out
    }

    /// Take a fixed-size array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let s = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(u8::from_be_bytes(self.array::<1>(what)?))
    }

    /// Big-endian u16.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array::<2>(what)?))
    }

    /// Big-endian u32.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array::<4>(what)?))
    }

    /// Fail if any bytes remain.
    pub fn expect_empty(&self, what: &'static str) -> Result<(), DecodeError> {
        match self.left() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes { what, count: n }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16("x").ok(), Some(0x0102));
        assert!(r.u16("x").is_err());
        assert!(r.expect_empty("x").is_err());
        assert_eq!(r.u8("x").ok(), Some(3));
        assert!(r.expect_empty("x").is_ok());
        assert!(r.take(usize::MAX, "x").is_err());
    }
}
