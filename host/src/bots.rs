//! Bot detection by user agent: bots see the control group, are never enrolled and send
//! no events, so crawlers do not dilute experiments.

use std::path::Path;

use anyhow::{Context as _, Result};
use regex::{Regex, RegexSet};

/// Patterns used when no list is configured: the words crawlers put in their user agents.
pub const DEFAULT_PATTERNS: &[&str] = &[
    r"bot\b",
    r"crawl",
    r"spider",
    r"slurp",
    r"python-requests",
    r"\bcurl/",
    r"\bwget/",
    r"facebookexternalhit",
    r"mediapartners-google",
];

/// A list of user-agent patterns (regular expressions, matched case-insensitively).
#[derive(Debug, Clone)]
pub struct BotFilter {
    patterns: Vec<String>,
    set: RegexSet,
}

impl BotFilter {
    /// A filter from patterns; a bad pattern is an error naming it.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<BotFilter> {
        let patterns: Vec<String> = patterns.iter().map(|p| p.as_ref().to_string()).collect();
        for p in &patterns {
            Regex::new(&format!("(?i){p}"))
                .with_context(|| format!("bot pattern {p:?} is not a regular expression"))?;
        }
        let set = RegexSet::new(patterns.iter().map(|p| format!("(?i){p}")))?;
        Ok(BotFilter { patterns, set })
    }

    /// Reads one pattern per line; blank lines and lines starting with `#` are skipped.
    /// A bad pattern is an error naming the file and line.
    pub fn from_file(path: &Path) -> Result<BotFilter> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the bot patterns {}", path.display()))?;
        let mut patterns = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            Regex::new(&format!("(?i){line}"))
                .with_context(|| format!("{} line {}: bad bot pattern", path.display(), i + 1))?;
            patterns.push(line.to_string());
        }
        BotFilter::new(&patterns)
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether a user agent is a bot's. A request without one is not taken for a bot
    /// (LMS back ends call without one).
    pub fn is_bot(&self, user_agent: Option<&str>) -> bool {
        user_agent.is_some_and(|ua| self.set.is_match(ua))
    }
}

impl Default for BotFilter {
    fn default() -> Self {
        BotFilter::new(DEFAULT_PATTERNS).expect("the default bot patterns are valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_patterns_catch_crawlers_and_spare_browsers() {
        let f = BotFilter::default();
        for ua in [
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (compatible; bingbot/2.0)",
            "curl/8.5.0",
            "python-requests/2.31",
        ] {
            assert!(f.is_bot(Some(ua)), "{ua}");
        }
        for ua in [
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) Gecko/20100101 Firefox/131.0",
        ] {
            assert!(!f.is_bot(Some(ua)), "{ua}");
        }
        assert!(!f.is_bot(None));
    }

    #[test]
    fn a_bad_pattern_names_file_and_line() {
        let dir = std::env::temp_dir().join(format!("xbhost-bots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bots.txt");
        std::fs::write(&path, "# crawlers\nmybot\n\n(unclosed\n").unwrap();
        let err = format!("{:#}", BotFilter::from_file(&path).unwrap_err());
        assert!(err.contains("bots.txt line 4"), "{err}");
        std::fs::write(&path, "# ours\nmybot\n").unwrap();
        let f = BotFilter::from_file(&path).unwrap();
        assert!(f.is_bot(Some("MyBot/1.0")));
        assert!(
            !f.is_bot(Some("curl/8")),
            "a configured list replaces the defaults"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
