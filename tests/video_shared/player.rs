//! What a page must hold for an imported video to play, shared by `video.rs` (the HTML
//! the host renders) and `video_browser.rs` (the DOM Chromium built): included by path
//! in both, as neither test needs the rest of the other.

use xbhost::model::BlockDef;

/// The player a video's fields call for.
#[derive(Debug, PartialEq)]
pub enum Player {
    /// A `<video>` with a `<source>` of each HTML5 source, in order.
    Html5(Vec<String>),
    /// YouTube's privacy-enhanced embed: the iframe URL starts with this.
    YouTube(String),
}

/// The player `video` must have on a page.
pub fn expected_player(video: &BlockDef) -> Player {
    let sources: Vec<String> = video.fields["html5_sources"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: no html5_sources", video.usage_id))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    if !sources.is_empty() {
        return Player::Html5(sources);
    }
    let id = video.fields["youtube_id_1_0"]
        .as_str()
        .unwrap_or_else(|| panic!("{}: neither HTML5 sources nor a YouTube id", video.usage_id));
    Player::YouTube(format!("https://www.youtube-nocookie.com/embed/{id}?"))
}
