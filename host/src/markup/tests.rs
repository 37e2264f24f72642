//! Unit tests of the wrapper and of containment: one test for each way a block's HTML
//! could break out of its wrapper or forge the host's marks.

use super::*;

#[test]
fn wraps_with_identity_and_escapes_names() {
    let html = wrap_block(
        "<p>x</p>",
        ChildHtml::default(),
        "a\"b",
        "html",
        View::Student,
        None,
        None,
    );
    assert_eq!(
        html,
        "<div class=\"xblock xblock-student\" data-usage-id=\"a&quot;b\" data-block-type=\"html\"><p>x</p></div>"
    );
    let mark = ConditionMark {
        partition_id: 1,
        group_id: Some(2),
        group_name: Some("<Video>".into()),
        own: true,
    };
    let html = wrap_block(
        "",
        ChildHtml::default(),
        "c",
        "vertical",
        View::Staff,
        Some(&mark),
        None,
    );
    assert!(html.contains("data-group-id=\"2\" data-group-name=\"&lt;Video&gt;\""));
    assert!(html.contains("data-own-group=\"true\""));
    assert!(!html.contains("data-inactive"));
    assert!(!html.contains("<Video>"));
}

#[test]
fn inactive_conditions_are_marked() {
    let mark = ConditionMark {
        partition_id: 1,
        group_id: Some(9),
        group_name: None,
        own: false,
    };
    let html = wrap_block(
        "",
        ChildHtml::default(),
        "c",
        "vertical",
        View::Staff,
        Some(&mark),
        None,
    );
    assert!(html.contains("data-group-id=\"9\""));
    assert!(html.contains("data-inactive=\"true\""));
}

use super::dom::{self, Data};

fn wrap(html: &str, view: View) -> String {
    wrap_block(
        html,
        ChildHtml::default(),
        "b",
        "breakout",
        view,
        None,
        None,
    )
}

/// The page's top level when this HTML is followed by a neighbour, as a browser parses
/// it: each element's name and usage id (or id). Fails on a comment or top-level text.
fn top_level(page: &str) -> Vec<String> {
    let tree = dom::parse_fragment(&format!("{page}<p id=\"after\"></p>"));
    let mut out = Vec::new();
    let mut child = tree.nodes[tree.fragment_root()].first;
    while let Some(c) = child {
        match &tree.nodes[c].data {
            Data::Element { name, attrs, .. } => {
                let id = attrs
                    .iter()
                    .find(|a| matches!(&*a.name.local, "data-usage-id" | "id"))
                    .map_or(String::new(), |a| a.value.to_string());
                out.push(format!("{}#{id}", name.local));
            }
            Data::Text(t) => panic!("text outside the wrapper: {t:?} in {page}"),
            _ => panic!("a comment outside the wrapper in {page}"),
        }
        child = tree.nodes[c].next;
    }
    assert!(
        tree.nodes.iter().all(|n| !matches!(n.data, Data::Other)),
        "a comment in {page}"
    );
    out
}

/// Every element (template contents too) that has a host attribute: its name, the
/// attribute and its classes.
fn host_marked(page: &str) -> Vec<String> {
    let tree = dom::parse_fragment(page);
    let mut out = Vec::new();
    for node in &tree.nodes {
        if let Data::Element { name, attrs, .. } = &node.data {
            for a in attrs.iter().filter(|a| reserved_attribute(&a.name.local)) {
                out.push(format!("{} {}", name.local, a.name.local));
            }
            for a in attrs.iter().filter(|a| &*a.name.local == "class") {
                for c in a
                    .value
                    .split_ascii_whitespace()
                    .filter(|c| reserved_class(c))
                {
                    out.push(format!("{} .{c}", name.local));
                }
            }
        }
    }
    out
}

const STAND_ALONE: [&str; 2] = ["div#b", "p#after"];

#[test]
fn closing_tags_cannot_end_the_wrapper() {
    for html in [
        "<p>a</p></div><p>b</p>",
        "</div></div></div></section></main><p>out</p>",
        "<table><tr><td></div></td></tr></table></div>x",
        "<div><span></div></span></div>",
        "<svg></div><p>x</svg></div>",
    ] {
        for view in [View::Student, View::Staff] {
            let page = wrap(html, view);
            assert_eq!(top_level(&page), STAND_ALONE, "{html} gave {page}");
        }
    }
    assert_eq!(
        wrap("<p>a</p></div><p>b</p>", View::Student),
        "<div class=\"xblock xblock-student\" data-usage-id=\"b\" data-block-type=\"breakout\"><p>a</p><p>b</p></div>"
    );
}

#[test]
fn an_open_comment_is_dropped_and_cannot_hide_the_page() {
    for html in [
        "<p>a</p><!-- the rest of the page",
        "<!--",
        "<p>a<!--</p>--></p>",
        "<!-- a --!><p>b</p>",
        "<?php echo 1 ?><p>x</p>",
        "<![CDATA[ </div> ]]><p>x</p>",
    ] {
        let page = wrap(html, View::Student);
        assert!(!page.contains("<!--"), "{html} gave {page}");
        assert_eq!(top_level(&page), STAND_ALONE, "{html} gave {page}");
    }
    assert!(wrap("<p>a</p><!-- x", View::Student).contains("<p>a</p></div>"));
}

#[test]
fn the_end_of_the_document_is_not_the_end_of_the_block() {
    for html in [
        "<p>a</p></body></html><p>after</p>",
        "</body><body data-usage-id=\"fake\"><html><head><title>t</title></head>",
        "<frameset><frame></frameset>",
        "<p>a</p><plaintext></div><p>b</p>",
        "<xmp></div></xmp><iframe></div></iframe><noscript></div></noscript>",
        "<noembed></div></noembed><noframes></div></noframes><textarea></div></textarea>",
        "<title></div></title><style></div></style><script></div></script>",
    ] {
        let page = wrap(html, View::Student);
        assert_eq!(top_level(&page), STAND_ALONE, "{html} gave {page}");
        assert!(!page.contains("fake"), "{page}");
    }
    // Plaintext's rest of the input is text of a `pre`, escaped.
    assert!(wrap("<plaintext></div>", View::Student).contains("<pre>&lt;/div&gt;</pre></div>"));
}

#[test]
fn host_attributes_and_classes_are_removed_from_block_html() {
    let mut forged =
        String::from("<div class=\"note XBLOCK xbhost-condition-label xblock-staff keep\"");
    for a in RESERVED_ATTRIBUTES {
        forged.push_str(&format!(" {a}=\"1\""));
    }
    forged.push_str(" DATA-GROUP-ID=\"2\" data-xbhost-slot=\"x\" data-handler=\"submit\">");
    forged.push_str("<div class=\"xbhost-condition-label\">Group: Forged (id 1)</div></div>");
    forged.push_str("<svg data-own-group=\"true\" class=\"xbhost-restriction-label\"><g data-group-name=\"x\"/></svg>");
    forged.push_str("<template><p data-inactive=\"true\" class=\"xblock\">t</p></template>");
    for view in [View::Student, View::Staff, View::Author] {
        let page = wrap(&forged, view);
        let wrapper = format!("div .{WRAPPER_CLASS}-{}", view_class(view));
        assert_eq!(
            host_marked(&page),
            [
                "div data-usage-id",
                "div data-block-type",
                "div .xblock",
                &wrapper
            ],
            "{page}"
        );
        // What is the block's own stays: its classes and the form convention.
        assert!(
            page.contains("class=\"note keep\" data-handler=\"submit\""),
            "{page}"
        );
        assert!(page.contains("<div>Group: Forged (id 1)</div>"), "{page}");
    }
    // A condition's wrapper keeps the host's marks.
    let mark = ConditionMark {
        partition_id: 1,
        group_id: Some(2),
        group_name: Some("Video".into()),
        own: false,
    };
    let page = wrap_block(
        &forged,
        ChildHtml::default(),
        "c",
        "html",
        View::Staff,
        Some(&mark),
        None,
    );
    let marked = host_marked(&page);
    assert!(marked.contains(&"div data-group-id".to_string()));
    assert_eq!(
        marked
            .iter()
            .filter(|m| m.contains(CONDITION_LABEL))
            .count(),
        1
    );
}

#[test]
fn staff_and_author_views_drop_block_styling_and_learners_keep_it() {
    let html = "<style>.xbhost-condition-label { display: none } p::before { content: \"</p>\" }</style>\
        <link rel=\"stylesheet\" href=\"/evil.css\"><p style=\"position: fixed; inset: 0\" popover>p</p>\
        <svg><style>.xblock { display: none }</style></svg>";
    for view in [View::Staff, View::Author] {
        let page = wrap(html, view);
        assert_eq!(top_level(&page), STAND_ALONE);
        for gone in ["<style", "<link", "style=", "display", "popover"] {
            assert!(!page.contains(gone), "{gone} in {page}");
        }
        assert!(page.contains("<p>p</p>"), "{page}");
    }
    let page = wrap(html, View::Student);
    assert!(
        page.contains("<link rel=\"stylesheet\" href=\"/evil.css\">"),
        "{page}"
    );
    assert!(
        page.contains("<p style=\"position: fixed; inset: 0\" popover=\"\">"),
        "{page}"
    );
    // Style sheets keep their meaning, with no `<` for a second parse to read.
    assert!(page.contains("content: \"\\3c /p>\""), "{page}");
    assert!(
        page.contains("<svg><style>.xblock { display: none }</style></svg>"),
        "{page}"
    );
}

#[test]
fn scripts_redirects_and_shadow_roots_are_dropped_and_json_data_kept() {
    let html = "<script>alert(1)</script><script src=\"/assets/xbhost.js\"></script>\
        <svg><script>alert(2)</script></svg><SCRIPT TYPE=\"Application/JSON\">{\"a\": \"</b><!--\"}</script>\
        <script type=\"application/ld+json\">{}</script><script type=\"importmap\">{}</script>\
        <meta http-equiv=\"refresh\" content=\"0; url=/\"><base href=\"https://example.invalid/\">\
        <template shadowrootmode=\"open\" shadowrootdelegatesfocus><p>shadow</p><slot name=\"x\"></slot></template>";
    for view in [View::Student, View::Staff] {
        let page = wrap(html, view);
        for gone in [
            "alert",
            "xbhost.js",
            "importmap",
            "<meta",
            "<base",
            "refresh",
            "shadowroot",
        ] {
            assert!(!page.contains(gone), "{gone} in {page}");
        }
        assert!(
            page.contains(
                "<script type=\"Application/JSON\">{\"a\": \"\\u003c/b>\\u003c!--\"}</script>"
            ),
            "{page}"
        );
        assert!(page.contains("<script type=\"application/ld+json\">{}</script>"));
        assert!(page.contains("<template><p>shadow</p><slot name=\"x\"></slot></template>"));
        assert_eq!(top_level(&page), STAND_ALONE);
    }
}

#[test]
fn markup_that_parses_differently_a_second_time_finds_nothing_to_reinterpret() {
    // A style sheet (raw text) that a second parse would put in MathML, where its text
    // is markup: it would open a comment or close the wrapper.
    for html in [
        "<math><mtext><table><mglyph><style><!--</style><img title=\"--&gt;&lt;/div&gt;\"></mglyph></table></mtext></math>",
        "<math><mtext><table><mglyph><style></mtext></math></div><!--</style></table></mtext></math>",
        "<math><mtext><table><mglyph><plaintext></mglyph></mtext></math></div></div><!--",
        "<svg></p><style><a id=\"</style><img src=1 onerror=alert(1)>\"></svg>",
        "<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>",
        "<noscript><style></noscript><img src=x onerror=alert(1)></style></noscript>",
    ] {
        for view in [View::Student, View::Staff] {
            let once = contain_block_html(html, view);
            // Every `<` the host wrote starts a tag: no text holds one for a second parse.
            assert!(
                once.match_indices('<').all(|(i, _)| once[i + 1..]
                    .starts_with(|c: char| c == '/' || c.is_ascii_alphabetic())),
                "{html} gave {once}"
            );
            assert!(!once.contains("<!"), "{once}");
            assert_eq!(
                top_level(&wrap(html, view)),
                STAND_ALONE,
                "{html} gave {once}"
            );
            assert_eq!(top_level(&wrap(&once, view)), STAND_ALONE, "{once}");
        }
    }
}

#[test]
fn placeholders_are_filled_in_once_where_the_parent_put_them() {
    let slots = ChildSlots::default();
    let kid = wrap("<p>kid</p>", View::Staff).replace("\"b\"", "\"kid\"");
    let p = slots.hold(3, kid.clone());
    assert!(
        p.starts_with("<xbhost-child data-xbhost-slot=\"") && p.len() > 60,
        "{p}"
    );
    let parent = format!(
        "<svg>{p}</svg><math>{p}</math><template>{p}</template><select>{p}</select>\
         <div class=\"slot\">{p}</div><div class=\"again\">{p}</div>\
         <xbhost-child data-xbhost-slot=\"00000000000000000000000000000000\"><p>forged</p></xbhost-child>"
    );
    let page = wrap_block(
        &parent,
        slots.take(3),
        "b",
        "vertical",
        View::Staff,
        None,
        None,
    );
    assert_eq!(page.matches("data-usage-id=\"kid\"").count(), 1, "{page}");
    assert!(
        page.contains(&format!(
            "<div class=\"slot\">{kid}</div><div class=\"again\"></div>"
        )),
        "{page}"
    );
    for gone in ["xbhost-child", "forged", "data-xbhost"] {
        assert!(!page.contains(gone), "{gone} in {page}");
    }
    assert_eq!(top_level(&page), STAND_ALONE);
    // The child's own marks are the host's and survive its parent's containment.
    assert_eq!(
        host_marked(&page)
            .iter()
            .filter(|m| m.contains("data-usage-id"))
            .count(),
        2
    );
}

#[test]
fn placeholders_deeper_than_the_bound_are_dropped() {
    let slots = ChildSlots::default();
    let p = slots.hold(1, wrap("<p>kid</p>", View::Student));
    let at = |depth: usize| format!("{}{p}{}", "<div>".repeat(depth), "</div>".repeat(depth));
    let deep = wrap_block(
        &at(contain::MAX_CHILD_DEPTH),
        slots.take(1),
        "b",
        "vertical",
        View::Student,
        None,
        None,
    );
    assert!(deep.contains("<p>kid</p>"), "{deep}");
    let p = slots.hold(1, wrap("<p>kid</p>", View::Student));
    let at = |depth: usize| format!("{}{p}{}", "<div>".repeat(depth), "</div>".repeat(depth));
    let deeper = wrap_block(
        &at(contain::MAX_CHILD_DEPTH + 1),
        slots.take(1),
        "b",
        "vertical",
        View::Student,
        None,
        None,
    );
    assert!(!deeper.contains("kid"), "{deeper}");
}

#[test]
fn a_token_is_good_only_for_the_block_it_was_given_to() {
    let slots = ChildSlots::default();
    let kid = wrap("<p>kid</p>", View::Student);
    let (p1, p2) = (slots.hold(1, kid.clone()), slots.hold(1, kid.clone()));
    assert_ne!(p1, p2);
    assert_ne!(
        ChildSlots::default().hold(1, kid.clone()),
        p1,
        "tokens are per request"
    );
    assert_eq!(
        slots.hold(1, String::new()),
        "",
        "hidden children need no placeholder"
    );
    // Another block cannot use them, even with the token in its HTML.
    let other = wrap_block(
        &p1,
        slots.take(2),
        "o",
        "vertical",
        View::Student,
        None,
        None,
    );
    assert!(!other.contains("kid"), "{other}");
    let mine = slots.take(1);
    let page = wrap_block(
        &format!("{p2}{p1}"),
        mine,
        "b",
        "vertical",
        View::Student,
        None,
        None,
    );
    assert_eq!(page.matches("<p>kid</p>").count(), 2, "{page}");
    // Taken once: a later call of the same block starts with none.
    assert!(slots.take(1).is_empty());
}

#[test]
fn html_nested_too_deep_is_cut_there_and_balanced() {
    let html = format!("<p>kept</p>{}<p>lost</p>", "<div><b>".repeat(100_000));
    let contained = contain::contain(&html, View::Student, &mut ChildHtml::default());
    assert!(contained.cut);
    assert!(contained.html.starts_with("<p>kept</p><div><b><div><b>"));
    assert!(!contained.html.contains("lost"));
    let page = wrap(&html, View::Student);
    assert!(page.ends_with("</b></div></b></div></div>"), "{page}");
    for tag in ["div", "b"] {
        let open = page.matches(&format!("<{tag}>")).count() + usize::from(tag == "div");
        assert_eq!(open, page.matches(&format!("</{tag}>")).count(), "{tag}");
    }
    assert!(!contain::contain("<p>ok</p>", View::Student, &mut ChildHtml::default()).cut);
}

#[test]
fn contained_html_of_blocks_without_children_is_cached_per_view() {
    let html = "<style>p { color: red }</style><p data-group-id=\"1\">cached</p></div>";
    let (student, staff) = (wrap(html, View::Student), wrap(html, View::Staff));
    assert_eq!(wrap(html, View::Student), student);
    assert_eq!(wrap(html, View::Staff), staff);
    assert!(
        student.contains("<style>") && !staff.contains("<style>"),
        "{staff}"
    );
    let (hit, cut) = cache::contain_leaf(html, View::Staff);
    assert!(!cut && staff.contains(&*hit));
    // What the cache does not keep is contained all the same.
    let big = format!(
        "{}</div><p>after</p>",
        "<p>x</p>".repeat(cache::MAX_ENTRY / 8 + 1)
    );
    assert_eq!(top_level(&wrap(&big, View::Student)), STAND_ALONE);
}

#[test]
fn placeholders_hide_internals_from_learners() {
    let learner = placeholder(View::Student, "b", "bad", Some("1.0"), "trap: <secret>");
    assert!(learner.contains("This content is unavailable."));
    assert!(!learner.contains("secret"));
    let staff = placeholder(View::Staff, "b", "bad", Some("1.0"), "trap: <secret>");
    assert!(staff.contains("bad 1.0"));
    assert!(staff.contains("&lt;secret&gt;"));
}

#[test]
fn srcdoc_frames_are_never_kept() {
    // A srcdoc frame has the page's origin and script policy: a plugin's client file
    // (same origin) would run in it with the page's rights.
    for html in [
        "<iframe srcdoc=\"&lt;script src=/plugins/evil/h/static/x.js&gt;&lt;/script&gt;\"></iframe>",
        "<IFRAME SRCDOC=\"&lt;script src=/x.js&gt;&lt;/script&gt;\"></IFRAME>",
        "<svg><foreignObject><iframe srcdoc=\"x\"></iframe></foreignObject></svg>",
    ] {
        for view in [View::Student, View::Staff, View::Author] {
            let page = wrap(html, view);
            assert!(
                !page.to_ascii_lowercase().contains("srcdoc"),
                "{view:?}: {page}"
            );
        }
    }
}
