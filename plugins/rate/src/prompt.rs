//! RateXBlock's prompts, their defaults, and the per-learner draw of prompt and visibility.

use serde::Deserialize;

/// One prompt as authored: any key may be missing.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PromptFields {
    pub freeform: Option<String>,
    pub likert: Option<String>,
    pub mouseovers: Option<Vec<String>>,
    pub icons: Option<Vec<String>>,
}

/// A prompt with the XBlock's `default_prompt` filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub freeform: String,
    pub likert: String,
    pub mouseovers: Vec<String>,
    pub icons: Vec<String>,
}

impl PromptFields {
    /// The XBlock's default `prompts` entry.
    pub fn xblock_default() -> Self {
        PromptFields {
            freeform: Some("What could be improved to make this section more clear?".into()),
            likert: Some("Was this section clear or confusing?".into()),
            mouseovers: None,
            icons: None,
        }
    }

    /// This prompt over the XBlock's `default_prompt`.
    pub fn resolve(&self) -> Prompt {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Prompt {
            freeform: self
                .freeform
                .clone()
                .unwrap_or_else(|| "Please provide us feedback on this section.".into()),
            likert: self
                .likert
                .clone()
                .unwrap_or_else(|| "Please rate your overall experience with this section.".into()),
            mouseovers: self
                .mouseovers
                .clone()
                .unwrap_or_else(|| strings(&["Excellent", "Good", "Average", "Fair", "Poor"])),
            icons: self
                .icons
                .clone()
                .unwrap_or_else(|| strings(&["😁", "😊", "😐", "☹", "😟"])),
        }
    }
}

impl Prompt {
    /// The scale's levels, `(mouseover, icon)`, as the XBlock zips them (the shorter wins).
    pub fn scale(&self) -> impl Iterator<Item = (&String, &String)> {
        self.mouseovers.iter().zip(&self.icons)
    }
}

/// A learner's prompt index (of `prompts`) and their percentile in `[0, 100)` (they see
/// the block when it is below `p`), from a hash of course, block and learner: uniform like
/// the XBlock's random draws, and the same on every visit without storing anything.
/// `None` when there are no prompts.
pub fn draw(course: &str, usage: &str, user: &str, prompts: usize) -> Option<(usize, f64)> {
    if prompts == 0 {
        return None;
    }
    let h = fnv1a(&[
        b"rate",
        course.as_bytes(),
        usage.as_bytes(),
        user.as_bytes(),
    ]);
    let index = ((h >> 32) % prompts as u64) as usize;
    let percentile = (h & 0xffff_ffff) as f64 / 4_294_967_296.0 * 100.0;
    Some((index, percentile))
}

/// 64-bit FNV-1a over the parts, each followed by a NUL (no part can run into the next),
/// then MurmurHash3's finalizer (FNV alone leaves learners whose ids differ in the last
/// digits close together).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.iter().chain(&[0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}
