//! Money: integer fen, ratios in basis points, and the one rounding rule of RULES.md.
//!
//! Amounts are `i64` fen named `*_fen`; ratios are `u32` basis points named `*_bp`. Every amount that enters the
//! system is checked against [`MAX_FEN`] (2^53 − 1, the range every JSON parser and Lua's doubles read exactly), so
//! sums of a bill's buckets and products in [`pct`] never overflow.

/// The largest amount the API accepts: 2^53 − 1 fen.
pub const MAX_FEN: i64 = 9_007_199_254_740_991;

/// 100 % in basis points.
pub const FULL_BP: u32 = 10_000;

/// `pct(x, bp) = (x * bp + 5000) / 10000`, half up, computed in 128 bits so that `x` up to [`MAX_FEN`] is exact.
pub fn pct(amount_fen: i64, ratio_bp: u32) -> i64 {
    assert!((0..=MAX_FEN).contains(&amount_fen), "pct: amount out of range: {amount_fen}");
    assert!(ratio_bp <= FULL_BP, "pct: ratio out of range: {ratio_bp}");
    let scaled = i128::from(amount_fen) * i128::from(ratio_bp) + 5_000;
    let result = scaled / 10_000;
    // ratio_bp <= 10000, so the result is at most the amount: it fits
    i64::try_from(result).expect("pct(x, bp) <= x")
}

/// True when `amount_fen` is an amount the API accepts.
pub fn is_valid_fen(amount_fen: i64) -> bool {
    (0..=MAX_FEN).contains(&amount_fen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_up() {
        assert_eq!(pct(5, 9000), 5); // 4.5 -> 5
        assert_eq!(pct(15, 9000), 14); // 13.5 -> 14
        assert_eq!(pct(1, 4999), 0); // 0.4999 -> 0
        assert_eq!(pct(1, 5000), 1); // 0.5 -> 1
        assert_eq!(pct(0, 10_000), 0);
    }

    #[test]
    fn exact_at_the_top_of_the_range() {
        assert_eq!(pct(MAX_FEN, 10_000), MAX_FEN);
        // 9007199254740991 * 9999 / 10000 = 9006298534815516.9009 -> 9006298534815517
        assert_eq!(pct(MAX_FEN, 9_999), 9_006_298_534_815_517);
        assert_eq!(pct(1_000_000_000_000, 3_333), 333_300_000_000);
    }
}
