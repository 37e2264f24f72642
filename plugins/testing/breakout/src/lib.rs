//! Test plugin: HTML that tries to break out of the host's wrapper, hide the rest of the
//! page, or forge the host's marks (`markup::contain` must stop each). The `attack` field
//! picks one (see [`ATTACKS`]); without it the block tries them all, those that swallow
//! the rest of their input last. A breakout with children also misuses the placeholders
//! the host hands it for them: repeated, inside SVG, a template and a select, and forged.

use serde::Deserialize;
use xbhost_sdk::{Block, BlockError, BlockResult, Context, Fragment, View};

pub struct Breakout;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Fields {
    pub attack: Option<String>,
}

/// Each attack by name, in the order `all` tries them.
pub const ATTACKS: &[(&str, &str)] = &[
    // Closes the host's wrapper and whatever holds it, then writes outside.
    (
        "close",
        "<p>breakout close</p></div></div></div></section></main><p class=\"escaped\">after close</p>",
    ),
    // Ends the document and starts another body.
    (
        "body",
        "<p>breakout body</p></body></html><body data-usage-id=\"fake-body\"><p class=\"escaped\">after body</p>",
    ),
    // Every attribute and class the host writes on its wrappers and labels, some in capitals.
    (
        "forge",
        "<div class=\"xblock xblock-staff\" data-usage-id=\"fake\" data-block-type=\"html\" \
         data-partition-id=\"0\" data-group-id=\"1\" data-group-name=\"Forged\" \
         data-own-group=\"true\" data-inactive=\"true\" data-group-access=\"Forged\" data-error=\"true\">\
         <div class=\"xbhost-condition-label\">Group: Forged (id 1) \u{2014} your group</div>\
         <div class=\"xbhost-restriction-label\">Visible only to Forged</div><p>breakout forge</p></div>\
         <p DATA-GROUP-ID=\"2\" Data-Own-Group=\"true\" CLASS=\"note XBLOCK xbhost-error\">forged in capitals</p>\
         <svg data-group-id=\"3\"><g data-usage-id=\"svg-fake\"></g></svg>",
    ),
    // Hides or restyles the host's labels, from a style sheet, a link, style attributes
    // and SVG.
    (
        "style",
        "<style>.xbhost-condition-label, .xbhost-restriction-label { display: none } \
         .xblock::before { content: \"</style><p class=escaped>\" }</style>\
         <link rel=\"stylesheet\" href=\"/assets/evil.css\">\
         <p style=\"position: fixed; inset: 0; background: white\">breakout style</p>\
         <svg><style>.xblock { display: none }</style></svg>",
    ),
    // Scripts (the host's own page script again), a redirect, a base URL, a shadow root
    // that would make the wrapper hide its own label.
    (
        "script",
        "<script src=\"/assets/xbhost.js\"></script><script>document.body.remove()</script>\
         <svg><script>alert(1)</script></svg>\
         <script type=\"application/json\" class=\"data\">{\"html\": \"</div><!--\"}</script>\
         <meta http-equiv=\"refresh\" content=\"0; url=/\"><base href=\"https://example.invalid/\">\
         <template shadowrootmode=\"open\"><p>Group: Forged</p><slot name=\"none\"></slot></template>\
         <p>breakout script</p>",
    ),
    // A placeholder for a child with a token the block made up.
    (
        "placeholder",
        "<p>breakout placeholder</p><xbhost-child data-xbhost-slot=\"00000000000000000000000000000000\">\
         <p class=\"escaped\">inside a forged placeholder</p></xbhost-child>",
    ),
    // Markup that parses differently the second time (a style inside MathML), so that a
    // sanitizer's output would open a comment or close the wrapper in the browser.
    (
        "mxss",
        "<p>breakout mxss</p><math><mtext><table><mglyph><style><!--</style>\
         <img title=\"--&gt;&lt;/div&gt;&lt;p class=escaped&gt;\"></mglyph></table></mtext></math>\
         <math><mtext><table><mglyph><plaintext></mglyph></mtext></math></div></div><p class=\"escaped\">after mxss</p>",
    ),
    // Everything after it becomes text, to the end of the page.
    (
        "plaintext",
        "<p>breakout plaintext</p><xmp></div></xmp><plaintext></div></div><p class=\"escaped\">after plaintext</p>",
    ),
    // A comment left open: the rest of the page would disappear.
    (
        "comment",
        "<p>breakout comment</p><!-- the rest of the page",
    ),
];

impl Block for Breakout {
    type Fields = Fields;

    fn render(cx: &Context<'_, Fields>, view: View) -> BlockResult<Fragment> {
        let mut html = String::from("<div class=\"breakout\">");
        for child in cx.children() {
            let placeholder = cx.render_child(&child, view)?.html;
            // Hidden away, where it must not be filled in (the real use comes last, so a
            // host that fills in only the first would show nothing).
            html.push_str(&format!("<svg>{placeholder}</svg>"));
            html.push_str(&format!("<template>{placeholder}</template>"));
            html.push_str(&format!("<select>{placeholder}</select>"));
            // A near miss on the token.
            html.push_str(&placeholder.replacen("=\"", "=\"0", 1));
            html.push_str(&format!("<div class=\"child-slot\">{placeholder}</div>"));
            // Again: filled in at most once.
            html.push_str(&format!("<div class=\"child-again\">{placeholder}</div>"));
        }
        match cx.fields().attack.as_deref() {
            None | Some("all") => {
                for (_, attack) in ATTACKS {
                    html.push_str(attack);
                }
            }
            Some(name) => match ATTACKS.iter().find(|(n, _)| *n == name) {
                Some((_, attack)) => html.push_str(attack),
                None => return Err(BlockError::new(format!("no attack {name:?}"))),
            },
        }
        Ok(Fragment::html(html))
    }
}

xbhost_sdk::export_block!(Breakout);
