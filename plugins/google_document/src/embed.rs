//! Reading an embed code: the first `<iframe>` or `<img>` start tag and its attributes,
//! scanned once (never more than the code's length), entities in values decoded.

/// What the embed code embeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Embed {
    Frame {
        src: String,
        width: Option<String>,
        height: Option<String>,
    },
    Image {
        src: String,
    },
}

/// The first iframe or image with a `src` in `code`; `None` when it has neither.
pub fn find(code: &str) -> Option<Embed> {
    let mut rest = code;
    while let Some(at) = rest.find('<') {
        rest = &rest[at + 1..];
        let name_len = rest
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(rest.len());
        let name = rest[..name_len].to_ascii_lowercase();
        if name != "iframe" && name != "img" {
            continue;
        }
        let (attrs, after) = attributes(&rest[name_len..]);
        rest = after;
        let get = |key: &str| attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let Some(src) = get("src").filter(|s| !s.trim().is_empty()) else {
            continue;
        };
        let src = src.trim().to_string();
        let dimension = |key: &str| get(key).filter(|v| is_dimension(v));
        return Some(if name == "iframe" {
            Embed::Frame {
                src,
                width: dimension("width"),
                height: dimension("height"),
            }
        } else {
            Embed::Image { src }
        });
    }
    None
}

/// A width or height as HTML writes one: digits, optionally a percent sign.
fn is_dimension(v: &str) -> bool {
    let digits = v.strip_suffix('%').unwrap_or(v);
    !digits.is_empty() && digits.len() <= 6 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The attributes of a start tag (names lowercased, values decoded) and what follows `>`.
fn attributes(mut s: &str) -> (Vec<(String, String)>, &str) {
    let mut out = Vec::new();
    loop {
        s = s.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
        if s.is_empty() {
            return (out, s);
        }
        if let Some(after) = s.strip_prefix('>') {
            return (out, after);
        }
        let name_len = s
            .find(|c: char| c.is_ascii_whitespace() || c == '=' || c == '>' || c == '/')
            .unwrap_or(s.len())
            .max(1);
        let name = s[..name_len].to_ascii_lowercase();
        s = s[name_len..].trim_start_matches(|c: char| c.is_ascii_whitespace());
        let mut value = String::new();
        if let Some(v) = s.strip_prefix('=') {
            let v = v.trim_start_matches(|c: char| c.is_ascii_whitespace());
            let (raw, after) = match v.chars().next() {
                Some(q @ ('"' | '\'')) => match v[1..].find(q) {
                    Some(end) => (&v[1..1 + end], &v[end + 2..]),
                    None => (&v[1..], ""),
                },
                _ => {
                    let end = v
                        .find(|c: char| c.is_ascii_whitespace() || c == '>')
                        .unwrap_or(v.len());
                    (&v[..end], &v[end..])
                }
            };
            value = decode_entities(raw);
            s = after;
        }
        out.push((name, value));
    }
}

/// Decodes the character references embed codes use (`&amp;`, `&quot;`, `&#39;`, ...).
fn decode_entities(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest[1..].find(';').map(|e| e + 1).filter(|&e| e <= 10);
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => Some('&'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "lt" => Some('<'),
                "gt" => Some('>'),
                _ => {
                    let number = name.strip_prefix('#')?;
                    let code = match number.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => number.parse().ok()?,
                    };
                    char::from_u32(code).filter(|c| !c.is_control())
                }
            }?;
            Some((c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::{Embed, find};

    #[test]
    fn finds_the_first_frame_with_its_size_and_decoded_src() {
        let code = "<p>x</p>\n<IFRAME\n  src=\"https://docs.google.com/a?b=1&amp;c=2\" frameborder='0'\n width=960 height=\"569\" allowfullscreen></iframe><iframe src=\"https://other\"></iframe>";
        assert_eq!(
            find(code),
            Some(Embed::Frame {
                src: "https://docs.google.com/a?b=1&c=2".into(),
                width: Some("960".into()),
                height: Some("569".into()),
            })
        );
    }

    #[test]
    fn finds_an_image_and_skips_tags_without_src() {
        let code = "<iframe title=\"no src\"></iframe><img alt=x src='https://docs.google.com/drawings/d/1/pub?w=9&#38;h=4'>";
        assert_eq!(
            find(code),
            Some(Embed::Image {
                src: "https://docs.google.com/drawings/d/1/pub?w=9&h=4".into()
            })
        );
    }

    #[test]
    fn odd_input_finds_nothing_or_keeps_what_it_cannot_decode() {
        assert_eq!(find(""), None);
        assert_eq!(find("just text <b>bold</b>"), None);
        assert_eq!(
            find("<iframe src=\"unterminated"),
            Some(Embed::Frame {
                src: "unterminated".into(),
                width: None,
                height: None,
            })
        );
        assert_eq!(
            find("<img src=\"a&bogus;b&#xZZ;&\" width=\"100px\">"),
            Some(Embed::Image {
                src: "a&bogus;b&#xZZ;&".into()
            })
        );
        assert_eq!(
            find("<iframe src=x width=\"1e9\">"),
            Some(Embed::Frame {
                src: "x".into(),
                width: None,
                height: None,
            })
        );
    }
}
