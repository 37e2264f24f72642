//! Always-valid inference for conversion goals: the mixture sequential probability ratio
//! test (mSPRT) of Johari, Koomen, Pekelis and Walsh, "Always Valid Inference: Continuous
//! Monitoring of A/B Tests" (Operations Research 70(3), 2022), with a normal mixing
//! distribution on the difference of two conversion rates.
//!
//! A fixed-horizon p-value is valid only when it is read once, at a sample size chosen in
//! advance; read every day, it crosses 0.05 far more often than 5% of the time on A/A
//! data. The mSPRT's p-value and confidence sequence hold over every look at once, so staff
//! may look whenever they like and stop when they like. The guarantee is asymptotic: it
//! rests on the normal approximation of each rate's difference (with its variance
//! estimated from the data), so it is close to exact from a few hundred learners per arm
//! and only approximate below; the A/A simulation in the tests checks the false-positive
//! rate at the sizes the tests look at.
//!
//! With `θ̂` the observed difference of rates and `V` its variance (each arm's `p(1-p)/n`),
//! the mixture likelihood ratio against "no difference" under a `N(0, τ²)` mixture is
//!
//! `Λ = sqrt(V / (V + τ²)) · exp(τ² θ̂² / (2 V (V + τ²)))`,
//!
//! the always-valid p-value is `min(1, 1/Λ)` (a running minimum over looks is valid too;
//! one look's value is never smaller, so it is the conservative reading of it), and the
//! confidence sequence is `θ̂ ± sqrt(V (V + τ²) / τ² · (ln((V + τ²)/V) - 2 ln α))`, the
//! differences the test would not reject. `τ²` is tuned, as GrowthBook tunes it, so the
//! interval is tightest near [`TUNING_LEARNERS`] learners: `τ² = V · n · ρ²` with
//! `ρ² = (-2 ln α + ln(1 - 2 ln α)) / n*` (Howard, Ramdas, McAuliffe and Sekhon,
//! "Time-uniform, nonparametric, nonasymptotic confidence sequences", Annals of
//! Statistics 49(2), 2021, eq. 14). Imports no sibling (its tests compare with `stats`).

use serde::Serialize;

/// The sample size (learners in both arms) the confidence sequence is tightest at:
/// GrowthBook's default tuning.
pub const TUNING_LEARNERS: f64 = 5000.0;

/// An always-valid comparison of a group's conversion rate with control's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sequential {
    /// The group's rate minus control's.
    pub difference: f64,
    /// The confidence sequence on the difference at the report's confidence.
    pub low: f64,
    pub high: f64,
    /// The always-valid p-value of "no difference".
    pub p_value: f64,
}

/// The mSPRT of `(conversions, learners)` of a group against control at level `alpha`
/// (the interval's confidence is `1 - alpha`). `None` when either arm is empty or both
/// rates are 0 or 1 (the variance is 0: nothing to test yet).
pub fn msprt(group: (u64, u64), control: (u64, u64), alpha: f64) -> Option<Sequential> {
    let (gc, gn) = group;
    let (cc, cn) = control;
    if gn == 0 || cn == 0 || gc > gn || cc > cn || !(0.0 < alpha && alpha < 1.0) {
        return None;
    }
    let (pg, pc) = (gc as f64 / gn as f64, cc as f64 / cn as f64);
    let v = pg * (1.0 - pg) / gn as f64 + pc * (1.0 - pc) / cn as f64;
    if v.is_nan() || v <= 0.0 {
        return None;
    }
    let n = (gn + cn) as f64;
    let log_alpha = alpha.ln();
    let rho2 = (-2.0 * log_alpha + (1.0 - 2.0 * log_alpha).ln()) / TUNING_LEARNERS;
    let tau2 = v * n * rho2;
    let theta = pg - pc;
    let log_lambda = 0.5 * (v / (v + tau2)).ln() + tau2 * theta * theta / (2.0 * v * (v + tau2));
    let p_value = (-log_lambda).exp().min(1.0);
    let half = (v * (v + tau2) / tau2 * (((v + tau2) / v).ln() - 2.0 * log_alpha)).sqrt();
    Some(Sequential {
        difference: theta,
        low: theta - half,
        high: theta + half,
        p_value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (splitmix64), so the simulations are repeatable.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn converts(&mut self, rate: f64) -> bool {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - rate
        }
    }

    /// Simulated experiments of `learners` per arm looked at after every `every`
    /// learners: the share of them in which some look rejected "no difference" at 5%,
    /// by the mSPRT and by the fixed-horizon chi-square test read at every look.
    fn peeking(rates: (f64, f64), runs: usize, learners: u64, every: u64) -> (f64, f64) {
        let mut rng = Rng(0x0005_eed0_fa11_7e57);
        let (mut sequential, mut fixed) = (0, 0);
        for _ in 0..runs {
            let (mut g, mut c) = (0, 0);
            let (mut seq_rejected, mut fixed_rejected) = (false, false);
            for n in 1..=learners {
                g += u64::from(rng.converts(rates.1));
                c += u64::from(rng.converts(rates.0));
                if n % every != 0 {
                    continue;
                }
                if msprt((g, n), (c, n), 0.05).is_some_and(|s| s.p_value <= 0.05) {
                    seq_rejected = true;
                }
                let table = [vec![g, n - g], vec![c, n - c]];
                if crate::stats::independence(&table).is_some_and(|t| t.p_value <= 0.05) {
                    fixed_rejected = true;
                }
            }
            sequential += usize::from(seq_rejected);
            fixed += usize::from(fixed_rejected);
        }
        (sequential as f64 / runs as f64, fixed as f64 / runs as f64)
    }

    #[test]
    fn on_aa_data_peeking_every_day_keeps_false_positives_under_the_level() {
        // 1,000 A/A experiments of 3,000 learners an arm, looked at 60 times each.
        let (sequential, fixed) = peeking((0.2, 0.2), 1000, 3000, 50);
        assert!(sequential <= 0.05, "mSPRT false-positive rate {sequential}");
        // The same looks with the fixed-horizon test: the inflation the mSPRT prevents.
        assert!(fixed > 0.15, "fixed-horizon false-positive rate {fixed}");
    }

    #[test]
    fn a_real_difference_is_found() {
        let (sequential, _) = peeking((0.2, 0.26), 200, 3000, 50);
        assert!(sequential > 0.8, "power {sequential}");
    }

    #[test]
    fn the_interval_excludes_zero_exactly_when_the_p_value_is_below_the_level() {
        for (g, c) in [
            ((260, 1000), (200, 1000)),
            ((230, 1000), (200, 1000)),
            ((50, 100), (40, 100)),
            ((900, 4000), (800, 4000)),
        ] {
            let s = msprt(g, c, 0.05).unwrap();
            let excludes = s.low > 0.0 || s.high < 0.0;
            assert_eq!(excludes, s.p_value < 0.05, "{g:?} {c:?}: {s:?}");
            assert!(
                (s.difference - (g.0 as f64 / g.1 as f64 - c.0 as f64 / c.1 as f64)).abs() < 1e-12
            );
        }
    }

    #[test]
    fn the_formulas_give_what_an_independent_evaluation_gives() {
        // The module's formulas evaluated separately (Python, double precision), with the
        // mixture ratio at each end of the interval checked to be 1/alpha there.
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        let s = msprt((260, 1000), (200, 1000), 0.05).unwrap();
        assert!(close(s.p_value, 0.042_014_152_784_386_06), "{s:?}");
        assert!(close(s.low, 0.001_359_419_130_545_158_6), "{s:?}");
        assert!(close(s.high, 0.118_640_580_869_454_84), "{s:?}");
        let s = msprt((230, 1000), (200, 1000), 0.05).unwrap();
        assert!(close(s.p_value, 0.740_343_299_750_579_9), "{s:?}");
        assert!(close(s.low, -0.027_353_468_846_785_84), "{s:?}");
    }

    #[test]
    fn nothing_to_test_gives_none() {
        assert_eq!(msprt((0, 0), (1, 10), 0.05), None);
        assert_eq!(msprt((0, 10), (0, 10), 0.05), None);
        assert_eq!(msprt((10, 10), (10, 10), 0.05), None);
        assert_eq!(msprt((11, 10), (1, 10), 0.05), None);
        assert!(msprt((1, 10), (0, 10), 0.05).is_some());
    }
}
