//! The video's authored fields, as the OLX import writes them (`host/src/olx/video.rs`),
//! and the checks every use of them goes through: which URLs a page may load, which
//! YouTube ids may be embedded, and what the times mean.
//!
//! Fields come from course authors (an export is an upload): nothing here is trusted to be
//! well formed. A URL that is not `https:`, `http:` or a path on this host is never put on
//! a page; a YouTube id that is not one is never embedded; times that make no sense are
//! ignored for learners and named to authors.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Longest media the block accepts a time for when it does not know the video's end (a
/// day): event times beyond it are refused.
pub const MAX_MEDIA_SECONDS: f64 = 24.0 * 3600.0;

/// Open edX's YouTube speeds, in the order the fields name them.
pub const SPEEDS: &[&str] = &["1.00", "0.75", "1.25", "1.50"];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Fields {
    pub display_name: Option<String>,
    /// HTML5 sources, in the author's order (`html5_sources` and `<source src>`).
    pub html5_sources: Vec<String>,
    /// Open edX's "external video download URL" (`source`).
    pub source: Option<String>,
    pub youtube_id_1_0: Option<String>,
    pub youtube_id_0_75: Option<String>,
    pub youtube_id_1_25: Option<String>,
    pub youtube_id_1_5: Option<String>,
    /// Where playback starts, in seconds (0: the beginning).
    pub start_time: f64,
    /// Where playback ends, in seconds (0: the end of the media), as Open edX stores it.
    pub end_time: f64,
    /// Learners may download the video.
    pub download_video: bool,
    /// Learners may download the transcript.
    pub download_track: bool,
    /// A downloadable transcript file the author named (`track`).
    pub track: Option<String>,
    pub handout: Option<String>,
    /// Transcripts by language code, with the cues the import read from the export.
    pub transcripts: BTreeMap<String, Transcript>,
    /// The id of the video in Open edX's Video Abstraction Layer (VAL), which this host does
    /// not have: noted for staff.
    pub edx_video_id: Option<String>,
    /// What the import could not use (a list that does not parse, a time that is not one),
    /// for staff and authors.
    pub notes: Vec<String>,
}

/// One language's transcript.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Transcript {
    /// The file the course names (in the export's `static/`).
    pub file: String,
    pub cues: Vec<Cue>,
    /// Why the import has no cues for it (the file is missing from the export, or does not
    /// parse): shown to staff, never to learners.
    pub missing: Option<String>,
}

/// One caption: from `start` to `end` seconds.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Cue {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// A URL a page may load or link to: absolute `https:`/`http:`, or a path on this host
/// (one leading `/`, not `//`). No `javascript:`, `data:` or other schemes, no controls,
/// no spaces (each would be a different URL than the author meant), bounded in length.
pub fn safe_url(url: &str) -> Option<&str> {
    let url = url.trim();
    if url.is_empty() || url.len() > 2048 {
        return None;
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return None;
    }
    let lower = url.to_ascii_lowercase();
    let web = lower.starts_with("https://") || lower.starts_with("http://");
    let local = url.starts_with('/') && !url.starts_with("//") && !url.starts_with("/\\");
    (web || local).then_some(url)
}

/// Whether a URL is on another host (`https:`/`http:`), as opposed to a path on this one.
pub fn is_absolute(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// A YouTube video id: 1 to 64 of `A-Z a-z 0-9 _ -` (YouTube's own are 11).
pub fn youtube_id(id: &str) -> Option<&str> {
    let id = id.trim();
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    ok.then_some(id)
}

/// A transcript language code as a page may carry it (`en`, `zh_HANS`, `pt-br`).
pub fn language_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 16
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Fields {
    /// The YouTube ids by speed, as authored (valid or not).
    pub fn youtube(&self) -> Vec<(&'static str, &str)> {
        [
            &self.youtube_id_1_0,
            &self.youtube_id_0_75,
            &self.youtube_id_1_25,
            &self.youtube_id_1_5,
        ]
        .into_iter()
        .zip(SPEEDS)
        .filter_map(|(id, speed)| Some((*speed, id.as_deref()?)).filter(|(_, i)| !i.is_empty()))
        .collect()
    }

    /// The YouTube id to embed: normal speed's, else the first valid one.
    pub fn embed_id(&self) -> Option<&str> {
        self.youtube()
            .into_iter()
            .find_map(|(_, id)| youtube_id(id))
    }

    /// The HTML5 sources a page may load.
    pub fn playable_sources(&self) -> Vec<&str> {
        self.html5_sources
            .iter()
            .filter_map(|s| safe_url(s))
            .collect()
    }

    /// Open edX's `code` in video events: the YouTube id when the player is YouTube's,
    /// else `html5`.
    pub fn code(&self) -> &str {
        if self.playable_sources().is_empty() {
            self.embed_id().unwrap_or("html5")
        } else {
            "html5"
        }
    }

    /// The playback window `(start, end)` in seconds when the times make sense (finite, not
    /// negative, end after start); `end` is `None` for "to the end".
    pub fn window(&self) -> Option<(f64, Option<f64>)> {
        let (s, e) = (self.start_time, self.end_time);
        if !s.is_finite() || !e.is_finite() || s < 0.0 || e < 0.0 || s > MAX_MEDIA_SECONDS {
            return None;
        }
        if e == 0.0 {
            return Some((s, None));
        }
        (e > s && e <= MAX_MEDIA_SECONDS).then_some((s, Some(e)))
    }

    /// The latest media time an event may name: the window's end when it has one, else a
    /// day.
    pub fn latest_time(&self) -> f64 {
        match self.window() {
            Some((_, Some(end))) => end,
            _ => MAX_MEDIA_SECONDS,
        }
    }

    /// The link for "download video": `source`, else the first HTML5 source, when allowed.
    pub fn download_url(&self) -> Option<&str> {
        if !self.download_video {
            return None;
        }
        self.source
            .as_deref()
            .and_then(safe_url)
            .or_else(|| self.playable_sources().first().copied())
    }

    /// The transcript shown beside the player: English when there is one with cues, else
    /// the first language that has cues.
    pub fn shown_transcript(&self) -> Option<(&str, &Transcript)> {
        fn usable<'a>(
            (lang, t): (&'a String, &'a Transcript),
        ) -> Option<(&'a str, &'a Transcript)> {
            (language_code(lang) && !t.cues.is_empty()).then_some((lang.as_str(), t))
        }
        self.transcripts
            .get_key_value("en")
            .and_then(usable)
            .or_else(|| self.transcripts.iter().find_map(usable))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_web_and_local_urls_are_safe() {
        assert_eq!(
            safe_url(" https://x.org/a.mp4 "),
            Some("https://x.org/a.mp4")
        );
        assert_eq!(safe_url("HTTP://x.org/a.mp4"), Some("HTTP://x.org/a.mp4"));
        assert_eq!(safe_url("/static/a.mp4"), Some("/static/a.mp4"));
        for bad in [
            "javascript:alert(1)",
            "data:video/mp4;base64,AAAA",
            "//evil.org/a.mp4",
            "/\\evil.org",
            "https://x.org/a b.mp4",
            "https://x.org/\u{7}",
            "a.mp4",
            "",
        ] {
            assert_eq!(safe_url(bad), None, "{bad:?}");
        }
        assert_eq!(
            safe_url(&format!("https://x.org/{}", "a".repeat(3000))),
            None
        );
    }

    #[test]
    fn youtube_ids_are_checked() {
        assert_eq!(youtube_id("-50NdPawLVY"), Some("-50NdPawLVY"));
        assert_eq!(youtube_id("3_yD_cEKoCk"), Some("3_yD_cEKoCk"));
        assert_eq!(youtube_id("a\"onload=x"), None);
        assert_eq!(youtube_id("../x"), None);
        assert_eq!(youtube_id(""), None);
    }

    #[test]
    fn the_window_needs_sensible_times() {
        let f = |s: f64, e: f64| Fields {
            start_time: s,
            end_time: e,
            ..Fields::default()
        };
        assert_eq!(f(0.0, 0.0).window(), Some((0.0, None)));
        assert_eq!(f(699.0, 777.0).window(), Some((699.0, Some(777.0))));
        assert_eq!(f(10.0, 0.0).window(), Some((10.0, None)));
        assert_eq!(f(10.0, 5.0).window(), None);
        assert_eq!(f(-1.0, 5.0).window(), None);
        assert_eq!(f(1.0, 1e9).window(), None);
        assert_eq!(f(699.0, 777.0).latest_time(), 777.0);
        assert_eq!(f(0.0, 0.0).latest_time(), MAX_MEDIA_SECONDS);
    }
}
