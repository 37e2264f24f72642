//! The block's XML as HTML: one walk over roxmltree's tree (no recursion, so no depth of
//! authored XML can exhaust the sandbox's stack), annotations turned into highlighted
//! spans, everything from the XML escaped as it is written.

use std::fmt::Write;

use roxmltree::{Document, Node, NodeType, ParsingOptions};
use xbhost_sdk::html::escape;

/// Most XML nodes the block's data may have.
pub const MAX_NODES: u32 = 100_000;

/// Deepest nesting of elements the block's data may have (an import allows 256 by
/// default): checked before parsing, since the parser recurses and a block's stack is small.
pub const MAX_DEPTH: usize = 256;

/// The colors the block knows (`HIGHLIGHT_COLORS`), each with its background.
const COLORS: &[(&str, &str)] = &[
    ("yellow", "#fff3a6"),
    ("orange", "#ffd8a8"),
    ("purple", "#e5d4ff"),
    ("blue", "#cfe8ff"),
    ("green", "#d3f9d8"),
];

/// HTML elements that have no end tag.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr",
];

/// One annotation as the learner's page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    /// 1-based, in document order.
    pub number: usize,
    pub title: String,
    pub body: String,
}

/// The block's data rendered: instructions and content HTML, and the annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub instructions: Option<String>,
    pub content: String,
    pub annotations: Vec<Annotation>,
    /// The prefix of the comment anchors' ids (from the usage id).
    anchor: String,
}

/// Renders `data` (the block's XML); `usage_id` makes the comment anchors unique.
pub fn render_data(data: &str, usage_id: &str) -> Result<Rendered, String> {
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
    };
    check_depth(data)?;
    let doc = Document::parse_with_options(data, options)
        .map_err(|e| format!("its data is not well-formed XML: {e}"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "annotatable" {
        return Err(format!(
            "its data's root element is <{}>, not <annotatable>",
            root.tag_name().name()
        ));
    }
    let anchor: String = usage_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let mut out = Rendered {
        instructions: None,
        content: String::new(),
        annotations: Vec::new(),
        anchor: format!("annotatable-{anchor}"),
    };
    // Like the block, only the first <instructions> child is taken out of the content.
    let instructions = root
        .children()
        .find(|n| n.is_element() && n.tag_name().name() == "instructions");
    if let Some(i) = instructions {
        let mut html = String::new();
        for child in i.children() {
            write_html(child, &mut html, &mut out);
        }
        out.instructions = Some(html);
    }
    let mut content = String::new();
    for child in root.children().filter(|c| Some(*c) != instructions) {
        write_html(child, &mut content, &mut out);
    }
    out.content = content;
    Ok(out)
}

/// Fails when elements in `data` nest deeper than [`MAX_DEPTH`]: one pass over the tags,
/// skipping comments, CDATA, declarations and processing instructions, so it may count
/// more nesting than the parser would, never less.
fn check_depth(data: &str) -> Result<(), String> {
    let mut depth = 0usize;
    let mut rest = data;
    while let Some(at) = rest.find('<') {
        rest = &rest[at..];
        let skip_to =
            |end: &str, rest: &str| rest.find(end).map(|e| e + end.len()).unwrap_or(rest.len());
        let len = if rest.starts_with("<!--") {
            skip_to("-->", rest)
        } else if rest.starts_with("<![CDATA[") {
            skip_to("]]>", rest)
        } else if rest.starts_with("<!") || rest.starts_with("<?") {
            skip_to(">", rest)
        } else if rest.starts_with("</") {
            depth = depth.saturating_sub(1);
            skip_to(">", rest)
        } else {
            let len = skip_to(">", rest);
            if !rest[..len].ends_with("/>") {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(format!(
                        "its data nests elements more than {MAX_DEPTH} deep"
                    ));
                }
            }
            len
        };
        rest = &rest[len.max(1)..];
    }
    Ok(())
}

impl Rendered {
    /// The whole block, as the block's template lays it out.
    pub fn page(&self, display_name: &str) -> String {
        let mut html = String::from("<div class=\"annotatable-wrapper\">");
        let _ = write!(
            html,
            "<div class=\"annotatable-header\"><h3 class=\"annotatable-title\">{}</h3></div>",
            escape(display_name)
        );
        if let Some(instructions) = &self.instructions {
            let _ = write!(
                html,
                "<details class=\"annotatable-section shaded\" open><summary \
                 class=\"annotatable-section-title\">Instructions</summary><div \
                 class=\"annotatable-section-body annotatable-instructions\">{instructions}</div></details>"
            );
        }
        let _ = write!(
            html,
            "<details class=\"annotatable-section\" open><summary \
             class=\"annotatable-section-title\">Guided Discussion</summary><div \
             class=\"annotatable-section-body annotatable-content\">{}</div>",
            self.content
        );
        if !self.annotations.is_empty() {
            html.push_str("<ol class=\"annotatable-comments\">");
            for a in &self.annotations {
                let _ = write!(
                    html,
                    "<li id=\"{}-{}\" class=\"annotatable-comment\"><strong \
                     class=\"annotatable-comment-title\">{}</strong> <span \
                     class=\"annotatable-comment-body\">{}</span></li>",
                    self.anchor,
                    a.number,
                    escape(&a.title),
                    escape(&a.body)
                );
            }
            html.push_str("</ol>");
        }
        html.push_str("</details></div>");
        html
    }
}

/// Writes `node` and everything under it as HTML, annotations as highlighted spans: a
/// walk down first children and across siblings, climbing back through parents.
fn write_html(node: Node, html: &mut String, out: &mut Rendered) {
    // The numbers of the annotations open at this point (they may nest).
    let mut open = Vec::new();
    let mut n = node;
    loop {
        open_node(n, html, out, &mut open);
        if let Some(child) = n.first_child() {
            n = child;
            continue;
        }
        loop {
            close_node(n, html, out, &mut open);
            if n == node {
                return;
            }
            if let Some(next) = n.next_sibling() {
                n = next;
                break;
            }
            match n.parent() {
                Some(parent) => n = parent,
                None => return,
            }
        }
    }
}

fn open_node(n: Node, html: &mut String, out: &mut Rendered, open: &mut Vec<usize>) {
    match n.node_type() {
        NodeType::Text => html.push_str(&escape(n.text().unwrap_or_default())),
        NodeType::Element if n.tag_name().name() == "annotation" => {
            open.push(open_annotation(n, html, out));
        }
        NodeType::Element => {
            let name = n.tag_name().name();
            let _ = write!(html, "<{name}");
            for a in n.attributes() {
                let _ = write!(html, " {}=\"{}\"", a.name(), escape(a.value()));
            }
            html.push('>');
        }
        _ => {}
    }
}

fn close_node(n: Node, html: &mut String, out: &Rendered, open: &mut Vec<usize>) {
    if !n.is_element() {
        return;
    }
    let name = n.tag_name().name();
    if name == "annotation" {
        let number = open.pop().unwrap_or_default();
        let _ = write!(
            html,
            "</span><sup class=\"annotatable-ref\"><a href=\"#{}-{number}\">{number}</a></sup>",
            out.anchor
        );
    } else if !VOID.contains(&name) || n.has_children() {
        let _ = write!(html, "</{name}>");
    }
}

/// An `<annotation>` as the block renders it: a span with its comment in data attributes
/// (and, here, as a tooltip), its color as a class (and a background for learners:
/// yellow, as the block's style sheet has it, when the color is missing or unknown).
/// Returns its number.
fn open_annotation(n: Node, html: &mut String, out: &mut Rendered) -> usize {
    let title = n.attribute("title").unwrap_or("Commentary");
    let body = n.attribute("body").unwrap_or_default();
    let mut class = String::from("annotatable-span highlight");
    let mut background = COLORS[0].1;
    if let Some((color, b)) = n
        .attribute("highlight")
        .and_then(|h| COLORS.iter().find(|(c, _)| *c == h))
    {
        let _ = write!(class, " highlight-{color}");
        background = b;
    }
    let _ = write!(
        html,
        "<span class=\"{class}\" style=\"background-color: {background}\""
    );
    for (xml, data) in [
        ("body", "data-comment-body"),
        ("title", "data-comment-title"),
        ("problem", "data-problem-id"),
    ] {
        if let Some(v) = n.attribute(xml) {
            let _ = write!(html, " {data}=\"{}\"", escape(v));
        }
    }
    let _ = write!(html, " title=\"{}\">", escape(&format!("{title}: {body}")));
    let number = out.annotations.len() + 1;
    out.annotations.push(Annotation {
        number,
        title: title.to_string(),
        body: body.to_string(),
    });
    number
}
