//! The tree html5ever builds from a block's HTML: an arena of nodes linked to parent and
//! siblings, so every tree operation the parser asks for is O(1), nothing recurses, and
//! nothing panics on any input. Comments and processing instructions are kept as nodes the
//! caller skips.
//!
//! Parsing is bounded, because the HTML5 algorithm is not linear on hostile input: each
//! `<div>` scans the open elements for a `<p>` (so 20,000 nested `<div>`s take a second and
//! a megabyte of them minutes), and formatting elements are re-created in every paragraph
//! (so a few bytes can build thousands of nodes). A browser caps the depth (Blink at 512);
//! here the parse stops at the first token past any of [`MAX_DEPTH`], a node count of the
//! input's length plus [`EXTRA_NODES`], or [`WORK_PER_BYTE`] element-name lookups per byte
//! of input (the scans), and what was built so far is the block's HTML.

use std::borrow::Cow;
use std::cell::{Cell, Ref, RefCell};

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::{
    BufferQueue, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use html5ever::tree_builder::{
    ElementFlags, NodeOrText, QuirksMode, TreeBuilder, TreeBuilderOpts, TreeSink, create_element,
};
use html5ever::{Attribute, QualName, TokenizerResult, local_name, ns};

/// Deepest nesting of elements kept.
pub const MAX_DEPTH: u32 = 128;
/// Nodes allowed beyond one per byte of input.
pub const EXTRA_NODES: usize = 4096;
/// Parser work allowed per byte of input (and 64 Ki to start with).
pub const WORK_PER_BYTE: u64 = 16;

pub type Id = usize;

pub enum Data {
    /// The document, or a template's contents.
    Root,
    Element {
        name: QualName,
        attrs: Vec<Attribute>,
        /// A template's contents (a `Root` node of their own).
        template: Option<Id>,
        /// A MathML `annotation-xml` whose content is HTML.
        html_annotation: bool,
    },
    Text(StrTendril),
    /// A comment or processing instruction.
    Other,
}

pub struct Node {
    /// Elements above it when it was inserted.
    depth: u32,
    pub parent: Option<Id>,
    pub prev: Option<Id>,
    pub next: Option<Id>,
    pub first: Option<Id>,
    pub last: Option<Id>,
    pub data: Data,
}

pub struct Dom {
    pub nodes: Vec<Node>,
    /// The parse stopped at a bound (see the module doc): the input's rest is not here.
    pub cut: bool,
    /// Answers `elem_name` for a handle that is not an element (html5ever never asks).
    no_name: QualName,
}

impl Dom {
    fn new() -> Dom {
        let mut dom = Dom {
            nodes: Vec::new(),
            cut: false,
            no_name: QualName::new(None, ns!(html), local_name!("div")),
        };
        dom.push(Data::Root);
        dom
    }

    fn push(&mut self, data: Data) -> Id {
        self.nodes.push(Node {
            depth: 0,
            parent: None,
            prev: None,
            next: None,
            first: None,
            last: None,
            data,
        });
        self.nodes.len() - 1
    }

    fn detach(&mut self, id: Id) {
        let Node {
            parent, prev, next, ..
        } = self.nodes[id];
        let Some(parent) = parent else { return };
        match prev {
            Some(p) => self.nodes[p].next = next,
            None => self.nodes[parent].first = next,
        }
        match next {
            Some(n) => self.nodes[n].prev = prev,
            None => self.nodes[parent].last = prev,
        }
        let node = &mut self.nodes[id];
        (node.parent, node.prev, node.next) = (None, None, None);
    }

    fn append(&mut self, parent: Id, id: Id) {
        self.detach(id);
        let last = self.nodes[parent].last;
        match last {
            Some(l) => self.nodes[l].next = Some(id),
            None => self.nodes[parent].first = Some(id),
        }
        let depth = self.nodes[parent].depth + 1;
        let node = &mut self.nodes[id];
        (node.parent, node.prev, node.depth) = (Some(parent), last, depth);
        self.nodes[parent].last = Some(id);
        self.cut |= depth > MAX_DEPTH;
    }

    fn insert_before(&mut self, sibling: Id, id: Id) {
        self.detach(id);
        let Some(parent) = self.nodes[sibling].parent else {
            return;
        };
        let prev = self.nodes[sibling].prev;
        match prev {
            Some(p) => self.nodes[p].next = Some(id),
            None => self.nodes[parent].first = Some(id),
        }
        self.nodes[sibling].prev = Some(id);
        let depth = self.nodes[sibling].depth;
        let node = &mut self.nodes[id];
        (node.parent, node.prev, node.next, node.depth) =
            (Some(parent), prev, Some(sibling), depth);
    }

    /// Text after `prev` (if any) under `parent`: joined to a text node there, else new.
    fn text_node(&mut self, prev: Option<Id>, text: StrTendril) -> Option<Id> {
        if let Some(p) = prev
            && let Data::Text(t) = &mut self.nodes[p].data
        {
            t.push_tendril(&text);
            return None;
        }
        Some(self.push(Data::Text(text)))
    }

    /// The element's local name in the HTML namespace, or `None`.
    pub fn html_name(&self, id: Id) -> Option<&str> {
        match &self.nodes[id].data {
            Data::Element { name, .. } if name.ns == ns!(html) => Some(&name.local),
            _ => None,
        }
    }

    /// The parsed fragment's nodes sit under an `html` element below the document.
    pub fn fragment_root(&self) -> Id {
        self.nodes[0].first.unwrap_or(0)
    }
}

/// Parses a fragment of HTML as the content of a `div` (the host's wrapper), as a browser
/// would, scripting on (the page's browser runs scripts), within the bounds above.
pub fn parse_fragment(html: &str) -> Dom {
    let sink = Sink {
        dom: RefCell::new(Dom::new()),
        work: Cell::new(0),
        max_work: WORK_PER_BYTE * html.len() as u64 + 65_536,
        max_nodes: html.len() + EXTRA_NODES,
    };
    // What html5ever's `parse_fragment` does, with the guard between tokenizer and tree
    // builder.
    let context = create_element(
        &sink,
        QualName::new(None, ns!(html), local_name!("div")),
        Vec::new(),
    );
    let builder = TreeBuilder::new_for_fragment(sink, context, None, TreeBuilderOpts::default());
    let opts = TokenizerOpts {
        initial_state: Some(builder.tokenizer_state_for_context_elem(false)),
        ..TokenizerOpts::default()
    };
    let tokenizer = Tokenizer::new(Guard(builder), opts);
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    while !matches!(tokenizer.feed(&input), TokenizerResult::Done) {}
    tokenizer.end();
    let Guard(builder) = tokenizer.sink;
    builder.sink.finish()
}

/// Hands tokens to the tree builder until the parse is over a bound, then drops them.
struct Guard(TreeBuilder<Id, Sink>);

impl TokenSink for Guard {
    type Handle = Id;

    fn process_token(&self, token: Token, line_number: u64) -> TokenSinkResult<Id> {
        if self.0.sink.over() {
            return TokenSinkResult::Continue;
        }
        self.0.process_token(token, line_number)
    }

    fn end(&self) {
        if !self.0.sink.over() {
            self.0.end();
        }
    }

    fn adjusted_current_node_present_but_not_in_html_namespace(&self) -> bool {
        self.0
            .adjusted_current_node_present_but_not_in_html_namespace()
    }
}

struct Sink {
    dom: RefCell<Dom>,
    /// Element names looked up (the tree builder's scans of its open elements).
    work: Cell<u64>,
    max_work: u64,
    max_nodes: usize,
}

impl Sink {
    /// Whether the parse is over a bound (and so stops).
    fn over(&self) -> bool {
        let mut dom = self.dom.borrow_mut();
        dom.cut |= self.work.get() > self.max_work || dom.nodes.len() > self.max_nodes;
        dom.cut
    }
}

impl TreeSink for Sink {
    type Handle = Id;
    type Output = Dom;
    type ElemName<'a> = Ref<'a, QualName>;

    fn finish(self) -> Dom {
        self.dom.into_inner()
    }

    fn parse_error(&self, _msg: Cow<'static, str>) {}

    fn get_document(&self) -> Id {
        0
    }

    fn elem_name<'a>(&'a self, target: &'a Id) -> Ref<'a, QualName> {
        self.work.set(self.work.get() + 1);
        Ref::map(self.dom.borrow(), |dom| match &dom.nodes[*target].data {
            Data::Element { name, .. } => name,
            _ => &dom.no_name,
        })
    }

    fn create_element(&self, name: QualName, attrs: Vec<Attribute>, flags: ElementFlags) -> Id {
        let mut dom = self.dom.borrow_mut();
        let template = flags.template.then(|| dom.push(Data::Root));
        dom.push(Data::Element {
            name,
            attrs,
            template,
            html_annotation: flags.mathml_annotation_xml_integration_point,
        })
    }

    fn create_comment(&self, _text: StrTendril) -> Id {
        self.dom.borrow_mut().push(Data::Other)
    }

    fn create_pi(&self, _target: StrTendril, _data: StrTendril) -> Id {
        self.dom.borrow_mut().push(Data::Other)
    }

    fn append(&self, parent: &Id, child: NodeOrText<Id>) {
        let mut dom = self.dom.borrow_mut();
        let id = match child {
            NodeOrText::AppendNode(id) => id,
            NodeOrText::AppendText(text) => {
                let last = dom.nodes[*parent].last;
                match dom.text_node(last, text) {
                    Some(id) => id,
                    None => return,
                }
            }
        };
        dom.append(*parent, id);
    }

    fn append_based_on_parent_node(&self, element: &Id, prev_element: &Id, child: NodeOrText<Id>) {
        let has_parent = self.dom.borrow().nodes[*element].parent.is_some();
        if has_parent {
            self.append_before_sibling(element, child);
        } else {
            self.append(prev_element, child);
        }
    }

    fn append_doctype_to_document(&self, _: StrTendril, _: StrTendril, _: StrTendril) {}

    fn get_template_contents(&self, target: &Id) -> Id {
        match &self.dom.borrow().nodes[*target].data {
            Data::Element {
                template: Some(contents),
                ..
            } => *contents,
            _ => *target,
        }
    }

    fn same_node(&self, x: &Id, y: &Id) -> bool {
        x == y
    }

    fn set_quirks_mode(&self, _mode: QuirksMode) {}

    fn append_before_sibling(&self, sibling: &Id, child: NodeOrText<Id>) {
        let mut dom = self.dom.borrow_mut();
        let id = match child {
            NodeOrText::AppendNode(id) => id,
            NodeOrText::AppendText(text) => {
                let prev = dom.nodes[*sibling].prev;
                match dom.text_node(prev, text) {
                    Some(id) => id,
                    None => return,
                }
            }
        };
        dom.insert_before(*sibling, id);
    }

    fn add_attrs_if_missing(&self, target: &Id, add: Vec<Attribute>) {
        if let Data::Element { attrs, .. } = &mut self.dom.borrow_mut().nodes[*target].data {
            for a in add {
                if !attrs.iter().any(|b| b.name == a.name) {
                    attrs.push(a);
                }
            }
        }
    }

    fn remove_from_parent(&self, target: &Id) {
        self.dom.borrow_mut().detach(*target);
    }

    fn reparent_children(&self, node: &Id, new_parent: &Id) {
        let mut dom = self.dom.borrow_mut();
        while let Some(child) = dom.nodes[*node].first {
            dom.append(*new_parent, child);
        }
    }

    fn is_mathml_annotation_xml_integration_point(&self, handle: &Id) -> bool {
        matches!(
            self.dom.borrow().nodes[*handle].data,
            Data::Element {
                html_annotation: true,
                ..
            }
        )
    }

    /// Declarative shadow roots stay plain templates (the containment removes their
    /// `shadowrootmode`, so the browser does not attach them either).
    fn allow_declarative_shadow_roots(&self, _intended_parent: &Id) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree as nested names and texts, for comparison.
    fn outline(dom: &Dom, id: Id) -> String {
        let mut out = String::new();
        let mut child = dom.nodes[id].first;
        while let Some(c) = child {
            match &dom.nodes[c].data {
                Data::Element { name, template, .. } => {
                    out.push_str(&format!("({}", name.local));
                    out.push_str(&outline(dom, template.unwrap_or(c)));
                    out.push(')');
                }
                Data::Text(t) => out.push_str(&format!("{:?}", &**t)),
                Data::Root => out.push('?'),
                Data::Other => out.push('!'),
            }
            child = dom.nodes[c].next;
        }
        out
    }

    #[test]
    fn builds_the_tree_a_browser_builds() {
        let case = |html: &str| {
            let dom = parse_fragment(html);
            outline(&dom, dom.fragment_root())
        };
        // Misnested formatting (the adoption agency moves nodes), foster parenting out of a
        // table, texts joined, a template's contents, a comment, a stray end tag ignored.
        assert_eq!(case("<b>1<p>2</b>3</p></div>"), "(b\"1\")(p(b\"2\")\"3\")");
        assert_eq!(
            case("<table>a<tr><td>b</table>"),
            "\"a\"(table(tbody(tr(td\"b\"))))"
        );
        assert_eq!(
            case("x<!--c-->y<template><i>t</i></template>"),
            "\"x\"!\"y\"(template(i\"t\"))"
        );
        assert_eq!(case("<svg><p>out</svg>"), "(svg)(p\"out\")");
    }

    #[test]
    fn hostile_input_stops_the_parse_at_a_bound() {
        let timed = |html: &str| {
            let started = std::time::Instant::now();
            let dom = parse_fragment(html);
            (dom, started.elapsed())
        };
        // Nesting: a megabyte of `<div>` would take minutes.
        let (dom, took) = timed(&"<div>".repeat(200_000));
        assert!(
            dom.cut && dom.nodes.len() < 2 * MAX_DEPTH as usize,
            "{}",
            dom.nodes.len()
        );
        assert!(took.as_millis() < 500, "{took:?}");
        // Formatting elements re-created in every paragraph: nodes bounded by the input.
        let mut html: String = (0..200).map(|i| format!("<b id={i}>")).collect();
        html.push_str(&"</p><p>x".repeat(100_000));
        let (dom, took) = timed(&html);
        assert!(dom.cut && dom.nodes.len() <= html.len() + EXTRA_NODES + 1000);
        assert!(took.as_millis() < 1000, "{took:?}");
        // Scans at a depth within the bound: stopped by the work.
        let html = format!("{}{}", "<div>".repeat(120), "<p></p>".repeat(150_000));
        let (dom, took) = timed(&html);
        assert!(dom.cut, "{}", dom.nodes.len());
        assert!(took.as_millis() < 500, "{took:?}");
        // Ordinary HTML is not cut.
        let html = "<div><p>a <b>b</b> <i>c</i></p><ul><li>d</li></ul></div>".repeat(10_000);
        assert!(!parse_fragment(&html).cut);
    }
}
