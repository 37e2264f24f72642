//! Small, pure statistics helpers for A/B experiment reports.
//!
//! Every function takes plain counts or samples and returns `None` when the
//! test is undefined for that input (empty data, a single category, zero
//! variance, ...) instead of panicking or producing NaN. The formulas follow
//! SciPy / statsmodels so that reports can be cross-checked against them; the
//! unit tests pin the results to values computed with those libraries.

use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};

/// Result of a Pearson chi-square test.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ChiSquare {
    /// Pearson's statistic, `sum((observed - expected)^2 / expected)`.
    pub statistic: f64,
    /// Degrees of freedom of the reference chi-square distribution.
    pub df: u32,
    /// Upper-tail probability of `statistic` under the null hypothesis.
    pub p_value: f64,
}

/// Upper tail of the chi-square distribution; `df` must be at least 1.
fn chi_square_sf(statistic: f64, df: u32) -> f64 {
    // Callers only pass df >= 1, and `ChiSquared::new` only rejects df <= 0 or NaN.
    ChiSquared::new(f64::from(df)).unwrap().sf(statistic)
}

/// Pearson chi-square goodness-of-fit test of `observed` counts against the
/// `expected_shares` of each category, e.g. to detect a sample-ratio mismatch
/// between the intended and the actual split of users over experiment arms.
///
/// Shares are relative weights (`[1.0, 2.0, 1.0]` means 25/50/25 %), so the
/// expected count of category `i` is `n * share[i] / sum(shares)`, as in
/// `scipy.stats.chisquare(observed, f_exp=n * shares / shares.sum())`.
///
/// Categories with a zero share are left out of the test (and of `df`). If any
/// of them nevertheless has observations, the hypothesis is impossible and the
/// result is `statistic = f64::INFINITY`, `p_value = 0.0`.
///
/// Returns `None` if the slices differ in length, a share (or their sum) is
/// negative or not finite, fewer than two categories have a positive share,
/// or `n == 0`.
pub fn goodness_of_fit(observed: &[u64], expected_shares: &[f64]) -> Option<ChiSquare> {
    if observed.len() != expected_shares.len()
        || expected_shares.iter().any(|s| !s.is_finite() || *s < 0.0)
    {
        return None;
    }
    let share_total: f64 = expected_shares.iter().sum();
    let categories = expected_shares.iter().filter(|s| **s > 0.0).count();
    let n: u128 = observed.iter().map(|&o| u128::from(o)).sum();
    if !share_total.is_finite() || categories < 2 || n == 0 {
        return None;
    }
    let df = u32::try_from(categories - 1).ok()?;
    let pairs = || observed.iter().zip(expected_shares);
    if pairs().any(|(&o, &s)| s == 0.0 && o > 0) {
        return Some(ChiSquare {
            statistic: f64::INFINITY,
            df,
            p_value: 0.0,
        });
    }
    let n = n as f64;
    let statistic: f64 = pairs()
        .filter(|(_, s)| **s > 0.0)
        .map(|(&o, &s)| {
            let expected = n * s / share_total;
            let diff = o as f64 - expected;
            diff * diff / expected
        })
        .sum();
    Some(ChiSquare {
        statistic,
        df,
        p_value: chi_square_sf(statistic, df),
    })
}

/// Pearson chi-square test of independence on an r×c contingency table
/// (rows = experiment arms, columns = outcomes), without Yates' continuity
/// correction, as `scipy.stats.chi2_contingency(table, correction=False)`.
///
/// Rows and columns whose counts are all zero carry no information (and would
/// give zero expected counts), so they are dropped first; `df` is computed on
/// the remaining table.
///
/// Returns `None` if the rows differ in length or if fewer than two non-zero
/// rows or fewer than two non-zero columns remain.
pub fn independence(table: &[Vec<u64>]) -> Option<ChiSquare> {
    let width = table.first()?.len();
    if table.iter().any(|row| row.len() != width) {
        return None;
    }
    let row_sums: Vec<u128> = table
        .iter()
        .map(|row| row.iter().map(|&c| u128::from(c)).sum())
        .collect();
    let col_sums: Vec<u128> = (0..width)
        .map(|j| table.iter().map(|row| u128::from(row[j])).sum())
        .collect();
    let rows: Vec<usize> = (0..table.len()).filter(|&i| row_sums[i] > 0).collect();
    let cols: Vec<usize> = (0..width).filter(|&j| col_sums[j] > 0).collect();
    if rows.len() < 2 || cols.len() < 2 {
        return None;
    }
    let n = row_sums.iter().sum::<u128>() as f64;
    let mut statistic = 0.0;
    for &i in &rows {
        for &j in &cols {
            let expected = row_sums[i] as f64 * col_sums[j] as f64 / n;
            let diff = table[i][j] as f64 - expected;
            statistic += diff * diff / expected;
        }
    }
    let df = u32::try_from((rows.len() - 1) * (cols.len() - 1)).ok()?;
    Some(ChiSquare {
        statistic,
        df,
        p_value: chi_square_sf(statistic, df),
    })
}

/// A closed interval `[low, high]`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// Two-sided Wilson score confidence interval for a binomial proportion
/// (e.g. a conversion rate), as
/// `statsmodels.stats.proportion.proportion_confint(method='wilson')`.
/// Unlike the normal ("Wald") interval it behaves well near 0 and 1 and for
/// small samples.
///
/// The bounds are clamped to `[0, 1]`; with no successes `low` is exactly 0 and
/// with only successes `high` is exactly 1 (the mathematically exact values).
///
/// Returns `None` if `trials == 0`, `successes > trials`, or `confidence` is
/// not strictly between 0 and 1.
pub fn wilson_interval(successes: u64, trials: u64, confidence: f64) -> Option<Interval> {
    let valid_confidence = confidence > 0.0 && confidence < 1.0;
    if trials == 0 || successes > trials || !valid_confidence {
        return None;
    }
    // alpha / 2 lies in (0, 0.5), so the quantile is finite and z > 0.
    let alpha = 1.0 - confidence;
    let z = -Normal::standard().inverse_cdf(alpha / 2.0);
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let dist = z * (p * (1.0 - p) / n + z2 / (4.0 * (n * n))).sqrt() / denom;
    let low = if successes == 0 { 0.0 } else { center - dist };
    let high = if successes == trials {
        1.0
    } else {
        center + dist
    };
    Some(Interval {
        low: low.clamp(0.0, 1.0),
        high: high.clamp(0.0, 1.0),
    })
}

/// Result of a two-sided Mann-Whitney U test.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MannWhitney {
    /// U statistic of the first sample (`U1`, the value SciPy reports).
    pub u: f64,
    /// Two-sided p-value from the normal approximation.
    pub p_value: f64,
}

/// Two-sided Mann-Whitney U (Wilcoxon rank-sum) test of whether values in `x`
/// tend to be larger or smaller than values in `y`, e.g. to compare a score
/// between two arms without assuming normality. Matches
/// `scipy.stats.mannwhitneyu(x, y, alternative='two-sided',
/// use_continuity=True, method='asymptotic')`: ties get average ranks, and the
/// p-value uses the normal approximation with tie-corrected variance and a 0.5
/// continuity correction (clamped to at most 1).
///
/// Returns `None` if either sample is empty, any value is NaN, or all values
/// are identical: the rank variance is then zero and the test is undefined.
pub fn mann_whitney_u(x: &[f64], y: &[f64]) -> Option<MannWhitney> {
    if x.is_empty() || y.is_empty() || x.iter().chain(y).any(|v| v.is_nan()) {
        return None;
    }
    let mut pooled: Vec<(f64, bool)> = x
        .iter()
        .map(|&v| (v, true))
        .chain(y.iter().map(|&v| (v, false)))
        .collect();
    pooled.sort_by(|a, b| a.0.total_cmp(&b.0));
    if pooled[0].0 == pooled[pooled.len() - 1].0 {
        return None;
    }

    // Walk runs of tied values: a run covering 0-based positions start..end
    // gets the average of the 1-based ranks start+1..=end.
    let mut rank_sum_x = 0.0;
    let mut tie_term = 0.0;
    let mut start = 0;
    while start < pooled.len() {
        let mut end = start + 1;
        while end < pooled.len() && pooled[end].0 == pooled[start].0 {
            end += 1;
        }
        let average_rank = (start + 1 + end) as f64 / 2.0;
        let in_x = pooled[start..end].iter().filter(|(_, is_x)| *is_x).count();
        rank_sum_x += average_rank * in_x as f64;
        let t = (end - start) as f64;
        tie_term += t * t * t - t;
        start = end;
    }

    let n1 = x.len() as f64;
    let n2 = y.len() as f64;
    let n = n1 + n2;
    let u1 = rank_sum_x - n1 * (n1 + 1.0) / 2.0;
    let u = u1.max(n1 * n2 - u1);
    let mean = n1 * n2 / 2.0;
    let variance = n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    if variance <= 0.0 {
        return None;
    }
    let z = (u - mean - 0.5) / variance.sqrt();
    let p_value = (2.0 * Normal::standard().sf(z)).min(1.0);
    Some(MannWhitney { u: u1, p_value })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values: Python 3, SciPy 1.17.1, statsmodels 0.15.0, NumPy 2.4.6.
    // Preamble for every snippet:
    //   import numpy as np; from scipy import stats
    //   from statsmodels.stats.proportion import proportion_confint

    #[track_caller]
    fn assert_close(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() <= 1e-9 * expected.abs().max(1.0),
            "actual {actual}, expected {expected}"
        );
    }

    #[track_caller]
    fn assert_chi(r: Option<ChiSquare>, statistic: f64, df: u32, p_value: f64) {
        let r = r.expect("test should be defined");
        assert_close(r.statistic, statistic);
        assert_eq!(r.df, df);
        assert_close(r.p_value, p_value);
    }

    // for obs, sh in [([5023, 4977], [.5, .5]), ([5200, 4800], [.5, .5]),
    //                 ([1000, 2040, 960], [1, 2, 1]), ([480, 510], [1, 1])]:
    //     obs, sh = np.array(obs, float), np.array(sh, float)
    //     r = stats.chisquare(obs, f_exp=obs.sum() * sh / sh.sum())
    //     print(repr(r.statistic), repr(r.pvalue))
    #[test]
    fn goodness_of_fit_matches_scipy() {
        let balanced = goodness_of_fit(&[5023, 4977], &[0.5, 0.5]);
        assert_chi(balanced, 0.2116, 1, 0.6455162205006953);
        // A real sample-ratio mismatch: 52/48 on 10k users.
        let srm = goodness_of_fit(&[5200, 4800], &[0.5, 0.5]);
        assert_chi(srm, 16.0, 1, 6.334248366623988e-5);
        assert!(srm.unwrap().p_value < 1e-3);
        let weighted = goodness_of_fit(&[1000, 2040, 960], &[1.0, 2.0, 1.0]);
        assert_chi(weighted, 2.4000000000000004, 2, 0.3011942119122021);
        // A zero-share category with no observations is simply left out.
        let skipped = goodness_of_fit(&[480, 0, 510], &[1.0, 0.0, 1.0]);
        assert_chi(skipped, 0.9090909090909091, 1, 0.34035574238519883);
        assert_chi(goodness_of_fit(&[5000, 5000], &[1.0, 1.0]), 0.0, 1, 1.0);
    }

    #[test]
    fn goodness_of_fit_observations_in_zero_share_category() {
        let r = goodness_of_fit(&[480, 3, 510], &[1.0, 0.0, 1.0]).unwrap();
        assert!(r.statistic.is_infinite());
        assert_eq!(r.df, 1);
        assert_eq!(r.p_value, 0.0);
    }

    #[test]
    fn goodness_of_fit_undefined() {
        assert!(goodness_of_fit(&[10], &[1.0]).is_none());
        assert!(goodness_of_fit(&[0, 0], &[0.5, 0.5]).is_none());
        assert!(goodness_of_fit(&[5, 5], &[1.0, 0.0]).is_none());
        assert!(goodness_of_fit(&[5, 5], &[1.0, 1.0, 1.0]).is_none());
        assert!(goodness_of_fit(&[5, 5], &[1.0, -1.0]).is_none());
        assert!(goodness_of_fit(&[5, 5], &[1.0, f64::NAN]).is_none());
        assert!(goodness_of_fit(&[], &[]).is_none());
    }

    // for t in ([[120, 880], [150, 850]], [[30, 70], [45, 55], [25, 75]],
    //           [[30, 70], [45, 55]]):
    //     r = stats.chi2_contingency(np.array(t), correction=False)
    //     print(repr(r.statistic), repr(r.pvalue), r.dof)
    #[test]
    fn independence_matches_scipy() {
        let conversions = independence(&[vec![120, 880], vec![150, 850]]);
        assert_chi(conversions, 3.8535645472061657, 1, 0.049640386865368834);
        let three_arms = independence(&[vec![30, 70], vec![45, 55], vec![25, 75]]);
        assert_chi(three_arms, 9.75, 2, 0.007635094218859962);
        // All-zero rows and columns are dropped: same as [[30, 70], [45, 55]].
        let sparse = independence(&[vec![30, 0, 70], vec![0, 0, 0], vec![45, 0, 55]]);
        assert_chi(sparse, 4.8, 1, 0.028459736916310638);
    }

    #[test]
    fn independence_undefined() {
        assert!(independence(&[]).is_none());
        assert!(independence(&[vec![1, 2]]).is_none());
        assert!(independence(&[vec![1, 0], vec![2, 0]]).is_none());
        assert!(independence(&[vec![1, 2], vec![0, 0]]).is_none());
        assert!(independence(&[vec![1, 2], vec![3]]).is_none());
    }

    // for s, n, c in [(120, 1000, .95), (0, 50, .95), (50, 50, .95), (7, 20, .99)]:
    //     print(proportion_confint(s, n, alpha=1 - c, method='wilson'))
    #[test]
    fn wilson_matches_statsmodels() {
        let cases = [
            (120, 1000, 0.95, 0.10129926060130913, 0.14160907584771276),
            (0, 50, 0.95, 6.938893903907228e-18, 0.07134759913335872),
            (50, 50, 0.95, 0.9286524008666414, 1.0),
            (7, 20, 0.99, 0.1463934413769388, 0.6283381789526871),
        ];
        for (successes, trials, confidence, low, high) in cases {
            let interval = wilson_interval(successes, trials, confidence).unwrap();
            assert_close(interval.low, low);
            assert_close(interval.high, high);
        }
    }

    #[test]
    fn wilson_undefined() {
        assert!(wilson_interval(0, 0, 0.95).is_none());
        assert!(wilson_interval(6, 5, 0.95).is_none());
        assert!(wilson_interval(1, 5, 0.0).is_none());
        assert!(wilson_interval(1, 5, 1.0).is_none());
        assert!(wilson_interval(1, 5, f64::NAN).is_none());
    }

    // def mwu(x, y):
    //     r = stats.mannwhitneyu(x, y, alternative='two-sided',
    //                            use_continuity=True, method='asymptotic')
    //     print(repr(r.statistic), repr(r.pvalue))
    // a, b = [1, 2, 2, 3, 4, 5, 5, 6], [3, 4, 4, 5, 6, 7, 7, 8, 9]
    // mwu(a, b); mwu(b, a)                        # 14.0 / 58.0, 0.03714012623439529
    // mwu([0]*30 + [1]*20, [0]*20 + [1]*30)       # 1000.0, 0.04703388748847908
    // mwu([1, 2, 3], [1, 2, 3])                   # 4.5, 1.0
    #[test]
    fn mann_whitney_matches_scipy() {
        let a = [1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 5.0, 6.0];
        let b = [3.0, 4.0, 4.0, 5.0, 6.0, 7.0, 7.0, 8.0, 9.0];
        let r = mann_whitney_u(&a, &b).unwrap();
        assert_close(r.u, 14.0);
        assert_close(r.p_value, 0.03714012623439529);
        let r = mann_whitney_u(&b, &a).unwrap();
        assert_close(r.u, 58.0);
        assert_close(r.p_value, 0.03714012623439529);

        let mut x = vec![0.0; 30];
        x.extend([1.0; 20]);
        let mut y = vec![0.0; 20];
        y.extend([1.0; 30]);
        let r = mann_whitney_u(&x, &y).unwrap();
        assert_close(r.u, 1000.0);
        assert_close(r.p_value, 0.04703388748847908);

        let r = mann_whitney_u(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]).unwrap();
        assert_close(r.u, 4.5);
        assert_close(r.p_value, 1.0);
    }

    #[test]
    fn mann_whitney_undefined() {
        assert!(mann_whitney_u(&[], &[1.0]).is_none());
        assert!(mann_whitney_u(&[1.0], &[]).is_none());
        assert!(mann_whitney_u(&[2.0, 2.0], &[2.0, 2.0, 2.0]).is_none());
        assert!(mann_whitney_u(&[1.0, f64::NAN], &[2.0]).is_none());
    }
}
