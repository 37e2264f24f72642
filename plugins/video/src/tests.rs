//! The video block run natively against `TestHost`: each kind of source, the playback
//! window, downloads, staff and author views, and the checks on reported events.

use serde_json::{Value, json};
use xbhost_sdk::testing::TestHost;
use xbhost_sdk::{Severity, View};

use super::Video;

fn video(fields: Value) -> TestHost {
    TestHost::new("video", "v1").fields(fields)
}

fn html(host: &TestHost, view: View) -> String {
    host.render::<Video>(view).unwrap().html
}

fn cues() -> Value {
    json!([
        {"start": 0.5, "end": 2.0, "text": "Hello <b>learners</b>"},
        {"start": 2.0, "end": 4.25, "text": "Second\nline"}
    ])
}

#[test]
fn html5_sources_play_in_a_video_element_with_the_time_window() {
    let host = video(json!({
        "display_name": "Jelly \"fish\"",
        "html5_sources": ["https://cdn.example.org/j.mp4", "https://cdn.example.org/j.webm", "javascript:alert(1)"],
        "youtube_id_1_0": "abcdefghijk",
        "start_time": 10.0,
        "end_time": 70.5
    }));
    let page = html(&host, View::Student);
    assert!(
        page.contains("<video class=\"video-player\" controls"),
        "{page}"
    );
    assert!(page.contains("data-handler=\"event\""), "{page}");
    assert!(
        page.contains(
            "<source src=\"https://cdn.example.org/j.mp4#t=10,70.5\" type=\"video/mp4\">"
        )
    );
    assert!(
        page.contains(
            "<source src=\"https://cdn.example.org/j.webm#t=10,70.5\" type=\"video/webm\">"
        )
    );
    assert!(!page.contains("javascript:"), "{page}");
    assert!(
        !page.contains("<iframe"),
        "HTML5 sources win over YouTube: {page}"
    );
    assert!(page.contains("Jelly &quot;fish&quot;"));
    assert!(page.contains("data-code=\"html5\""));
    let fragment = host.render::<Video>(View::Student).unwrap();
    assert_eq!(fragment.icon.as_deref(), Some("video"));
}

#[test]
fn youtube_only_videos_embed_the_privacy_enhanced_player() {
    let host = video(json!({
        "youtube_id_1_0": "-50NdPawLVY",
        "youtube_id_1_5": "fastfastfas",
        "start_time": 699.0,
        "end_time": 777.2
    }));
    let page = html(&host, View::Student);
    assert!(
        page.contains(
            "src=\"https://www.youtube-nocookie.com/embed/-50NdPawLVY?rel=0&amp;enablejsapi=1&amp;start=699&amp;end=778\""
        ),
        "{page}"
    );
    // The page script reports the embedded player's events to the `event` handler, over
    // the authored window.
    assert!(
        page.contains("data-handler=\"event\" data-start=\"699\" data-end=\"777.2\""),
        "{page}"
    );
    assert!(!page.contains("<video"), "{page}");
    assert!(page.contains("data-code=\"-50NdPawLVY\""));
    // A bad id is never embedded; the next speed's is.
    let bad = video(json!({"youtube_id_1_0": "x\" onload=\"y", "youtube_id_0_75": "slowslowslo"}));
    let page = html(&bad, View::Student);
    assert!(
        page.contains("/embed/slowslowslo?rel=0&amp;enablejsapi=1\""),
        "{page}"
    );
    assert!(!page.contains("onload"), "{page}");
}

#[test]
fn a_video_without_a_playable_source_says_so_and_authors_get_an_error() {
    let host =
        video(json!({"html5_sources": ["ftp://x/y.mp4"], "start_time": 30.0, "end_time": 10.0}));
    assert!(html(&host, View::Student).contains("video-unavailable"));
    let messages = host.validate::<Video>();
    let errors: Vec<&str> = messages
        .iter()
        .filter(|m| m.severity == Severity::Error)
        .map(|m| m.text.as_str())
        .collect();
    assert_eq!(errors.len(), 2, "{messages:?}");
    assert!(errors[0].contains("no source"), "{errors:?}");
    assert!(
        errors[1].contains("start_time 30 s and end_time 10 s"),
        "{errors:?}"
    );
    let author = html(&host, View::Author);
    assert!(author.contains("class=\"validation\""), "{author}");
    assert!(author.contains("do not make a playback window"));
    assert!(
        author.contains("HTML5: ftp://x/y.mp4 (not played"),
        "{author}"
    );
    // Bad times are ignored for learners: no fragment.
    let bad_times =
        video(json!({"html5_sources": ["https://a/b.mp4"], "start_time": 30.0, "end_time": 10.0}));
    assert!(html(&bad_times, View::Student).contains("<source src=\"https://a/b.mp4\""));
}

#[test]
fn the_transcript_is_beside_the_player_and_downloads_follow_the_flags() {
    let fields = json!({
        "html5_sources": ["https://a/b.mp4"],
        "source": "https://a/b-download.mp4",
        "transcripts": {
            "en": {"file": "en.srt", "cues": cues()},
            "es": {"file": "es.srt", "missing": "static/es.srt is not in the export"}
        },
        "track": "/static/t.pdf",
        "handout": "https://a/handout.pdf"
    });
    let host = video(fields.clone());
    let page = html(&host, View::Student);
    assert!(
        page.contains("<section class=\"video-transcript\" lang=\"en\">"),
        "{page}"
    );
    assert!(page.contains("<li data-start=\"0.5\" data-end=\"2\"><span class=\"cue-time\">0:00</span> Hello &lt;b&gt;learners&lt;/b&gt;</li>"), "{page}");
    assert!(page.contains("Second<br>line"));
    assert!(
        !page.contains("download-video"),
        "download_video is off: {page}"
    );
    assert!(
        !page.contains("download-transcript"),
        "download_track is off"
    );
    assert!(page.contains("href=\"https://a/handout.pdf\""));
    // Learners never see the missing transcript's note.
    assert!(!page.contains("not in the export"), "{page}");

    let mut allowed = fields;
    allowed["download_video"] = json!(true);
    allowed["download_track"] = json!(true);
    let page = html(&video(allowed.clone()), View::Student);
    assert!(
        page.contains("<a class=\"download-video\" href=\"https://a/b-download.mp4\" download>")
    );
    let srt = "1\n00:00:00,500 --> 00:00:02,000\nHello <b>learners</b>\n\n2\n00:00:02,000 --> 00:00:04,250\nSecond\nline\n\n";
    let expected = crate::srt::data_url("text/plain;charset=utf-8", srt);
    assert!(
        page.contains(&format!(
            "href=\"{expected}\" download=\"transcript-en.srt\""
        )),
        "{page}"
    );
    assert!(
        !page.contains("lang=\"es\" href"),
        "no link for a missing transcript"
    );
    assert!(
        !page.contains("/static/t.pdf"),
        "a local track path is not linked: {page}"
    );
    // Without `source`, the download is the first HTML5 source.
    allowed.as_object_mut().unwrap().remove("source");
    assert!(
        html(&video(allowed.clone()), View::Student).contains("href=\"https://a/b.mp4\" download>")
    );

    // Staff see each transcript's status.
    let staff = html(&video(allowed), View::Staff);
    assert!(
        staff.contains("<li class=\"present\" data-language=\"en\">en (en.srt): 2 cues</li>"),
        "{staff}"
    );
    assert!(staff.contains("<li class=\"missing\" data-language=\"es\">es (es.srt): missing: static/es.srt is not in the export</li>"), "{staff}");
}

#[test]
fn staff_learn_that_val_is_not_available() {
    let host = video(json!({"youtube_id_1_0": "AOUEsgFrYeg", "edx_video_id": "48c991fb"}));
    let staff = html(&host, View::Staff);
    assert!(staff.contains("Video Abstraction Layer"), "{staff}");
    assert!(staff.contains("YouTube 1.00: AOUEsgFrYeg"));
    assert!(!html(&host, View::Student).contains("Video Abstraction Layer"));
}

#[test]
fn the_transcript_handler_answers_srt_or_names_what_exists() {
    let host = video(
        json!({"youtube_id_1_0": "abc", "transcripts": {"en": {"file": "a.srt", "cues": cues()}}}),
    );
    let answer = host
        .handle::<Video>("transcript", json!({"language": "en"}))
        .unwrap();
    assert!(
        answer["srt"]
            .as_str()
            .unwrap()
            .starts_with("1\n00:00:00,500 --> 00:00:02,000\n")
    );
    let err = host
        .handle::<Video>("transcript", json!({"language": "fr"}))
        .unwrap_err();
    assert!(
        err.0.contains("\"fr\"") && err.0.contains("[\"en\"]"),
        "{err}"
    );
    assert!(host.handle::<Video>("nope", json!({})).is_err());
}

#[test]
fn events_are_published_with_open_edx_fields() {
    let host = video(json!({"youtube_id_1_0": "ytid", "start_time": 10.0, "end_time": 100.0}));
    let ok = |p: Value| host.handle::<Video>("event", p).unwrap();
    ok(json!({"event": "play_video", "currentTime": 12.5}));
    ok(json!({"event": "pause_video", "currentTime": 20.0, "duration": 200.0}));
    ok(json!({"event": "seek_video", "old_time": 20.0, "new_time": 50.0, "type": "onSlideSeek"}));
    let events = host.events();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0].0, "play_video");
    assert_eq!(
        events[0].1,
        json!({"id": "v1", "code": "ytid", "currentTime": 12.5})
    );
    assert_eq!(
        events[1].1,
        json!({"id": "v1", "code": "ytid", "currentTime": 20.0, "duration": 200.0})
    );
    assert_eq!(
        events[2].1,
        json!({"id": "v1", "code": "ytid", "old_time": 20.0, "new_time": 50.0, "type": "onSlideSeek"})
    );
}

#[test]
fn bad_event_payloads_are_refused_and_publish_nothing() {
    let host = video(json!({"html5_sources": ["https://a/b.mp4"], "end_time": 60.0}));
    let err = |p: Value| host.handle::<Video>("event", p).unwrap_err().0;
    assert!(err(json!({"event": "problem_check", "currentTime": 1})).contains("not a video event"));
    assert!(err(json!({"event": "play_video"})).contains("needs currentTime"));
    assert!(
        err(json!({"event": "play_video", "currentTime": -1})).contains("not a time in the video")
    );
    assert!(err(json!({"event": "play_video", "currentTime": 62})).contains("0 to 61"));
    assert!(err(json!({"event": "play_video", "currentTime": "5"})).contains("expects"));
    assert!(
        err(json!({"event": "play_video", "currentTime": 1, "user": "eve"}))
            .contains("unknown field")
    );
    assert!(
        err(json!({"event": "play_video", "currentTime": 1, "old_time": 0}))
            .contains("not old_time")
    );
    assert!(err(json!({"event": "seek_video", "currentTime": 1})).contains("not currentTime"));
    assert!(
        err(json!({"event": "seek_video", "old_time": 1, "new_time": 2, "type": "x"}))
            .contains("type")
    );
    assert!(
        err(json!({"event": "pause_video", "currentTime": 1, "duration": 1e300}))
            .contains("duration")
    );
    // The duration the player reports bounds the times too.
    assert!(
        err(json!({"event": "pause_video", "currentTime": 30, "duration": 20})).contains("0 to 21")
    );
    assert!(err(json!([1, 2])).contains("expects"));
    assert!(host.events().is_empty());
    assert!(host.stored_state().is_none());
}

#[test]
fn complete_video_counts_once_and_only_at_95_percent() {
    let host =
        video(json!({"html5_sources": ["https://a/b.mp4"], "start_time": 0.0, "end_time": 100.0}));
    let early = host
        .handle::<Video>(
            "event",
            json!({"event": "complete_video", "currentTime": 50.0}),
        )
        .unwrap_err();
    assert!(early.0.contains("completes at 95 s"), "{early}");
    let done = host
        .handle::<Video>(
            "event",
            json!({"event": "complete_video", "currentTime": 96.0}),
        )
        .unwrap();
    assert_eq!(done["published"], true);
    let again = host
        .handle::<Video>(
            "event",
            json!({"event": "complete_video", "currentTime": 99.0}),
        )
        .unwrap();
    assert_eq!(again["published"], false);
    let events = host.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "complete_video");
    assert_eq!(host.stored_state().as_deref(), Some("{\"completed\":true}"));
}
