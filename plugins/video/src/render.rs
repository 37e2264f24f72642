//! The video's HTML: the player (an HTML5 `<video>` with its sources, or YouTube's
//! privacy-enhanced embed), the transcript beside it, the downloads a learner may have,
//! and for staff and authors what the block holds (sources, transcript status, notes).
//!
//! Everything from the fields is escaped, and URLs go through [`safe_url`] first.

use xbhost_sdk::html::escape;
use xbhost_sdk::{Severity, ValidationMessage};

use crate::fields::{Fields, is_absolute, language_code, safe_url, youtube_id};
use crate::srt::{clock, data_url, to_srt};

/// The handler the page script posts media events to (`<video data-handler>`).
pub const EVENT_HANDLER: &str = "event";

/// The YouTube host embeds come from (the page's `frame-src` allows it alone).
pub const EMBED_HOST: &str = "https://www.youtube-nocookie.com";

/// Downloads of transcripts are written into the page as `data:` URLs; past this many
/// bytes of HTML the rest are left out (the `transcript` handler still answers them), so
/// the block stays well within the host's HTML limit.
const DOWNLOAD_BUDGET: usize = 512 << 10;

/// The `#t=start,end` media fragment of the playback window, if it has one.
fn fragment(f: &Fields) -> Option<String> {
    let (start, end) = f.window()?;
    match end {
        Some(end) => Some(format!("#t={start},{end}")),
        None if start > 0.0 => Some(format!("#t={start}")),
        None => None,
    }
}

/// The player: HTML5 when there are sources a page may load, else the YouTube embed, else
/// a note that the video cannot play here.
pub fn player(f: &Fields, title: &str) -> String {
    let sources = f.playable_sources();
    if !sources.is_empty() {
        let frag = fragment(f).unwrap_or_default();
        let mut html = format!(
            "<video class=\"video-player\" controls preload=\"metadata\" data-handler=\"{EVENT_HANDLER}\" \
             data-start=\"{}\" data-end=\"{}\" aria-label=\"{}\">",
            f.window().map_or(0.0, |w| w.0),
            f.window().and_then(|w| w.1).unwrap_or(0.0),
            escape(title)
        );
        for src in sources {
            // A source that already has a fragment keeps its own.
            let at = if src.contains('#') { "" } else { frag.as_str() };
            html.push_str(&format!(
                "<source src=\"{}{at}\"{}>",
                escape(src),
                media_type(src)
                    .map(|t| format!(" type=\"{t}\""))
                    .unwrap_or_default()
            ));
        }
        html.push_str("Your browser cannot play this video.</video>");
        return html;
    }
    if let Some(id) = f.embed_id() {
        // `enablejsapi=1`: the player reports its state to the page (postMessage), which
        // the page script turns into this block's video events, as for `<video>`.
        let mut query = vec!["rel=0".to_string(), "enablejsapi=1".to_string()];
        if let Some((start, end)) = f.window() {
            if start > 0.0 {
                query.push(format!("start={}", start.floor()));
            }
            if let Some(end) = end {
                query.push(format!("end={}", end.ceil()));
            }
        }
        return format!(
            "<iframe class=\"video-player youtube\" src=\"{EMBED_HOST}/embed/{id}?{}\" title=\"{}\" \
             data-handler=\"{EVENT_HANDLER}\" data-start=\"{}\" data-end=\"{}\" width=\"640\" height=\"360\" allow=\"encrypted-media; picture-in-picture; fullscreen\" \
             allowfullscreen referrerpolicy=\"strict-origin-when-cross-origin\" loading=\"lazy\"></iframe>",
            escape(&query.join("&")),
            escape(title),
            f.window().map_or(0.0, |w| w.0),
            f.window().and_then(|w| w.1).unwrap_or(0.0),
        );
    }
    "<p class=\"video-unavailable\">This video has no source this site can play.</p>".into()
}

/// The media type a source's extension names, for the browser to skip what it cannot play.
fn media_type(src: &str) -> Option<&'static str> {
    let path = src.split(['?', '#']).next()?.to_ascii_lowercase();
    let ext = path.rsplit('.').next()?;
    Some(match ext {
        "mp4" | "m4v" => "video/mp4",
        "webm" => "video/webm",
        "ogv" | "ogg" => "video/ogg",
        _ => return None,
    })
}

/// The transcript beside the player: its cues with their start times.
pub fn transcript(f: &Fields) -> String {
    let Some((lang, t)) = f.shown_transcript() else {
        return String::new();
    };
    let mut html = format!(
        "<section class=\"video-transcript\" lang=\"{lang}\"><h4>Transcript ({lang})</h4><ol class=\"transcript-cues\">"
    );
    for cue in &t.cues {
        html.push_str(&format!(
            "<li data-start=\"{}\" data-end=\"{}\"><span class=\"cue-time\">{}</span> {}</li>",
            cue.start,
            cue.end,
            clock(cue.start),
            escape(&cue.text).replace('\n', "<br>")
        ));
    }
    html.push_str("</ol></section>");
    html
}

/// Download links a learner may use: the video, the transcripts as SRT (when allowed and
/// present), the author's transcript file and handout when they are on the web.
pub fn downloads(f: &Fields) -> String {
    let mut links = Vec::new();
    if let Some(url) = f.download_url() {
        links.push(format!(
            "<a class=\"download-video\" href=\"{}\" download>Download video</a>",
            escape(url)
        ));
    }
    if f.download_track {
        let mut spent = 0;
        for (lang, t) in f
            .transcripts
            .iter()
            .filter(|(l, t)| language_code(l) && !t.cues.is_empty())
        {
            let url = data_url("text/plain;charset=utf-8", &to_srt(&t.cues));
            spent += url.len();
            if spent > DOWNLOAD_BUDGET {
                break;
            }
            links.push(format!(
                "<a class=\"download-transcript\" lang=\"{lang}\" href=\"{}\" download=\"transcript-{lang}.srt\">Download transcript ({lang}, .srt)</a>",
                escape(&url)
            ));
        }
        if let Some(track) = f
            .track
            .as_deref()
            .and_then(safe_url)
            .filter(|u| is_absolute(u))
        {
            links.push(format!(
                "<a class=\"download-track\" href=\"{}\">Download transcript file</a>",
                escape(track)
            ));
        }
    }
    if let Some(handout) = f
        .handout
        .as_deref()
        .and_then(safe_url)
        .filter(|u| is_absolute(u))
    {
        links.push(format!(
            "<a class=\"download-handout\" href=\"{}\">Download handout</a>",
            escape(handout)
        ));
    }
    if links.is_empty() {
        return String::new();
    }
    format!(
        "<ul class=\"video-downloads\">{}</ul>",
        links
            .iter()
            .map(|l| format!("<li>{l}</li>"))
            .collect::<String>()
    )
}

/// What staff and authors see under the player: every source with whether it plays here,
/// each transcript's status, and the notes.
pub fn staff_panel(f: &Fields, messages: &[ValidationMessage]) -> String {
    let mut html = String::from(
        "<details class=\"video-staff\" open><summary>Video sources and transcripts (staff)</summary><ul class=\"video-sources\">",
    );
    for src in &f.html5_sources {
        let plays = safe_url(src).is_some();
        html.push_str(&format!(
            "<li class=\"source html5{}\">HTML5: {}{}</li>",
            if plays { "" } else { " refused" },
            escape(src),
            if plays {
                ""
            } else {
                " (not played: not an https, http or local URL)"
            }
        ));
    }
    for (speed, id) in f.youtube() {
        let ok = youtube_id(id).is_some();
        html.push_str(&format!(
            "<li class=\"source youtube{}\">YouTube {speed}: {}{}</li>",
            if ok { "" } else { " refused" },
            escape(id),
            if ok { "" } else { " (not a YouTube id)" }
        ));
    }
    if let Some(src) = &f.source {
        html.push_str(&format!(
            "<li class=\"source download\">Download URL: {}</li>",
            escape(src)
        ));
    }
    html.push_str("</ul><ul class=\"transcript-status\">");
    if f.transcripts.is_empty() {
        html.push_str("<li class=\"none\">No transcripts.</li>");
    }
    for (lang, t) in &f.transcripts {
        let (class, status) = match &t.missing {
            Some(why) => ("missing", format!("missing: {why}")),
            None if t.cues.is_empty() => ("missing", "no cues".to_string()),
            None => ("present", format!("{} cues", t.cues.len())),
        };
        html.push_str(&format!(
            "<li class=\"{class}\" data-language=\"{}\">{} ({}): {}</li>",
            escape(lang),
            escape(lang),
            escape(&t.file),
            escape(&status)
        ));
    }
    html.push_str("</ul>");
    if !messages.is_empty() {
        html.push_str("<ul class=\"validation\">");
        for m in messages {
            let class = match m.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Info => "info",
            };
            html.push_str(&format!("<li class=\"{class}\">{}</li>", escape(&m.text)));
        }
        html.push_str("</ul>");
    }
    html.push_str("</details>");
    html
}
