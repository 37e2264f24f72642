//! The client-side files a plugin ships (contract 0.1.2 `client`): style sheets and scripts
//! in the `xbhost-assets` custom section the SDK's `client_assets!` writes, read once when
//! the plugin is checked or loaded. The section is the plugin author's, so everything in it
//! is bounded and checked here: how many files, their names (a plain relative path ending
//! in `.css` or `.js`, so a name is safe in a URL and says how to serve it) and sizes.
//!
//! Layout (see `xbhost_sdk::__private::assets_section`): a version byte (1), then per file
//! its name's length (u32, little-endian), the name (UTF-8), its content's length (u32) and
//! the content.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, bail};
use wasmparser::{Parser, Payload};

/// The custom section's name (the SDK's `ASSETS_SECTION`).
pub const ASSETS_SECTION: &str = xbhost_sdk::ASSETS_SECTION;
/// Most files one plugin ships.
pub const MAX_ASSET_FILES: usize = 64;
/// Largest file, in bytes.
pub const MAX_ASSET_BYTES: usize = 1 << 20;
/// Largest total, in bytes.
pub const MAX_ASSETS_TOTAL_BYTES: usize = 4 << 20;
/// Longest file name, in bytes.
pub const MAX_ASSET_NAME_BYTES: usize = 128;

/// What a shipped file is, by its name's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssetKind {
    Css,
    Js,
}

impl AssetKind {
    /// The `Content-Type` it is served with.
    pub fn content_type(self) -> &'static str {
        match self {
            AssetKind::Css => "text/css; charset=utf-8",
            AssetKind::Js => "text/javascript; charset=utf-8",
        }
    }
}

/// One shipped file.
#[derive(Debug, Clone)]
pub struct Asset {
    pub kind: AssetKind,
    pub bytes: bytes::Bytes,
}

/// A plugin's shipped files by name (empty for a plugin that ships none).
#[derive(Debug, Clone, Default)]
pub struct ClientAssets {
    files: BTreeMap<String, Asset>,
}

impl ClientAssets {
    pub fn get(&self, name: &str) -> Option<&Asset> {
        self.files.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// The kind a file name gives, if it is one a plugin may ship: a relative path of
/// segments of ASCII letters, digits, `_`, `-` and `.` (none empty, `.` or `..`), ending in
/// `.css` or `.js`.
pub fn asset_kind(name: &str) -> Option<AssetKind> {
    if name.is_empty() || name.len() > MAX_ASSET_NAME_BYTES {
        return None;
    }
    let segments_ok = name.split('/').all(|s| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    });
    if !segments_ok {
        return None;
    }
    if name.ends_with(".css") {
        Some(AssetKind::Css)
    } else if name.ends_with(".js") {
        Some(AssetKind::Js)
    } else {
        None
    }
}

/// The shipped files of a component (none when it has no `xbhost-assets` section). An
/// error says what is wrong with the section.
pub fn read_assets(wasm: &[u8]) -> Result<ClientAssets> {
    let mut found = None;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.context("it is truncated or malformed")?;
        if let Payload::CustomSection(section) = payload
            && section.name() == ASSETS_SECTION
        {
            if found.is_some() {
                bail!("it has two {ASSETS_SECTION} sections");
            }
            found = Some(parse_section(section.data())?);
        }
    }
    Ok(found.unwrap_or_default())
}

fn parse_section(data: &[u8]) -> Result<ClientAssets> {
    let context = || format!("its {ASSETS_SECTION} section");
    let mut rest = data;
    match take(&mut rest, 1).with_context(context)? {
        [1] => {}
        [v] => bail!("{} is version {v}; this host reads version 1", context()),
        _ => unreachable!(),
    }
    let mut files = BTreeMap::new();
    let mut total = 0usize;
    while !rest.is_empty() {
        if files.len() == MAX_ASSET_FILES {
            bail!(
                "{} holds more than {MAX_ASSET_FILES} files, the most a plugin may ship",
                context()
            );
        }
        let name_len = length(&mut rest).with_context(context)?;
        if name_len > MAX_ASSET_NAME_BYTES {
            bail!(
                "{} names a file of {name_len} bytes (at most {MAX_ASSET_NAME_BYTES})",
                context()
            );
        }
        let name = std::str::from_utf8(take(&mut rest, name_len).with_context(context)?)
            .with_context(|| format!("{} holds a file name that is not UTF-8", context()))?
            .to_string();
        let kind = asset_kind(&name).with_context(|| {
            format!(
                "{} holds {name:?}: a shipped file is a relative path of letters, digits, \
                 `_`, `-` and `.` ending in .css or .js",
                context()
            )
        })?;
        let len = length(&mut rest).with_context(context)?;
        if len > MAX_ASSET_BYTES {
            bail!(
                "{} holds {name:?} of {len} bytes, over the limit of {MAX_ASSET_BYTES}",
                context()
            );
        }
        total += len;
        if total > MAX_ASSETS_TOTAL_BYTES {
            bail!(
                "{}'s files are over {MAX_ASSETS_TOTAL_BYTES} bytes in all",
                context()
            );
        }
        let bytes = take(&mut rest, len).with_context(context)?;
        if std::str::from_utf8(bytes).is_err() {
            bail!("{} holds {name:?}, which is not UTF-8 text", context());
        }
        let asset = Asset {
            kind,
            bytes: bytes::Bytes::copy_from_slice(bytes),
        };
        if files.insert(name.clone(), asset).is_some() {
            bail!("{} holds {name:?} twice", context());
        }
    }
    Ok(ClientAssets { files })
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
    if rest.len() < n {
        bail!("it ends in the middle of a file");
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

fn length(rest: &mut &[u8]) -> Result<usize> {
    let bytes: [u8; 4] = take(rest, 4)?.try_into().expect("four bytes");
    Ok(u32::from_le_bytes(bytes) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = vec![1u8];
        for (name, data) in files {
            out.extend((name.len() as u32).to_le_bytes());
            out.extend(name.as_bytes());
            out.extend((data.len() as u32).to_le_bytes());
            out.extend(*data);
        }
        out
    }

    #[test]
    fn reads_what_the_sdk_writes() {
        const FILES: &[(&str, &[u8])] = &[("block.js", b"function F(){}"), ("css/a.css", b"p{}")];
        const LEN: usize = xbhost_sdk::__private::assets_len(FILES);
        let files = FILES;
        let data = section(files);
        // The SDK's const encoder writes the same bytes.
        let sdk: [u8; LEN] = xbhost_sdk::__private::assets_section(files);
        assert_eq!(&sdk[..], &data[..]);
        let assets = parse_section(&data).unwrap();
        assert_eq!(
            assets.names().collect::<Vec<_>>(),
            ["block.js", "css/a.css"]
        );
        assert_eq!(assets.get("block.js").unwrap().kind, AssetKind::Js);
        assert_eq!(&*assets.get("css/a.css").unwrap().bytes, b"p{}");
    }

    #[test]
    fn refuses_bad_names_sizes_and_layouts() {
        for name in [
            "../x.js", "/x.js", "a//b.js", "x.html", "x.js?", "a b.js", "", "./x.js",
        ] {
            let err = parse_section(&section(&[(name, b"")])).unwrap_err();
            assert!(
                format!("{err:#}").contains("shipped file") || name.is_empty(),
                "{name}: {err:#}"
            );
        }
        let big = vec![b'x'; MAX_ASSET_BYTES + 1];
        let err = parse_section(&section(&[("a.js", &big)])).unwrap_err();
        assert!(format!("{err:#}").contains("a.js"), "{err:#}");
        let err = parse_section(&section(&[("a.js", b"1"), ("a.js", b"2")])).unwrap_err();
        assert!(format!("{err:#}").contains("twice"), "{err:#}");
        let mut cut = section(&[("a.js", b"12345")]);
        cut.truncate(cut.len() - 2);
        assert!(format!("{:#}", parse_section(&cut).unwrap_err()).contains("middle"));
        assert!(format!("{:#}", parse_section(&[2]).unwrap_err()).contains("version 2"));
        let err = parse_section(&section(&[("a.js", &[0xff, 0xfe])])).unwrap_err();
        assert!(format!("{err:#}").contains("not UTF-8"), "{err:#}");
        let many: Vec<(String, &[u8])> = (0..=MAX_ASSET_FILES)
            .map(|i| (format!("f{i}.js"), &b""[..]))
            .collect();
        let many: Vec<(&str, &[u8])> = many.iter().map(|(n, d)| (n.as_str(), *d)).collect();
        assert!(format!("{:#}", parse_section(&section(&many)).unwrap_err()).contains("more than"));
        assert!(parse_section(&[1]).unwrap().is_empty());
    }
}
