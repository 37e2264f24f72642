//! `video`: Open edX's video block.
//!
//! - render: an HTML5 `<video controls>` with its `<source>`s (and the `#t=start,end`
//!   media fragment of `start_time`/`end_time`) when the video has HTML5 sources, else
//!   YouTube's privacy-enhanced embed (`www.youtube-nocookie.com/embed/<id>?start=&end=`);
//!   the transcript beside it (cues with their times); download links for the video and
//!   the transcripts when the author allows them. Staff and authors also see every source,
//!   each transcript's status (present, or missing from the export and why) and the
//!   validation messages.
//! - handler `event` (the page script posts the `<video data-handler="event">`'s media
//!   events, and those the YouTube embed's `<iframe data-handler="event">` reports to the
//!   page, `enablejsapi=1`): `play_video`, `pause_video`, `seek_video`, `stop_video`, `complete_video`,
//!   checked and published with Open edX's fields (see `events.rs`).
//! - handler `transcript` with `{"language": "en"}`: `{"language", "srt"}`, the cues as
//!   an SRT file.
//!
//! The fields are what the OLX import wrote (`host/src/olx/video.rs`): transcripts are
//! read from the export at import and carried as cues, so rendering reads nothing else.

mod events;
mod fields;
mod render;
mod srt;

use serde::Deserialize;
use serde_json::{Value, json};
use xbhost_sdk::html::escape;
use xbhost_sdk::{Block, BlockError, BlockResult, Context, Fragment, ValidationMessage, View};

pub use events::{COMPLETE_SHARE, EVENTS, State};
pub use fields::{Cue, Fields, Transcript};

pub struct Video;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TranscriptRequest {
    language: String,
}

impl Block for Video {
    type Fields = Fields;

    fn render(cx: &Context<'_, Fields>, view: View) -> BlockResult<Fragment> {
        let f = cx.fields();
        let title = f.display_name.clone().unwrap_or_else(|| "Video".into());
        let mut html = format!(
            "<div class=\"video\" data-code=\"{}\"><h3 class=\"video-title\">{}</h3><div class=\"video-body\"><div class=\"video-main\">{}</div>{}</div>{}",
            escape(f.code()),
            escape(&title),
            render::player(f, &title),
            render::transcript(f),
            render::downloads(f)
        );
        if view != View::Student {
            html.push_str(&render::staff_panel(f, &Self::validate(cx)));
        }
        html.push_str("</div>");
        Ok(Fragment {
            html,
            title: f.display_name.clone(),
            icon: Some("video".into()),
            ..Fragment::default()
        })
    }

    fn validate(cx: &Context<'_, Fields>) -> Vec<ValidationMessage> {
        let f = cx.fields();
        let mut out = Vec::new();
        let playable = f.playable_sources();
        if playable.is_empty() && f.embed_id().is_none() {
            out.push(ValidationMessage::error(
                "The video has no source: no HTML5 source and no YouTube id this site can play.",
            ));
        }
        if f.window().is_none() {
            out.push(ValidationMessage::error(format!(
                "start_time {} s and end_time {} s do not make a playback window (times from 0 to 24 hours, the end after the start, or end 0 for the end of the video); the whole video plays.",
                f.start_time, f.end_time
            )));
        }
        for src in &f.html5_sources {
            match fields::safe_url(src) {
                None => out.push(ValidationMessage::warning(format!(
                    "HTML5 source {src:?} is not an https, http or local URL: it is not played."
                ))),
                Some(u) if !fields::is_absolute(u) => out.push(ValidationMessage::warning(format!(
                    "HTML5 source {u:?} is a path on this site, which does not serve the export's files: it plays only if something else serves it."
                ))),
                Some(u) if !u.to_ascii_lowercase().starts_with("https://") => {
                    out.push(ValidationMessage::warning(format!(
                        "HTML5 source {u:?} is not https: the page's Content-Security-Policy (media-src 'self' https:) blocks it."
                    )))
                }
                Some(_) => {}
            }
        }
        for (speed, id) in f.youtube() {
            if fields::youtube_id(id).is_none() {
                out.push(ValidationMessage::warning(format!(
                    "YouTube id {id:?} (speed {speed}) is not a YouTube id: it is not embedded."
                )));
            }
        }
        for (lang, t) in &f.transcripts {
            if !fields::language_code(lang) {
                out.push(ValidationMessage::warning(format!(
                    "Transcript language {lang:?} is not a language code: the transcript is not shown."
                )));
            } else if let Some(why) = &t.missing {
                out.push(ValidationMessage::warning(format!(
                    "Transcript {lang} ({}) is missing: {why}. Learners see the video without it.",
                    t.file
                )));
            }
        }
        if let Some(id) = f.edx_video_id.as_deref().filter(|s| !s.trim().is_empty()) {
            out.push(ValidationMessage::info(format!(
                "edx_video_id {id:?} names the video in Open edX's Video Abstraction Layer (VAL), which this site does not have: only the sources and transcripts in the export are used."
            )));
        }
        for note in &f.notes {
            out.push(ValidationMessage::warning(format!("Import: {note}.")));
        }
        for (what, url) in [("track", &f.track), ("handout", &f.handout)] {
            if let Some(u) = url.as_deref().filter(|u| !u.trim().is_empty())
                && !fields::safe_url(u).is_some_and(fields::is_absolute)
            {
                out.push(ValidationMessage::info(format!(
                    "The {what} {u:?} is not a web address (this site does not serve the export's static files): learners get no link to it."
                )));
            }
        }
        out
    }

    fn handle(cx: &Context<'_, Fields>, name: &str, payload: Value) -> BlockResult<Value> {
        match name {
            render::EVENT_HANDLER => events::handle_event(cx, payload),
            "transcript" => {
                let req: TranscriptRequest = serde_json::from_value(payload).map_err(|e| {
                    BlockError::new(format!("transcript expects {{\"language\": code}}: {e}"))
                })?;
                let f = cx.fields();
                let t = f
                    .transcripts
                    .get(&req.language)
                    .filter(|t| !t.cues.is_empty())
                    .ok_or_else(|| {
                        let have: Vec<&str> = f
                            .transcripts
                            .iter()
                            .filter(|(_, t)| !t.cues.is_empty())
                            .map(|(l, _)| l.as_str())
                            .collect();
                        BlockError::new(format!(
                            "no transcript in language {:?} (this video has {have:?})",
                            req.language.chars().take(16).collect::<String>()
                        ))
                    })?;
                Ok(json!({ "language": req.language, "srt": srt::to_srt(&t.cues) }))
            }
            other => Err(BlockError::new(format!(
                "video has no handler {:?} (event, transcript)",
                other.chars().take(64).collect::<String>()
            ))),
        }
    }
}

xbhost_sdk::export_block!(Video);

#[cfg(test)]
mod tests;
