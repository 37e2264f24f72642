use serde_json::json;
use xbhost_sdk::View;
use xbhost_sdk::testing::TestHost;

use super::render::MAX_DEPTH;
use super::{Annotatable, render_data};

const SONNET: &str = r#"<annotatable display_name="x">
  <p>Intend a <annotation title="A Zealous Pilgrimage" body="A mental journey." highlight="green" problem="0">zealous pilgrimage</annotation> to thee,<br/>
  And keep <annotation body="Eyes &quot;open&quot; &lt;wide&gt;">my drooping eyelids</annotation> open wide.</p>
</annotatable>"#;

#[test]
fn renders_the_blocks_default_template_with_its_instructions() {
    let host = TestHost::new("annotatable", "ann");
    let f = host.render::<Annotatable>(View::Student).unwrap();
    assert_eq!(f.title.as_deref(), Some("Annotation"));
    let instructions = &f.html[f.html.find("annotatable-instructions\">").unwrap()..];
    assert!(
        instructions
            .trim_start_matches(|c: char| c != '<')
            .contains("<p>Enter your (optional) instructions")
    );
    assert!(
        f.html.contains("<code>&lt;annotation&gt;</code>"),
        "{}",
        f.html
    );
    // Instructions are taken out of the content, as the block does.
    let content = &f.html[f.html.find("annotatable-content").unwrap()..];
    assert!(!content.contains("Enter your (optional)"));
    assert!(content.contains(
        "<span class=\"annotatable-span highlight highlight-yellow\" style=\"background-color: #fff3a6\" \
         data-comment-body=\"My comment\" data-comment-title=\"My title\" data-problem-id=\"0\""
    ), "{content}");
    assert!(content.contains("<li id=\"annotatable-ann-2\" class=\"annotatable-comment\"><strong \
        class=\"annotatable-comment-title\">Commentary</strong> <span class=\"annotatable-comment-body\">Basic annotation example.</span></li>"));
}

#[test]
fn annotations_become_highlighted_spans_with_their_comments_shown() {
    let host = TestHost::new("annotatable", "u:1")
        .fields(json!({"display_name": "Sonnet 27", "data": SONNET}));
    let f = host.render::<Annotatable>(View::Student).unwrap();
    let html = &f.html;
    assert!(html.contains("<h3 class=\"annotatable-title\">Sonnet 27</h3>"));
    assert!(
        !html.contains("Instructions"),
        "no instructions, no section"
    );
    assert!(
        html.contains("highlight highlight-green\" style=\"background-color: #d3f9d8\""),
        "{html}"
    );
    assert!(
        html.contains(
            "title=\"A Zealous Pilgrimage: A mental journey.\">zealous pilgrimage</span>\
        <sup class=\"annotatable-ref\"><a href=\"#annotatable-u-1-1\">1</a></sup>"
        ),
        "{html}"
    );
    // No color: the plain highlight, yellow, and the default title; the body escaped.
    assert!(
        html.contains(
            "<span class=\"annotatable-span highlight\" style=\"background-color: #fff3a6\" \
        data-comment-body=\"Eyes &quot;open&quot; &lt;wide&gt;\""
        ),
        "{html}"
    );
    assert!(
        html.contains("<br>"),
        "void elements have no end tag: {html}"
    );
    assert!(!html.contains("</br>"));
    assert!(!html.contains("<annotation"));
    let r = render_data(SONNET, "u:1").unwrap();
    assert_eq!(r.annotations.len(), 2);
    assert_eq!(r.annotations[1].title, "Commentary");
    assert_eq!(r.annotations[1].body, "Eyes \"open\" <wide>");
}

#[test]
fn nested_annotations_keep_their_own_numbers() {
    let r = render_data(
        "<annotatable><p><annotation body=\"outer\">a <annotation body=\"inner\">b</annotation> c</annotation></p></annotatable>",
        "n",
    )
    .unwrap();
    assert!(r.content.contains("b</span><sup class=\"annotatable-ref\"><a href=\"#annotatable-n-2\">2</a></sup> c</span><sup class=\"annotatable-ref\"><a href=\"#annotatable-n-1\">1</a>"), "{}", r.content);
}

#[test]
fn data_that_is_not_the_blocks_xml_is_an_error_naming_the_block() {
    for (data, what) in [
        ("<annotatable><p>open</annotatable>", "not well-formed XML"),
        ("<html><p>x</p></html>", "root element is <html>"),
        ("", "not well-formed XML"),
        (
            "<!DOCTYPE a [<!ENTITY x \"y\">]><annotatable>&x;</annotatable>",
            "not well-formed XML",
        ),
    ] {
        let host = TestHost::new("annotatable", "ann").fields(json!({"data": data}));
        let err = host.render::<Annotatable>(View::Student).unwrap_err();
        assert!(
            err.0.contains("\"ann\"") && err.0.contains(what),
            "{data}: {err}"
        );
        assert_eq!(host.validate::<Annotatable>().len(), 1);
    }
}

#[test]
fn nesting_is_bounded_before_parsing() {
    let nested = |depth: usize| {
        format!(
            "<annotatable><!-- <a><b><c> --><![CDATA[<x><y>]]>{}x{}</annotatable>",
            "<b>".repeat(depth),
            "</b>".repeat(depth)
        )
    };
    let r = render_data(&nested(MAX_DEPTH - 1), "deep").unwrap();
    assert_eq!(r.content.matches("<b>").count(), MAX_DEPTH - 1);
    let err = render_data(&nested(MAX_DEPTH), "deep").unwrap_err();
    assert!(err.contains("more than 256 deep"), "{err}");
    let err = render_data(&nested(100_000), "deep").unwrap_err();
    assert!(err.contains("more than 256 deep"), "{err}");
}
