//! Anti-replay window (RFC 4303 §3.4.3) as an RFC 6479-style ring of 64-bit
//! blocks: advancing the window clears whole blocks instead of shifting bits,
//! so the cost of a jump is bounded by the number of blocks, not of bits.
//! Also the ESN high-half inference of RFC 4303 Appendix A.

use super::error::{EspError, Result};

/// Number of 64-bit blocks in the ring.
pub const WINDOW_BLOCKS: usize = 64;
/// Packets the window accepts behind the highest one seen (one block is kept as
/// slack for the ring, as in RFC 6479): 4032.
pub const WINDOW_SIZE: u64 = ((WINDOW_BLOCKS - 1) * 64) as u64;

/// Receive-side anti-replay state of one SA.
#[derive(Clone)]
pub struct ReplayWindow {
    /// Highest authenticated sequence number (0: none yet).
    top: u64,
    /// Packets accepted behind `top` (at most [`WINDOW_SIZE`]); 0 turns the
    /// replay check off (manual keying): only `top` is tracked, for ESN.
    size: u64,
    bitmap: [u64; WINDOW_BLOCKS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("top", &self.top)
            .finish_non_exhaustive()
    }
}

#[inline]
fn slot(seq: u64) -> (usize, u64) {
    let block = ((seq >> 6) % WINDOW_BLOCKS as u64) as usize;
    (block, 1u64 << (seq & 63))
}

impl ReplayWindow {
    /// An empty window.
    pub const fn new() -> Self {
        Self {
            top: 0,
            size: WINDOW_SIZE,
            bitmap: [0; WINDOW_BLOCKS],
        }
    }

    /// Set the window size in packets (clamped to [`WINDOW_SIZE`]); 0 turns
    /// replay protection off (`check` accepts everything, `update` only
    /// advances the highest sequence number, which ESN inference needs).
    pub fn set_size(&mut self, packets: u32) {
        self.size = u64::from(packets).min(WINDOW_SIZE);
    }

    /// The window size in packets (0: replay protection off).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Highest authenticated sequence number so far.
    pub fn top(&self) -> u64 {
        self.top
    }

    /// Would `seq` be accepted? Does not change the window: call
    /// [`ReplayWindow::update`] only once the ICV has verified.
    pub fn check(&self, seq: u64) -> Result<()> {
        if self.size == 0 {
            return Ok(());
        }
        if seq == 0 {
            return Err(EspError::Replay);
        }
        if seq > self.top {
            return Ok(());
        }
        if self.top - seq >= self.size {
            return Err(EspError::Replay);
        }
        let (block, bit) = slot(seq);
        match self.bitmap.get(block) {
            Some(b) if b & bit == 0 => Ok(()),
            _ => Err(EspError::Replay),
        }
    }

    /// Record `seq` as received (after the ICV verified). Returns
    /// `Err(Replay)` if it was already recorded or is too old.
    pub fn update(&mut self, seq: u64) -> Result<()> {
        self.check(seq)?;
        if self.size == 0 {
            self.top = self.top.max(seq);
            return Ok(());
        }
        if seq > self.top {
            let new_index = seq >> 6;
            let old_index = self.top >> 6;
            let diff = (new_index - old_index).min(WINDOW_BLOCKS as u64);
            for i in 1..=diff {
                let b = ((old_index + i) % WINDOW_BLOCKS as u64) as usize;
                if let Some(w) = self.bitmap.get_mut(b) {
                    *w = 0;
                }
            }
            self.top = seq;
        }
        let (block, bit) = slot(seq);
        if let Some(w) = self.bitmap.get_mut(block) {
            *w |= bit;
        }
        Ok(())
    }

    /// RFC 4303 Appendix A2.2: guess the high 32 bits of an extended sequence
    /// number from the low 32 bits that were sent, relative to the window.
    pub fn infer_seq_hi(&self, seq_lo: u32) -> u32 {
        let w = WINDOW_SIZE as u32;
        let th = (self.top >> 32) as u32;
        let tl = self.top as u32;
        let bottom = tl.wrapping_sub(w - 1);
        if tl >= w - 1 {
            // Case A: the window lies within one 2^32 subspace.
            if seq_lo >= bottom {
                th
            } else {
                th.wrapping_add(1)
            }
        } else if seq_lo >= bottom && th > 0 {
            // Case B: the window spans two subspaces; seq_lo is in the lower one.
            th - 1
        } else {
            th
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn in_order_duplicates_and_old() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.check(0), Err(EspError::Replay));
        for s in 1..=5000u64 {
            assert!(w.check(s).is_ok());
            w.update(s).unwrap();
            assert_eq!(w.check(s), Err(EspError::Replay));
        }
        assert_eq!(w.check(5000 - WINDOW_SIZE), Err(EspError::Replay));
    }

    #[test]
    fn out_of_order_within_window() {
        let mut w = ReplayWindow::new();
        w.update(5000).unwrap();
        for s in (5000 - WINDOW_SIZE + 1..5000).rev() {
            w.update(s).unwrap();
        }
        assert_eq!(w.update(1500), Err(EspError::Replay));
        assert_eq!(w.update(5000 - WINDOW_SIZE), Err(EspError::Replay));
        // a big jump clears everything
        w.update(1_000_000).unwrap();
        assert!(w.check(1_000_000 - 1).is_ok());
        assert_eq!(w.check(1_000_000 - WINDOW_SIZE), Err(EspError::Replay));
        assert!(w.check(1_000_000 - WINDOW_SIZE + 1).is_ok());
    }

    #[test]
    fn window_at_least_1024() {
        let mut w = ReplayWindow::new();
        w.update(10_000).unwrap();
        assert!(w.check(10_000 - 1024).is_ok());
    }

    #[test]
    fn smaller_window_and_off() {
        let mut w = ReplayWindow::new();
        w.set_size(64);
        w.update(1000).unwrap();
        assert!(w.check(1000 - 63).is_ok());
        assert_eq!(w.check(1000 - 64), Err(EspError::Replay));
        let mut off = ReplayWindow::new();
        off.set_size(0);
        off.update(5).unwrap();
        off.update(5).unwrap();
        off.update(2).unwrap();
        assert_eq!(off.top(), 5);
        assert!(off.check(5).is_ok());
        let mut big = ReplayWindow::new();
        big.set_size(u32::MAX);
        assert_eq!(big.size(), WINDOW_SIZE);
    }

    #[test]
    fn esn_inference() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.infer_seq_hi(5), 0);
        assert_eq!(w.infer_seq_hi(u32::MAX), 0);
        w.update(u64::from(u32::MAX) - 10).unwrap();
        assert_eq!(w.infer_seq_hi(u32::MAX - 20), 0);
        assert_eq!(w.infer_seq_hi(3), 1);
        w.update((1u64 << 32) + 5).unwrap();
        assert_eq!(w.infer_seq_hi(u32::MAX - 3), 0);
        assert_eq!(w.infer_seq_hi(7), 1);
    }
}
