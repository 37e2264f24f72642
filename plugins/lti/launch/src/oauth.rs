//! OAuth 1.0 request signing with HMAC-SHA1 (RFC 5849 section 3.4), as LTI 1.1 launches use
//! it: the signature base string from the method, the base string URI and the normalized
//! parameters (the URL's query and the form's body), keyed by the client secret.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha1::Sha1;

/// RFC 5849 3.6: everything but the unreserved characters `A-Z a-z 0-9 - . _ ~`.
const OAUTH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes `s` as OAuth requires (RFC 5849 3.6).
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, OAUTH).to_string()
}

/// An absolute `http`/`https` URL split as signing needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedUrl {
    /// RFC 5849 3.4.1.2: scheme and host lowercased, the default port left out, the path
    /// (`/` if empty), no query or fragment.
    pub base_uri: String,
    /// The query's parameters, decoded (they are signed with the body's).
    pub query: Vec<(String, String)>,
    /// `scheme://host[:port]`, as written (lowercased), for messages and policies.
    pub origin: String,
}

/// Reads `url` for signing, or says what is wrong with it.
pub fn parse_url(url: &str) -> Result<SignedUrl, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("{url:?} is not an absolute URL"))?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return Err(format!("{url:?} is not an http or https URL")),
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let (authority, path_query) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') || authority.contains(char::is_whitespace) {
        return Err(format!(
            "{url:?} has no host, or one with user information or spaces"
        ));
    }
    let authority = authority.to_ascii_lowercase();
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port == default_port => host.to_string(),
        Some((_, port)) if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(format!("{url:?} has a port that is not a number"));
        }
        _ => authority.clone(),
    };
    let (path, query) = match path_query.split_once('?') {
        Some((p, q)) => (p, q),
        None => (path_query, ""),
    };
    let path = if path.is_empty() { "/" } else { path };
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(k), form_decode(v))
        })
        .collect();
    Ok(SignedUrl {
        base_uri: format!("{scheme}://{host}{path}"),
        query,
        origin: format!("{scheme}://{authority}"),
    })
}

/// Decodes a query component (`+` is a space, `%XX` a byte; invalid UTF-8 replaced).
fn form_decode(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// RFC 5849 3.4.1: `METHOD&base-uri&normalized-parameters`, each part percent-encoded;
/// the parameters encoded, sorted by name then value, joined with `=` and `&`.
pub fn base_string(method: &str, base_uri: &str, params: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> =
        params.iter().map(|(k, v)| (encode(k), encode(v))).collect();
    encoded.sort();
    let normalized = encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        encode(base_uri),
        encode(&normalized)
    )
}

/// RFC 5849 3.4.2: base64 of HMAC-SHA1 over the base string, keyed by the encoded client
/// secret and token secret joined with `&` (LTI launches have no token: `""`).
pub fn hmac_sha1(base_string: &str, client_secret: &str, token_secret: &str) -> String {
    let key = format!("{}&{}", encode(client_secret), encode(token_secret));
    let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(base_string.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Hex of HMAC-SHA1 over `message` keyed by `key` (identifiers derived from a secret).
pub fn hmac_hex(key: &str, message: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(message.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{base_string, encode, hmac_sha1, parse_url};

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The signed request of RFC 5849 section 1.2 (and its Appendix-style variant of
    /// OAuth Core 1.0, A.5.1): the published signatures.
    #[test]
    fn signs_the_published_oauth_1_0_test_vectors() {
        let url =
            parse_url("http://photos.example.net/photos?file=vacation.jpg&size=original").unwrap();
        assert_eq!(url.base_uri, "http://photos.example.net/photos");
        let mut params = url.query.clone();
        params.extend(pairs(&[
            ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
            ("oauth_token", "nnch734d00sl2jdk"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "137131202"),
            ("oauth_nonce", "chapoH"),
        ]));
        let base = base_string("GET", &url.base_uri, &params);
        assert_eq!(
            hmac_sha1(&base, "kd94hf93k423kf44", "pfkkdhi9sl3r4s00"),
            "MdpQcU8iPSUjWoN/UDMsK2sui9I="
        );

        let mut params = url.query.clone();
        params.extend(pairs(&[
            ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
            ("oauth_token", "nnch734d00sl2jdk"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "1191242096"),
            ("oauth_nonce", "kllo9940pd9333jh"),
            ("oauth_version", "1.0"),
        ]));
        let base = base_string("GET", &url.base_uri, &params);
        assert_eq!(
            base,
            "GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oauth_nonce%3Dkllo9940pd9333jh%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1191242096%26oauth_token%3Dnnch734d00sl2jdk%26oauth_version%3D1.0%26size%3Doriginal"
        );
        assert_eq!(
            hmac_sha1(&base, "kd94hf93k423kf44", "pfkkdhi9sl3r4s00"),
            "tR3+Ty81lMeYAr/Fid0kMTYa/WM="
        );
    }

    /// A POST with body parameters that need encoding (Twitter's published example).
    #[test]
    fn signs_a_post_with_encoded_body_parameters() {
        let params = pairs(&[
            (
                "status",
                "Hello Ladies + Gentlemen, a signed OAuth request!",
            ),
            ("include_entities", "true"),
            ("oauth_consumer_key", "xvz1evFS4wEEPTGEFPHBog"),
            ("oauth_nonce", "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "1318622958"),
            (
                "oauth_token",
                "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
            ),
            ("oauth_version", "1.0"),
        ]);
        let base = base_string(
            "post",
            "https://api.twitter.com/1.1/statuses/update.json",
            &params,
        );
        assert_eq!(
            hmac_sha1(
                &base,
                "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
                "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE"
            ),
            "hCtSmYh+iHYCEqBWrE7C7hYmtUk="
        );
    }

    #[test]
    fn urls_are_normalized_and_bad_ones_named() {
        let u = parse_url("HTTPS://Tool.Example:443/Launch?a=1&b=x+y%21#frag").unwrap();
        assert_eq!(u.base_uri, "https://tool.example/Launch");
        assert_eq!(u.origin, "https://tool.example:443");
        assert_eq!(
            u.query,
            vec![("a".into(), "1".into()), ("b".into(), "x y!".into())]
        );
        assert_eq!(
            parse_url("http://h:8080").unwrap().base_uri,
            "http://h:8080/"
        );
        for bad in [
            "codeboard.io/lti",
            "ftp://x/y",
            "https://",
            "https://u:p@h/",
            "http://h:x/",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
        assert_eq!(encode("a b&c=d~ü"), "a%20b%26c%3Dd~%C3%BC");
    }
}
