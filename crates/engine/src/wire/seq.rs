//! Wraparound-safe TCP sequence-number arithmetic (RFC 9293 section 3.4).
//!
//! Sequence numbers live on a 2^32 circle: `a` is "before" `b` when the
//! signed distance from `a` to `b` is positive. Every comparison of seq or
//! ack values in the engine goes through these functions.

/// Signed distance from `from` to `to` on the sequence circle.
#[inline]
pub fn seq_diff(to: u32, from: u32) -> i32 {
    to.wrapping_sub(from) as i32
}

/// `a < b` on the sequence circle.
#[inline]
pub fn seq_lt(a: u32, b: u32) -> bool {
    seq_diff(b, a) > 0
}

/// `a > b` on the sequence circle.
#[inline]
pub fn seq_gt(a: u32, b: u32) -> bool {
    seq_lt(b, a)
}

/// The later of two sequence numbers on the circle.
#[inline]
pub fn seq_max(a: u32, b: u32) -> u32 {
    if seq_lt(a, b) {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_across_the_wrap() {
        assert!(seq_lt(0xffff_fff0, 0x0000_0010));
        assert!(seq_gt(0x0000_0010, 0xffff_fff0));
        assert_eq!(seq_diff(0x0000_0010, 0xffff_fff0), 0x20);
        assert_eq!(seq_max(0xffff_fff0, 5), 5);
        assert!(!seq_lt(7, 7) && !seq_gt(7, 7));
    }
}
