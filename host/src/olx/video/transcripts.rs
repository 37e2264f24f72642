//! Transcript files as Open edX exports them, parsed into one list of cues: SRT
//! (`*.srt`, what Studio uploads) and Open edX's SJSON (`subs_<id>.srt.sjson`:
//! `{"start": [ms], "end": [ms], "text": [..]}`), so the video block renders and serves
//! one shape whatever the export held.
//!
//! A transcript file is an upload: what is read is bounded (the file already is, by the
//! import's per-file limit) in cues and in text per cue, and a cue whose times are not
//! times (negative, backwards, past a day) is skipped and counted, never trusted.

use serde::Deserialize;
use serde_json::{Value, json};

/// Most cues kept from one transcript (a 10-hour lecture at one cue per 2 s).
pub(super) const MAX_CUES: usize = 20_000;

/// Most characters of one cue's text kept (captions are a line or two).
const MAX_CUE_CHARS: usize = 2_000;

/// The latest time a cue may name, in seconds (a day).
const MAX_SECONDS: f64 = 24.0 * 3600.0;

/// What parsing one file gave: the cues, and what was left out (for staff).
#[derive(Debug, Default, PartialEq)]
pub(super) struct Parsed {
    pub cues: Vec<Cue>,
    /// Cues dropped (bad times, over [`MAX_CUES`]), with the first one's place.
    pub skipped: usize,
    pub first_skipped: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Cue {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

impl Cue {
    pub fn to_json(&self) -> Value {
        json!({ "start": self.start, "end": self.end, "text": self.text })
    }
}

impl Parsed {
    fn push(&mut self, start: f64, end: f64, text: &str, place: impl FnOnce() -> String) {
        let sane = |t: f64| t.is_finite() && (0.0..=MAX_SECONDS).contains(&t);
        if !sane(start) || !sane(end) || end < start || self.cues.len() >= MAX_CUES {
            self.skip(place());
            return;
        }
        self.cues.push(Cue {
            start,
            end,
            text: clean_text(text),
        });
    }

    fn skip(&mut self, place: String) {
        self.skipped += 1;
        self.first_skipped.get_or_insert(place);
    }

    /// What staff are told about dropped cues, if any were.
    pub fn note(&self, file: &str) -> Option<String> {
        let first = self.first_skipped.as_deref()?;
        Some(format!(
            "{file}: {} cues were left out (times that are not times, or over {MAX_CUES} cues); the first at {first}",
            self.skipped
        ))
    }
}

/// Parses a transcript by its file name: SJSON when it ends in `.sjson`, else SRT. An
/// error says why nothing could be read from it.
pub(super) fn parse_transcript(file: &str, text: &str) -> Result<Parsed, String> {
    let parsed = if file.to_ascii_lowercase().ends_with(".sjson") {
        parse_sjson(text)?
    } else {
        parse_srt(text)
    };
    if parsed.cues.is_empty() {
        return Err(match &parsed.first_skipped {
            Some(first) => {
                format!("it has no cue this site can read (the first bad one at {first})")
            }
            None => "it holds no cues".to_string(),
        });
    }
    Ok(parsed)
}

/// SRT: blocks separated by blank lines, each an optional number, a
/// `HH:MM:SS,mmm --> HH:MM:SS,mmm` line, and the text lines.
pub(super) fn parse_srt(text: &str) -> Parsed {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut parsed = Parsed::default();
    let mut block: Vec<(usize, &str)> = Vec::new();
    let lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    for (number, line) in lines.chain(std::iter::once((0, ""))) {
        if !line.trim().is_empty() {
            block.push((number, line.trim_end_matches('\r')));
            continue;
        }
        if block.is_empty() {
            continue;
        }
        let timing = block.iter().position(|(_, l)| l.contains("-->"));
        let place = format!("line {}", block[0].0);
        match timing.and_then(|i| Some((i, srt_times(block[i].1)?))) {
            // The timing line comes first, or after the cue's number.
            Some((i, (start, end))) if i <= 1 => {
                let body: Vec<&str> = block[i + 1..].iter().map(|(_, l)| *l).collect();
                parsed.push(start, end, &body.join("\n"), || place);
            }
            _ => parsed.skip(place),
        }
        block.clear();
    }
    parsed
}

/// The two times of an SRT timing line (`00:00:01,500 --> 00:00:03,000`, positions and
/// other settings after the second time ignored).
fn srt_times(line: &str) -> Option<(f64, f64)> {
    let (a, b) = line.split_once("-->")?;
    let b = b.split_whitespace().next()?;
    Some((clock_time(a.trim())?, clock_time(b)?))
}

/// `HH:MM:SS,mmm`, `HH:MM:SS.mmm` or `MM:SS,mmm` in seconds.
fn clock_time(s: &str) -> Option<f64> {
    let s = s.replace(',', ".");
    let parts: Vec<&str> = s.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return None;
    }
    let mut seconds = 0.0;
    for (i, part) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        let ok = !part.is_empty()
            && part.len() <= 12
            && part
                .bytes()
                .all(|b| b.is_ascii_digit() || (last && b == b'.'));
        if !ok {
            return None;
        }
        seconds = seconds * 60.0 + part.parse::<f64>().ok()?;
    }
    Some(seconds)
}

#[derive(Deserialize)]
struct Sjson {
    start: Vec<Value>,
    end: Vec<Value>,
    text: Vec<Value>,
}

/// Open edX's SJSON: three lists of the same length, times in milliseconds.
pub(super) fn parse_sjson(text: &str) -> Result<Parsed, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let s: Sjson = serde_json::from_str(text).map_err(|e| {
        format!("it is not Open edX's SJSON ({{\"start\", \"end\", \"text\"}}): {e}")
    })?;
    if s.start.len() != s.end.len() || s.start.len() != s.text.len() {
        return Err(format!(
            "its start, end and text lists differ in length ({}, {}, {})",
            s.start.len(),
            s.end.len(),
            s.text.len()
        ));
    }
    let mut parsed = Parsed::default();
    for (i, ((start, end), text)) in s.start.iter().zip(&s.end).zip(&s.text).enumerate() {
        let ms = |v: &Value| v.as_f64().map(|n| n / 1000.0).unwrap_or(f64::NAN);
        let place = || format!("entry {i}");
        match text.as_str() {
            Some(t) => parsed.push(ms(start), ms(end), t, place),
            None => parsed.skip(place()),
        }
    }
    Ok(parsed)
}

/// A cue's text as a learner reads it: formatting tags (`<i>`, `<font ...>`) removed,
/// since the block escapes what it shows; lines trimmed; at most [`MAX_CUE_CHARS`].
fn clean_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_CUE_CHARS));
    let mut in_tag = false;
    let mut kept = 0;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if in_tag => {}
            c if kept < MAX_CUE_CHARS => {
                out.push(c);
                kept += 1;
            }
            _ => break,
        }
    }
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srt_cues_with_numbers_crlf_bom_and_tags() {
        let srt = "\u{feff}1\r\n00:00:01,500 --> 00:00:03,000\r\n<i>Hello</i> there\r\n\r\n2\r\n00:00:03,000 --> 00:01:04.250 X1:10\r\nTwo\r\nlines\r\n\r\n\r\n3\r\nnot a time\r\nlost\r\n\r\n00:02:00,000 --> 00:01:00,000\r\nbackwards\r\n";
        let p = parse_srt(srt);
        assert_eq!(
            p.cues,
            vec![
                Cue {
                    start: 1.5,
                    end: 3.0,
                    text: "Hello there".into()
                },
                Cue {
                    start: 3.0,
                    end: 64.25,
                    text: "Two\nlines".into()
                },
            ]
        );
        assert_eq!(p.skipped, 2);
        assert_eq!(p.first_skipped.as_deref(), Some("line 11"));
        assert!(
            p.note("static/a.srt")
                .unwrap()
                .contains("2 cues were left out")
        );
    }

    #[test]
    fn sjson_cues_in_milliseconds() {
        let p = parse_sjson(r#"{"start": [0, 1500, -5], "end": [1500, 4000, 10], "text": ["Hi", "<b>there</b>", "bad"]}"#).unwrap();
        assert_eq!(p.cues.len(), 2);
        assert_eq!(
            p.cues[1],
            Cue {
                start: 1.5,
                end: 4.0,
                text: "there".into()
            }
        );
        assert_eq!(p.skipped, 1);
        let e = parse_sjson(r#"{"start": [0], "end": [], "text": []}"#).unwrap_err();
        assert!(e.contains("differ in length"), "{e}");
        assert!(parse_sjson("[1,2]").unwrap_err().contains("SJSON"));
    }

    #[test]
    fn a_file_with_no_readable_cue_is_an_error() {
        assert!(
            parse_transcript("a.srt", "")
                .unwrap_err()
                .contains("no cues")
        );
        assert!(
            parse_transcript("a.srt", "1\nnonsense\n")
                .unwrap_err()
                .contains("line 1")
        );
        assert_eq!(
            parse_transcript(
                "subs_x.srt.sjson",
                r#"{"start":[0],"end":[1],"text":["a"]}"#
            )
            .unwrap()
            .cues
            .len(),
            1
        );
    }

    #[test]
    fn cues_and_text_are_bounded() {
        let mut srt = String::new();
        for i in 0..MAX_CUES + 5 {
            srt.push_str(&format!(
                "00:00:{:02},000 --> 00:00:{:02},500\nx\n\n",
                i % 60,
                i % 60
            ));
        }
        let p = parse_srt(&srt);
        assert_eq!(p.cues.len(), MAX_CUES);
        assert_eq!(p.skipped, 5);
        let long = format!("00:00:01,000 --> 00:00:02,000\n{}\n", "y".repeat(10_000));
        assert_eq!(parse_srt(&long).cues[0].text.len(), MAX_CUE_CHARS);
    }
}
