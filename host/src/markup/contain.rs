//! Containment of one block's HTML (the rules are in the module doc of `markup`): the
//! fragment parsed as a browser would parse it inside the wrapper, one pass over every node
//! (template contents too) that removes what the host reserves, then html5ever's serializer
//! over the tree, skipping what must not reach the page and filling in the children.

use html5ever::serialize::{HtmlSerializer, SerializeOpts, Serializer, TraversalScope};
use html5ever::tendril::StrTendril;
use html5ever::{Attribute, QualName, local_name, ns};

use super::dom::{self, Data, Dom, Id};
use super::reserved::{PLACEHOLDER_ELEMENT, PLACEHOLDER_TOKEN, reserved_attribute, reserved_class};
use super::slots::ChildHtml;
use crate::request::View;

/// What happens to an element.
enum Fate<'a> {
    Keep,
    Drop,
    /// A placeholder for a child's HTML, with its token.
    Child(&'a str),
}

/// A block's contained HTML.
pub(super) struct Contained {
    pub html: String,
    /// The parse stopped at one of its bounds (see `dom`): the input's rest was dropped.
    pub cut: bool,
}

pub(super) fn contain(html: &str, view: View, children: &mut ChildHtml) -> Contained {
    let strict = view != View::Student;
    let mut dom = dom::parse_fragment(html);
    for node in &mut dom.nodes {
        if let Data::Element { name, attrs, .. } = &mut node.data {
            clean_element(name, attrs, strict);
        }
    }
    Contained {
        html: serialize(&dom, html.len(), strict, children),
        cut: dom.cut,
    }
}

/// Removes host-reserved attributes and classes, shadow-root attributes, `srcdoc`, and (staff and
/// author views) `style` and `popover` (the top layer covers everything); turns the elements whose text would swallow markup
/// (`xmp`, `plaintext`) into `pre`.
fn clean_element(name: &mut QualName, attrs: &mut Vec<Attribute>, strict: bool) {
    if name.ns == ns!(html) {
        match &*name.local {
            // Its token is read when it is written out; it is never written itself.
            PLACEHOLDER_ELEMENT => return,
            "xmp" | "plaintext" => *name = QualName::new(None, ns!(html), local_name!("pre")),
            _ => {}
        }
    }
    attrs.retain_mut(|a| {
        let n = &*a.name.local;
        // `srcdoc` would make a same-origin frame that inherits the page's script policy:
        // a plugin's client file could run there with the page's rights.
        if reserved_attribute(n)
            || n.eq_ignore_ascii_case("srcdoc")
            || n.starts_with("shadowroot")
            || (strict && matches!(n, "style" | "popover"))
        {
            return false;
        }
        if n == "class" && a.value.split_ascii_whitespace().any(reserved_class) {
            let kept: Vec<&str> = a
                .value
                .split_ascii_whitespace()
                .filter(|c| !reserved_class(c))
                .collect();
            if kept.is_empty() {
                return false;
            }
            a.value = StrTendril::from_slice(&kept.join(" "));
        }
        true
    });
}

fn fate<'a>(name: &QualName, attrs: &'a [Attribute], strict: bool) -> Fate<'a> {
    let html = name.ns == ns!(html);
    match &*name.local {
        PLACEHOLDER_ELEMENT if html => attrs
            .iter()
            .find(|a| &*a.name.local == PLACEHOLDER_TOKEN)
            .map_or(Fate::Drop, |a| Fate::Child(&a.value)),
        PLACEHOLDER_ELEMENT => Fate::Drop,
        "script" if html && json_data(attrs) => Fate::Keep,
        "script" => Fate::Drop,
        "meta" | "base" if html => Fate::Drop,
        "style" if strict => Fate::Drop,
        "link" if strict && html => Fate::Drop,
        _ => Fate::Keep,
    }
}

/// A `<script>` of JSON: a data block, which no browser runs or fetches.
fn json_data(attrs: &[Attribute]) -> bool {
    attrs
        .iter()
        .find(|a| &*a.name.local == "type")
        .is_some_and(|a| {
            let essence = a.value.split(';').next().unwrap_or("").trim();
            essence.eq_ignore_ascii_case("application/json")
                || essence.to_ascii_lowercase().ends_with("+json")
        })
}

/// Deepest a placeholder is filled in: with [`dom::MAX_DEPTH`] and 32 levels of blocks (the
/// default render depth) a page stays well within Blink's 512, past which a browser puts
/// elements beside their parent instead of in it.
pub(super) const MAX_CHILD_DEPTH: usize = 8;

/// Below these a placeholder is not filled in: foreign content (SVG, MathML), templates
/// (inert), and select boxes (whose parsing differs between browsers).
fn opaque(name: &QualName) -> bool {
    name.ns != ns!(html)
        || matches!(
            &*name.local,
            "template" | "select" | "option" | "optgroup" | "datalist"
        )
}

enum Step {
    Enter(Id),
    Leave(Id),
}

fn serialize(dom: &Dom, size: usize, strict: bool, children: &mut ChildHtml) -> String {
    let opts = SerializeOpts {
        traversal_scope: TraversalScope::ChildrenOnly(Some(QualName::new(
            None,
            ns!(html),
            local_name!("div"),
        ))),
        ..SerializeOpts::default()
    };
    let mut ser = HtmlSerializer::new(Vec::with_capacity(size + size / 8), opts);
    let mut stack: Vec<Step> = dom.nodes[dom.fragment_root()]
        .first
        .map(Step::Enter)
        .into_iter()
        .collect();
    // Open elements, and how many of them keep a placeholder unfilled.
    let (mut depth, mut opaque_depth) = (0usize, 0usize);
    // Writing into a Vec cannot fail: the serializer's io::Results are all Ok.
    while let Some(step) = stack.pop() {
        let id = match step {
            Step::Enter(id) => id,
            Step::Leave(id) => {
                if let Data::Element { name, .. } = &dom.nodes[id].data {
                    depth -= 1;
                    opaque_depth -= usize::from(opaque(name));
                    let _ = ser.end_elem(name.clone());
                }
                continue;
            }
        };
        let node = &dom.nodes[id];
        if let Some(next) = node.next {
            stack.push(Step::Enter(next));
        }
        match &node.data {
            Data::Text(text) => write_text(&mut ser, dom, node.parent, text),
            Data::Element {
                name,
                attrs,
                template,
                ..
            } => match fate(name, attrs, strict) {
                Fate::Keep => {
                    let _ =
                        ser.start_elem(name.clone(), attrs.iter().map(|a| (&a.name, &*a.value)));
                    depth += 1;
                    opaque_depth += usize::from(opaque(name));
                    stack.push(Step::Leave(id));
                    if let Some(first) = dom.nodes[template.unwrap_or(id)].first {
                        stack.push(Step::Enter(first));
                    }
                }
                Fate::Drop => {}
                Fate::Child(token) => {
                    if opaque_depth == 0
                        && depth <= MAX_CHILD_DEPTH
                        && let Some(html) = children.take(token)
                    {
                        ser.writer.extend_from_slice(html.as_bytes());
                    }
                }
            },
            Data::Root | Data::Other => {}
        }
    }
    String::from_utf8(ser.writer)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Text, as the serializer writes it; in the elements whose text it writes unescaped, no
/// `<` (so no second parse can find markup in it): a CSS escape in style sheets, a JSON
/// escape in JSON data, and none at all where browsers never show the text.
fn write_text(ser: &mut HtmlSerializer<Vec<u8>>, dom: &Dom, parent: Option<Id>, text: &str) {
    let _ = match parent.and_then(|p| dom.html_name(p)) {
        Some("style") => ser.write_text(&text.replace('<', "\\3c ")),
        Some("script") => ser.write_text(&text.replace('<', "\\u003c")),
        Some("iframe" | "noembed" | "noframes" | "noscript") => Ok(()),
        _ => ser.write_text(text),
    };
}
