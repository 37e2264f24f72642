//! `<video>`: Open edX's video block turned into the `video` plugin's fields
//! ([`video_fields`]), as Open edX's `VideoBlock` reads its XML.
//!
//! - Sources: `html5_sources` (a JSON list) and `<source src>` children, in that order,
//!   without repeats; `source` (the download URL); YouTube ids from `youtube`
//!   (`"1.00:id,1.50:id2"`) and `youtube_id_1_0`, `_0_75`, `_1_25`, `_1_5` (which win).
//! - Times: `start_time`/`end_time` as `HH:MM:SS` (or seconds), in seconds.
//! - Downloads: `download_video`, `download_track`; as in Open edX's import, a video with a
//!   `source` and no `download_video` may be downloaded, and one with a `track` and no
//!   `download_track` too. `track` and `handout` from the attribute or the child element.
//! - Transcripts: `transcripts` (JSON, language to file), `<transcript language src>`
//!   children, and `sub` (the English SJSON `static/subs_<sub>.srt.sjson`), each read from
//!   the export's `static/` within the import's budget and parsed into cues at import
//!   (`transcripts`). A transcript the export lacks or that does not parse is kept with
//!   the reason, for staff, and named in the import's warnings: never an error.
//! - `edx_video_id` is kept: VAL (Open edX's video service) does not exist here, which
//!   the block tells staff.
//!
//! Everything here is an author's upload: names of files are checked like ids (no path
//! separators), lists are bounded, and what does not parse is a warning naming the file
//! and line.

mod transcripts;

use std::collections::BTreeMap;

use anyhow::Result;
use roxmltree::{Document, Node};
use serde_json::{Map, Value, json};

use super::source::Source;
use super::xml::at;
use crate::ids::check_id;
use transcripts::{Cue, MAX_CUES, parse_transcript};

/// Most HTML5 sources and transcripts one video keeps (Open edX offers a handful).
const MAX_SOURCES: usize = 20;
const MAX_TRANSCRIPTS: usize = 50;

/// Open edX's YouTube speeds: the `youtube` attribute's spelling and the field each fills.
const SPEEDS: &[(&[&str], &str)] = &[
    (&["1.0", "1.00"], "youtube_id_1_0"),
    (&["0.75"], "youtube_id_0_75"),
    (&["1.25"], "youtube_id_1_25"),
    (&["1.5", "1.50"], "youtube_id_1_5"),
];

/// The `video` plugin's fields for a `<video>` element, and the import warnings it gave.
/// `attr` reads an attribute from the element or the pointer that led to it.
pub(super) fn video_fields(
    src: &Source,
    doc: &Document,
    file: &str,
    node: Node,
    display_name: Option<String>,
    attr: &dyn Fn(&str) -> Option<String>,
) -> Result<(Value, Vec<String>)> {
    let here = at(doc, file, node);
    // For staff (the block shows them) and, with the place, the import's warnings.
    let mut notes: Vec<String> = Vec::new();
    // Transcript problems: the block shows each transcript's own status.
    let mut transcript_notes: Vec<String> = Vec::new();
    let present = |name: &str| attr(name).filter(|v| !v.trim().is_empty());
    let child_src = |tag: &str| -> Vec<String> {
        node.children()
            .filter(|c| c.has_tag_name(tag))
            .filter_map(|c| c.attribute("src"))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };

    let mut fields = Map::new();
    fields.insert("display_name".into(), json!(display_name));

    // Sources: the attribute's list, then the children's, each once.
    let mut sources: Vec<String> = Vec::new();
    if let Some(text) = present("html5_sources") {
        match serde_json::from_str::<Vec<String>>(&text) {
            Ok(list) => sources.extend(list.into_iter().map(|s| s.trim().to_string())),
            Err(e) => notes.push(format!(
                "html5_sources {:?} is not a JSON list of URLs ({e}); only <source> children are used",
                clip(&text)
            )),
        }
    }
    sources.extend(child_src("source"));
    let mut seen = std::collections::HashSet::new();
    sources.retain(|s| !s.is_empty() && seen.insert(s.clone()));
    if sources.len() > MAX_SOURCES {
        notes.push(format!(
            "{} HTML5 sources; the first {MAX_SOURCES} are kept",
            sources.len()
        ));
        sources.truncate(MAX_SOURCES);
    }
    fields.insert("html5_sources".into(), json!(sources));
    if let Some(source) = present("source") {
        fields.insert("source".into(), json!(source.trim()));
    }

    // YouTube: the combined attribute, then the per-speed ones, which win.
    if let Some(text) = present("youtube") {
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((speed, id)) = pair.split_once(':') else {
                notes.push(format!(
                    "youtube entry {:?} is not speed:id; ignored",
                    clip(pair)
                ));
                continue;
            };
            match SPEEDS
                .iter()
                .find(|(names, _)| names.contains(&speed.trim()))
            {
                Some((_, field)) if !id.trim().is_empty() => {
                    fields.insert((*field).into(), json!(id.trim()));
                }
                Some(_) => {}
                None => notes.push(format!(
                    "youtube speed {:?} is not one Open edX has (0.75, 1.00, 1.25, 1.50); ignored",
                    clip(speed)
                )),
            }
        }
    }
    for (_, field) in SPEEDS {
        if let Some(id) = present(field) {
            fields.insert((*field).into(), json!(id.trim()));
        }
    }

    for name in ["start_time", "end_time"] {
        if let Some(text) = present(name) {
            match seconds(&text) {
                Some(s) => {
                    fields.insert(name.into(), json!(s));
                }
                None => notes.push(format!(
                    "{name} {:?} is not a time (HH:MM:SS or seconds); the video plays from its start to its end",
                    clip(&text)
                )),
            }
        }
    }

    let track = present("track").or_else(|| child_src("track").into_iter().next());
    let handout = present("handout").or_else(|| child_src("handout").into_iter().next());
    let flag = |name: &str, implied: bool| match attr(name) {
        Some(v) => v.trim().eq_ignore_ascii_case("true"),
        None => implied,
    };
    fields.insert(
        "download_video".into(),
        json!(flag("download_video", fields.contains_key("source"))),
    );
    fields.insert(
        "download_track".into(),
        json!(flag("download_track", track.is_some())),
    );
    fields.insert("track".into(), json!(track));
    fields.insert("handout".into(), json!(handout));
    fields.insert("edx_video_id".into(), json!(present("edx_video_id")));

    // Transcripts: language -> file, from the attribute, the children and `sub`.
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    if let Some(text) = present("transcripts") {
        match serde_json::from_str::<BTreeMap<String, String>>(&text) {
            Ok(map) => files.extend(map),
            Err(e) => notes.push(format!(
                "transcripts {:?} is not a JSON map of language to file ({e}); ignored",
                clip(&text)
            )),
        }
    }
    for t in node.children().filter(|c| c.has_tag_name("transcript")) {
        if let (Some(lang), Some(file)) = (t.attribute("language"), t.attribute("src")) {
            files
                .entry(lang.trim().to_string())
                .or_insert_with(|| file.trim().to_string());
        }
    }
    if let Some(sub) = present("sub") {
        files
            .entry("en".into())
            .or_insert_with(|| format!("subs_{}.srt.sjson", sub.trim()));
    }
    files.retain(|lang, file| !lang.is_empty() && !file.is_empty());
    if files.len() > MAX_TRANSCRIPTS {
        notes.push(format!(
            "{} transcripts; the first {MAX_TRANSCRIPTS} languages are kept",
            files.len()
        ));
    }
    let mut transcripts = Map::new();
    for (lang, name) in files.into_iter().take(MAX_TRANSCRIPTS) {
        let read = read_transcript(src, &name)?;
        let entry = match read {
            Ok((cues, note)) => {
                if let Some(note) = note {
                    notes.push(format!("transcript {lang}: {note}"));
                }
                json!({ "file": name, "cues": cues.iter().map(Cue::to_json).collect::<Vec<_>>() })
            }
            Err(why) => {
                transcript_notes.push(format!("transcript {lang} ({name}): {why}"));
                json!({ "file": name, "missing": why })
            }
        };
        transcripts.insert(lang, entry);
    }
    fields.insert("transcripts".into(), Value::Object(transcripts));
    let warnings = notes
        .iter()
        .chain(&transcript_notes)
        .map(|n| format!("{here}: video: {n}"))
        .collect();
    if !notes.is_empty() {
        fields.insert("notes".into(), json!(notes));
    }
    Ok((Value::Object(fields), warnings))
}

/// A transcript's cues, and a note on cues left out.
type Read = (Vec<Cue>, Option<String>);

/// One transcript's cues (and a note on cues left out), or why there are none. An
/// import limit reached while reading it (bytes, the deadline) fails the import.
fn read_transcript(src: &Source, name: &str) -> Result<std::result::Result<Read, String>> {
    if let Err(e) = check_id("transcript file name", name) {
        return Ok(Err(format!("{e}; only files directly in static/ are read")));
    }
    if name == "." || name == ".." {
        return Ok(Err("it is not a file name".into()));
    }
    let path = format!("static/{name}");
    let text = match src.read(&path) {
        None => return Ok(Err(format!("{path} is not in the export"))),
        Some(Err(e)) if is_import_limit(&e) => return Err(e),
        Some(Err(e)) => return Ok(Err(format!("{e:#}"))),
        Some(Ok(text)) => text,
    };
    src.budget()
        .check_deadline(&format!("reading the transcript {path}"))?;
    Ok(match parse_transcript(name, &text) {
        Ok(parsed) => {
            let note = parsed.note(&path);
            debug_assert!(parsed.cues.len() <= MAX_CUES);
            Ok((parsed.cues, note))
        }
        Err(why) => Err(format!("{path} does not parse: {why}")),
    })
}

/// Whether reading failed on a limit of the whole import (its messages name the flag),
/// which must stop the import rather than leave one transcript out.
fn is_import_limit(e: &anyhow::Error) -> bool {
    let text = format!("{e:#}");
    text.contains("(--max-import") || text.contains("(--load-deadline")
}

/// A time as Open edX writes it, `HH:MM:SS` (also `MM:SS`, with fractions), or plain
/// seconds, as seconds; `None` when it is not one (or is past a day).
fn seconds(text: &str) -> Option<f64> {
    let text = text.trim();
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() > 3 {
        return None;
    }
    let mut total = 0.0;
    for part in &parts {
        let part = part.trim();
        if part.is_empty()
            || part.len() > 12
            || !part.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        {
            return None;
        }
        total = total * 60.0 + part.parse::<f64>().ok()?;
    }
    (total.is_finite() && total <= 24.0 * 3600.0).then_some(total)
}

/// At most 80 characters of an author's value, for a warning.
fn clip(text: &str) -> String {
    let mut out: String = text.chars().take(80).collect();
    if out.len() < text.len() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::seconds;

    #[test]
    fn times_as_open_edx_writes_them() {
        assert_eq!(seconds("00:11:39"), Some(699.0));
        assert_eq!(seconds("00:12:57"), Some(777.0));
        assert_eq!(seconds("1:02:03.5"), Some(3723.5));
        assert_eq!(seconds("90"), Some(90.0));
        assert_eq!(seconds("00:00:00"), Some(0.0));
        for bad in ["", "a:b", "1:2:3:4", "-5", "1e9", "99:00:00", "1::2"] {
            assert_eq!(seconds(bad), None, "{bad:?}");
        }
    }
}
