//! Cues written out again: as SRT (the `transcript` handler and the download link) and
//! times as a learner reads them beside the player.

use crate::fields::Cue;

/// `seconds` as SRT writes a time: `HH:MM:SS,mmm` (negative and non-finite times as 0).
pub fn srt_time(seconds: f64) -> String {
    let ms = if seconds.is_finite() && seconds > 0.0 {
        (seconds * 1000.0).round() as u64
    } else {
        0
    };
    format!(
        "{:02}:{:02}:{:02},{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// `seconds` as a player shows it: `m:ss`, or `h:mm:ss` from an hour on.
pub fn clock(seconds: f64) -> String {
    let s = if seconds.is_finite() && seconds > 0.0 {
        seconds.floor() as u64
    } else {
        0
    };
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// The cues as an SRT file, numbered from 1. A cue's blank lines would end it early in
/// SRT, so they are dropped.
pub fn to_srt(cues: &[Cue]) -> String {
    let mut out = String::new();
    for (i, cue) in cues.iter().enumerate() {
        out.push_str(&format!(
            "{}\n{} --> {}\n",
            i + 1,
            srt_time(cue.start),
            srt_time(cue.end)
        ));
        for line in cue.text.lines().filter(|l| !l.trim().is_empty()) {
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

/// `text` as the body of a `data:` URL: everything but unreserved characters
/// percent-encoded, so the URL carries the text exactly and cannot end the attribute.
pub fn data_url(media_type: &str, text: &str) -> String {
    let mut out = format!("data:{media_type},");
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_srt() {
        assert_eq!(srt_time(0.0), "00:00:00,000");
        assert_eq!(srt_time(3723.456), "01:02:03,456");
        assert_eq!(srt_time(f64::NAN), "00:00:00,000");
        assert_eq!(clock(59.9), "0:59");
        assert_eq!(clock(699.0), "11:39");
        assert_eq!(clock(3723.0), "1:02:03");
        let cues = [
            Cue {
                start: 1.0,
                end: 2.5,
                text: "Hello\n\nworld".into(),
            },
            Cue {
                start: 3.0,
                end: 4.0,
                text: "Bye".into(),
            },
        ];
        assert_eq!(
            to_srt(&cues),
            "1\n00:00:01,000 --> 00:00:02,500\nHello\nworld\n\n2\n00:00:03,000 --> 00:00:04,000\nBye\n\n"
        );
        assert_eq!(
            data_url("text/plain;charset=utf-8", "a \"b\"\né"),
            "data:text/plain;charset=utf-8,a%20%22b%22%0A%C3%A9"
        );
    }
}
