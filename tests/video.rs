//! Videos through the real host with the real built `video` plugin: every video of the
//! real Open edX exports imports as `video` and renders its player; a small export built
//! here carries SRT and SJSON transcripts in `static/` (read at import within its budget);
//! the test course's video experiment shows each learner exactly one video and staff all
//! three, marked; video events posted to the handler land in the event log with the
//! learner's experiment membership.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use xbhost::model::BlockDef;
use xbhost::olx::{ImportLimits, ImportOptions};
use xbhost::{User, View};
use xbhost_tests::exports::{SMALL_COURSE, small_course, tgz, write_dir};
use xbhost_tests::olx::{EXPERIMENT, SPLIT_UNIT, TEST_COURSE, olx};
use xbhost_tests::{Fixture, PRODUCT_PLUGINS};

use crate::video_player as player;
use player::{Player, expected_player};

const DEMO_COURSE: &str = "course-v1:OpenedX+DemoX+DemoCourse";
/// The test course's experiment whose three conditions are each a video.
const VIDEO_SPLIT: &str = "ae94e062721248639bd1543e77d9a0bd";

fn fixture() -> Fixture {
    Fixture::with_plugins(PRODUCT_PLUGINS)
}

fn import(f: &Fixture, dir: &std::path::Path) -> xbhost::olx::ImportReport {
    f.host
        .import_course(dir, &ImportOptions::default())
        .unwrap_or_else(|e| panic!("importing {}: {e:#}", dir.display()))
        .0
}

fn videos(f: &Fixture, course: &str) -> Vec<BlockDef> {
    f.host
        .course(course)
        .unwrap()
        .doc
        .blocks
        .iter()
        .filter(|b| b.block_type == "video")
        .cloned()
        .collect()
}

/// Checks the host's HTML holds the player `video` calls for.
fn assert_player(html: &str, video: &BlockDef) {
    match expected_player(video) {
        Player::YouTube(embed) => assert!(
            html.contains(&format!("src=\"{embed}")),
            "{}: no {embed} in {html}",
            video.usage_id
        ),
        Player::Html5(sources) => {
            assert!(
                html.contains("<video class=\"video-player\" controls"),
                "{html}"
            );
            for s in sources {
                assert!(
                    html.contains(&format!("<source src=\"{s}")),
                    "{s} in {html}"
                );
            }
        }
    }
}

#[test]
fn every_video_of_the_real_exports_imports_as_video_and_renders_its_player() {
    let f = fixture();
    for (dir, course, expected) in [
        ("openedx-demo-course", DEMO_COURSE, 11),
        ("openedx-test-course", TEST_COURSE, 3),
    ] {
        let report = import(&f, &olx(dir));
        assert_eq!(report.course_key, course);
        assert_eq!(report.blocks_by_type.get("video"), Some(&expected), "{dir}");
        assert!(
            !report.unsupported.contains_key("video"),
            "{dir}: {:?}",
            report.unsupported
        );
        let videos = videos(&f, course);
        assert_eq!(videos.len(), expected, "{dir}");
        for v in &videos {
            let staff = f.render(course, &v.usage_id, User::staff("staff"), View::Staff);
            assert!(staff.failures.is_empty(), "{:?}", staff.failures);
            assert_player(&staff.html, v);
            assert!(
                staff.html.contains("class=\"video-staff\""),
                "{}",
                staff.html
            );
        }
    }
    // The demo's "Reach" video: its window, downloads and transcripts as authored; the
    // transcript files are not in the export (binaries and static/ were left out), which
    // staff are told and learners never see.
    let reach = videos(&f, DEMO_COURSE)
        .into_iter()
        .find(|v| v.usage_id == "078de40d92a54047b951a2e7a8e2a348")
        .unwrap();
    assert_eq!(reach.fields["start_time"], json!(699.0));
    assert_eq!(reach.fields["end_time"], json!(777.0));
    assert_eq!(reach.fields["download_track"], json!(true));
    assert_eq!(reach.fields["youtube_id_1_0"], json!("AOUEsgFrYeg"));
    assert_eq!(
        reach.fields["transcripts"]["es"]["missing"],
        json!("static/48c991fb-083c-45e1-adad-930d2b11b11e-es.srt is not in the export")
    );
    let learner = f.render(
        DEMO_COURSE,
        &reach.usage_id,
        User::learner("ann"),
        View::Student,
    );
    assert!(
        learner
            .html
            .contains("?rel=0&amp;enablejsapi=1&amp;start=699&amp;end=777\""),
        "{}",
        learner.html
    );
    assert!(!learner.html.contains("not in the export"));
    let staff = f.render(
        DEMO_COURSE,
        &reach.usage_id,
        User::staff("sam"),
        View::Staff,
    );
    assert!(
        staff
            .html
            .contains("<li class=\"missing\" data-language=\"es\">"),
        "{}",
        staff.html
    );
    assert!(staff.html.contains("Video Abstraction Layer"));
    // The Jellyfish video plays its HTML5 source.
    let jelly = videos(&f, DEMO_COURSE)
        .into_iter()
        .find(|v| v.usage_id == "2fe12c0703484743a51fe4612a640563")
        .unwrap();
    assert_eq!(
        jelly.fields["html5_sources"],
        json!(["https://curricume-uploads.s3.amazonaws.com/videos/Jellyfish_720_10s_2MB.mp4"])
    );
}

/// A small course whose unit holds two videos with transcripts in `static/`: SRT through
/// `transcripts` (one file missing) and SJSON through `sub`.
fn transcript_course() -> Vec<(String, Vec<u8>)> {
    let videos = "<video url_name=\"v_srt\" display_name=\"Lecture\" \
         html5_sources=\"[&quot;https://media.example.org/lecture.mp4&quot;]\" \
         start_time=\"00:00:05\" end_time=\"00:01:00\" download_track=\"true\" download_video=\"true\" \
         transcripts=\"{&quot;en&quot;: &quot;lecture-en.srt&quot;, &quot;fr&quot;: &quot;absent-fr.srt&quot;, &quot;de&quot;: &quot;../course.xml&quot;}\">\
         <source src=\"https://media.example.org/lecture.webm\"/></video>\n\
         <video url_name=\"v_sjson\" youtube=\"1.00:abcdefghijk,1.50:fastfastfas\" sub=\"legacy_id\" start_time=\"soon\"/>";
    let mut files = small_course(videos);
    files.push((
        "static/lecture-en.srt".into(),
        b"1\r\n00:00:05,000 --> 00:00:07,500\r\nWelcome to <i>the</i> lecture\r\n\r\n2\r\n00:00:07,500 --> 00:00:09,000\r\nToday: cells\r\n"
            .to_vec(),
    ));
    files.push((
        "static/subs_legacy_id.srt.sjson".into(),
        br#"{"start": [0, 2500], "end": [2500, 4000], "text": ["From SJSON", "second cue"]}"#
            .to_vec(),
    ));
    files
}

#[test]
fn transcripts_from_static_srt_and_sjson_are_read_at_import_and_shown() {
    let export = tempfile::tempdir().unwrap();
    write_dir(export.path(), &transcript_course());
    let f = fixture();
    let report = import(&f, export.path());
    assert_eq!(report.blocks_by_type["video"], 2);
    let videos: BTreeMap<String, Value> = videos(&f, SMALL_COURSE)
        .into_iter()
        .map(|v| (v.usage_id, v.fields))
        .collect();
    let srt = &videos["v_srt"];
    assert_eq!(
        srt["html5_sources"],
        json!([
            "https://media.example.org/lecture.mp4",
            "https://media.example.org/lecture.webm"
        ])
    );
    assert_eq!(
        srt["transcripts"]["en"]["cues"],
        json!([
            {"start": 5.0, "end": 7.5, "text": "Welcome to the lecture"},
            {"start": 7.5, "end": 9.0, "text": "Today: cells"}
        ])
    );
    assert_eq!(
        srt["transcripts"]["fr"]["missing"],
        json!("static/absent-fr.srt is not in the export")
    );
    // A name with a path in it is never read.
    assert!(
        srt["transcripts"]["de"]["missing"]
            .as_str()
            .unwrap()
            .contains("path separator"),
        "{srt}"
    );
    let sjson = &videos["v_sjson"];
    assert_eq!(
        sjson["transcripts"]["en"]["file"],
        json!("subs_legacy_id.srt.sjson")
    );
    assert_eq!(
        sjson["transcripts"]["en"]["cues"][0]["text"],
        json!("From SJSON")
    );
    assert_eq!(sjson["transcripts"]["en"]["cues"][1]["start"], json!(2.5));
    assert_eq!(sjson["youtube_id_1_5"], json!("fastfastfas"));
    assert!(sjson.get("start_time").is_none(), "{sjson}");
    // The import names what it could not use, with the file and line.
    let warnings = report.warnings.join("\n");
    assert!(
        warnings.contains("course/r1.xml:")
            && warnings.contains("static/absent-fr.srt is not in the export"),
        "{warnings}"
    );
    assert!(
        warnings.contains("start_time \"soon\" is not a time"),
        "{warnings}"
    );

    // Learners: the transcript beside the player, the SRT download, the window.
    let page = f.render(SMALL_COURSE, "u1", User::learner("lee"), View::Student);
    assert!(page.failures.is_empty(), "{:?}", page.failures);
    assert!(
        page.html
            .contains("<source src=\"https://media.example.org/lecture.webm#t=5,60\""),
        "{}",
        page.html
    );
    assert!(
        page.html
            .contains("<span class=\"cue-time\">0:05</span> Welcome to the lecture")
    );
    assert!(page.html.contains("From SJSON"));
    assert!(page.html.contains("download=\"transcript-en.srt\""));
    assert!(
        page.html
            .contains("href=\"https://media.example.org/lecture.mp4\" download")
    );
    // Authors see the bad time from the import.
    let author = f.render(SMALL_COURSE, "v_sjson", User::staff("sam"), View::Author);
    assert!(
        author.html.contains("Import: start_time"),
        "{}",
        author.html
    );
    // The transcript handler serves the cues as SRT.
    let answer = f
        .host
        .handle(
            SMALL_COURSE,
            "v_srt",
            &User::learner("lee"),
            "transcript",
            &json!({"language": "en"}),
        )
        .unwrap();
    assert_eq!(
        answer["srt"],
        json!(
            "1\n00:00:05,000 --> 00:00:07,500\nWelcome to the lecture\n\n2\n00:00:07,500 --> 00:00:09,000\nToday: cells\n\n"
        )
    );
}

#[test]
fn transcripts_are_read_within_the_import_budget() {
    let mut files = transcript_course();
    let big: String = (0..400)
        .map(|i| format!("{i}\n00:00:01,000 --> 00:00:02,000\nline {i}\n\n"))
        .collect();
    files.push(("static/lecture-en.srt".into(), big.into_bytes()));
    files.remove(
        files
            .iter()
            .position(|(n, _)| n == "static/lecture-en.srt")
            .unwrap(),
    );
    let export = tempfile::tempdir().unwrap();
    write_dir(export.path(), &files);
    let f = fixture();
    let options = ImportOptions {
        limits: ImportLimits {
            max_file_bytes: 4096,
            ..ImportLimits::default()
        },
        ..ImportOptions::default()
    };
    let err = f.host.import_course(export.path(), &options).unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("static/lecture-en.srt") && text.contains("--max-import-file-bytes"),
        "{text}"
    );
    assert!(
        f.host.course(SMALL_COURSE).is_err(),
        "a failed import stores nothing"
    );

    // In an archive, files other than XML, HTML and JSON are not kept: the videos still
    // import, the transcript noted for staff.
    let f = fixture();
    let archive = tempfile::tempdir().unwrap();
    let path = archive.path().join("course.tar.gz");
    std::fs::write(&path, tgz("export", &transcript_course())).unwrap();
    let report = import(&f, &path);
    assert_eq!(report.blocks_by_type["video"], 2);
    assert!(!report.unsupported.contains_key("video"));
}

/// The group of each video condition of the test course's experiment: video usage id by
/// group id, through the split test's mapping to units.
fn video_conditions(f: &Fixture) -> BTreeMap<u64, String> {
    let course = f.host.course(TEST_COURSE).unwrap();
    let block = |id: &str| {
        course
            .doc
            .blocks
            .iter()
            .find(|b| b.usage_id == id)
            .unwrap()
            .clone()
    };
    let split = block(VIDEO_SPLIT);
    assert_eq!(split.fields["user_partition_id"], json!(EXPERIMENT));
    split.fields["group_id_to_child"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(group, unit)| {
            let unit = block(unit.as_str().unwrap());
            assert_eq!(unit.children.len(), 1);
            let video = block(&unit.children[0]);
            assert_eq!(video.block_type, "video");
            (group.parse().unwrap(), video.usage_id)
        })
        .collect()
}

fn embed_of(f: &Fixture, video: &str) -> String {
    let course = f.host.course(TEST_COURSE).unwrap();
    let v = course
        .doc
        .blocks
        .iter()
        .find(|b| b.usage_id == video)
        .unwrap();
    format!(
        "youtube-nocookie.com/embed/{}?",
        v.fields["youtube_id_1_0"].as_str().unwrap()
    )
}

#[test]
fn the_video_experiment_shows_each_learner_exactly_one_video_and_staff_all_three() {
    let f = fixture();
    import(&f, &olx("openedx-test-course"));
    let conditions = video_conditions(&f);
    assert_eq!(conditions.len(), 3);
    let embeds: BTreeMap<u64, String> = conditions
        .iter()
        .map(|(g, v)| (*g, embed_of(&f, v)))
        .collect();
    let mut seen_groups = BTreeMap::new();
    for i in 0..30 {
        let user = format!("viewer-{i}");
        let page = f.render(TEST_COURSE, SPLIT_UNIT, User::learner(&user), View::Student);
        assert!(page.failures.is_empty(), "{user}: {:?}", page.failures);
        let group = page.assignments[&EXPERIMENT];
        *seen_groups.entry(group).or_insert(0) += 1;
        let shown: Vec<u64> = embeds
            .iter()
            .filter(|(_, e)| page.html.contains(e.as_str()))
            .map(|(g, _)| *g)
            .collect();
        assert_eq!(
            shown,
            vec![group],
            "{user} sees exactly their group's video"
        );
        assert_eq!(page.html.matches("<iframe").count(), 1, "{user}");
        assert!(page.visible_blocks.contains(&conditions[&group]));
        // The same learner again: the same video.
        let again = f.render(TEST_COURSE, SPLIT_UNIT, User::learner(&user), View::Student);
        assert_eq!(again.assignments[&EXPERIMENT], group);
        assert!(again.html.contains(&embeds[&group]));
    }
    assert_eq!(
        seen_groups.len(),
        3,
        "30 learners reach every group: {seen_groups:?}"
    );

    let staff = f.render(TEST_COURSE, SPLIT_UNIT, User::staff("staff"), View::Staff);
    let doc = scraper::Html::parse_fragment(&staff.html);
    for (group, video) in &conditions {
        let css = format!("[data-usage-id=\"{VIDEO_SPLIT}\"] [data-group-id=\"{group}\"]");
        let marked = doc
            .select(&scraper::Selector::parse(&css).unwrap())
            .next()
            .unwrap_or_else(|| panic!("staff see group {group} marked"));
        assert!(
            marked.html().contains(&embeds[group]),
            "group {group}'s video {video}"
        );
    }
}

#[test]
fn video_events_reach_the_event_log_with_experiment_membership() {
    let f = fixture();
    import(&f, &olx("openedx-test-course"));
    let conditions = video_conditions(&f);
    let course = f.host.course(TEST_COURSE).unwrap();
    let partition = course
        .doc
        .user_partitions
        .iter()
        .find(|p| p.id == EXPERIMENT)
        .unwrap();
    for (group, video) in &conditions {
        let user = xbhost_tests::authoring::learner_in(&f, TEST_COURSE, EXPERIMENT, *group);
        let learner = User::learner(&user);
        // The learner sees the unit first, as a page would (and is assigned).
        f.render(TEST_COURSE, SPLIT_UNIT, learner.clone(), View::Student);
        for payload in [
            json!({"event": "play_video", "currentTime": 0.0}),
            json!({"event": "seek_video", "old_time": 1.0, "new_time": 30.5, "type": "onSlideSeek"}),
            json!({"event": "pause_video", "currentTime": 31.0, "duration": 120.0}),
            json!({"event": "complete_video", "currentTime": 118.0, "duration": 120.0}),
        ] {
            let answer = f
                .host
                .handle(TEST_COURSE, video, &learner, "event", &payload)
                .unwrap();
            assert_eq!(answer["published"], json!(true), "{payload}");
        }
        // Bad payloads are refused and publish nothing.
        for bad in [
            json!({"event": "problem_check", "currentTime": 1.0}),
            json!({"event": "play_video", "currentTime": 1e12}),
        ] {
            let err = f
                .host
                .handle(TEST_COURSE, video, &learner, "event", &bad)
                .unwrap_err();
            assert!(format!("{err:#}").contains(video.as_str()), "{err:#}");
        }
        let group_name = &partition.group(*group).unwrap().name;
        let mine: Vec<_> = f
            .events
            .events()
            .into_iter()
            .filter(|e| e.user_id == user && e.name.ends_with("_video"))
            .collect();
        let names: Vec<&str> = mine.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            ["play_video", "seek_video", "pause_video", "complete_video"]
        );
        for e in &mine {
            assert_eq!(e.usage_id.as_deref(), Some(video.as_str()));
            assert_eq!(e.plugin.as_deref(), Some("video"));
            assert_eq!(e.data["id"], json!(video));
            assert_eq!(
                e.experiments.assigned.get(&partition.name),
                Some(group_name),
                "{} carries the learner's membership",
                e.name
            );
        }
        assert_eq!(mine[1].data["new_time"], json!(30.5));
        assert_eq!(
            mine[0].data["code"],
            course
                .doc
                .blocks
                .iter()
                .find(|b| &b.usage_id == video)
                .unwrap()
                .fields["youtube_id_1_0"]
        );
    }
}
