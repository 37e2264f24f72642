//! The LTI 1.1 launch a block makes: Open edX's parameters (`LTIBlock.oauth_params`,
//! `get_input_fields`) for the current learner, signed with the course's passport.

use serde::Deserialize;

use crate::oauth::{SignedUrl, base_string, hmac_hex, hmac_sha1, parse_url};

/// The LTI parameters a custom parameter may set under its own name; others get `custom_`
/// (Open edX's `PARAMETERS`, from the LTI 1.1.1 specification).
const STANDARD_PARAMETERS: &[&str] = &[
    "lti_message_type",
    "lti_version",
    "resource_link_title",
    "resource_link_description",
    "user_image",
    "lis_person_name_given",
    "lis_person_name_family",
    "lis_person_name_full",
    "lis_person_contact_email_primary",
    "lis_person_sourcedid",
    "role_scope_mentor",
    "context_type",
    "context_title",
    "context_label",
    "launch_presentation_locale",
    "launch_presentation_document_target",
    "launch_presentation_css_url",
    "launch_presentation_width",
    "launch_presentation_height",
    "launch_presentation_return_url",
    "tool_consumer_info_product_family_code",
    "tool_consumer_info_version",
    "tool_consumer_instance_guid",
    "tool_consumer_instance_name",
    "tool_consumer_instance_description",
    "tool_consumer_instance_url",
    "tool_consumer_instance_contact_email",
];

/// The key and secret of the course's `lti_passports` entry for the block's `lti_id`
/// (the importer puts it in the block's fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Passport {
    pub key: String,
    pub secret: String,
}

/// Who is launching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launcher {
    pub course_key: String,
    pub usage_id: String,
    pub user_id: String,
    pub username: String,
    pub is_staff: bool,
}

/// What a launch sends, besides who launches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LaunchSettings {
    pub launch_url: String,
    /// `"name=value"` entries, as authored.
    pub custom_parameters: Vec<String>,
    pub ask_to_send_username: bool,
    /// No passport: signed with an empty key and secret, as Open edX does.
    pub passport: Option<Passport>,
    /// `launch_presentation_document_target` (`lti_consumer` sends it; `lti` does not).
    pub document_target: Option<&'static str>,
}

/// A signed launch: where the form posts and every field it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedLaunch {
    pub url: SignedUrl,
    /// The form's fields, `oauth_signature` included, sorted by name.
    pub fields: Vec<(String, String)>,
}

/// Python's `urllib.parse.quote` (what Open edX passes ids through): all but unreserved
/// characters and `/`.
fn quote(s: &str) -> String {
    const QUOTE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b'/');
    percent_encoding::utf8_percent_encode(s, QUOTE).to_string()
}

/// The custom parameters as launch fields, or the entry that is not `name=value`.
pub fn custom_fields(custom: &[String]) -> Result<Vec<(String, String)>, String> {
    custom
        .iter()
        .map(|entry| {
            let (name, value) = entry.split_once('=').ok_or_else(|| {
                format!("Could not parse custom parameter: {entry:?}. Should be \"x=y\" string.")
            })?;
            let name = name.trim();
            let name = if STANDARD_PARAMETERS.contains(&name) {
                name.to_string()
            } else {
                format!("custom_{name}")
            };
            Ok((name, value.trim().to_string()))
        })
        .collect()
}

impl Launcher {
    /// The learner's id as the tool sees it: stable per course and tool, and not the
    /// host's user id (Open edX sends an anonymous id): HMAC-SHA1 of course and user under
    /// the tool's secret.
    pub fn anonymous_id(&self, secret: &str) -> String {
        let id = hmac_hex(
            secret,
            &format!("xbhost-lti-user\0{}\0{}", self.course_key, self.user_id),
        );
        id[..32].to_string()
    }
}

impl LaunchSettings {
    /// The signed launch for `who` at `timestamp` (seconds) with `nonce`, or what is wrong
    /// with the settings (a launch URL that is not http(s), a custom parameter that is not
    /// `name=value`).
    pub fn sign(
        &self,
        who: &Launcher,
        timestamp: u64,
        nonce: &str,
    ) -> Result<SignedLaunch, String> {
        let url = parse_url(self.launch_url.trim()).map_err(|e| format!("launch_url {e}"))?;
        let passport = self.passport.clone().unwrap_or_default();
        let user_id = who.anonymous_id(&passport.secret);
        let context_id = who.course_key.clone();
        let resource_link_id = quote(&format!("{}-{}", who.course_key, who.usage_id));
        let mut fields: Vec<(String, String)> = vec![
            ("user_id".into(), user_id.clone()),
            ("oauth_callback".into(), "about:blank".into()),
            ("launch_presentation_return_url".into(), String::new()),
            ("lti_message_type".into(), "basic-lti-launch-request".into()),
            ("lti_version".into(), "LTI-1p0".into()),
            (
                "roles".into(),
                if who.is_staff {
                    "Administrator"
                } else {
                    "Student"
                }
                .into(),
            ),
            ("resource_link_id".into(), resource_link_id.clone()),
            (
                "lis_result_sourcedid".into(),
                format!("{}:{resource_link_id}:{user_id}", quote(&context_id)),
            ),
            ("context_id".into(), context_id),
        ];
        if self.ask_to_send_username && !who.username.is_empty() {
            fields.push(("lis_person_sourcedid".into(), who.username.clone()));
        }
        if let Some(target) = self.document_target {
            fields.push(("launch_presentation_document_target".into(), target.into()));
        }
        for (name, value) in custom_fields(&self.custom_parameters)? {
            // As Open edX's dict update: a custom parameter replaces a field of its name.
            fields.retain(|(n, _)| *n != name);
            fields.push((name, value));
        }
        fields.extend([
            ("oauth_consumer_key".to_string(), passport.key.clone()),
            ("oauth_nonce".to_string(), nonce.to_string()),
            (
                "oauth_signature_method".to_string(),
                "HMAC-SHA1".to_string(),
            ),
            ("oauth_timestamp".to_string(), timestamp.to_string()),
            ("oauth_version".to_string(), "1.0".to_string()),
        ]);
        let mut signed = url.query.clone();
        signed.extend(fields.iter().cloned());
        let signature = hmac_sha1(
            &base_string("POST", &url.base_uri, &signed),
            &passport.secret,
            "",
        );
        fields.push(("oauth_signature".into(), signature));
        fields.sort();
        Ok(SignedLaunch { url, fields })
    }
}

/// A nonce for a launch: 16 random bytes as hex.
pub fn new_nonce() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| format!("no random numbers for the launch's nonce: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::{LaunchSettings, Launcher, Passport, custom_fields, new_nonce};
    use crate::oauth::{base_string, hmac_sha1};

    fn who(staff: bool) -> Launcher {
        Launcher {
            course_key: "course-v1:O+C+R".into(),
            usage_id: "lti1".into(),
            user_id: "ada".into(),
            username: "ada_l".into(),
            is_staff: staff,
        }
    }

    fn settings() -> LaunchSettings {
        LaunchSettings {
            launch_url: "https://tool.example/launch?course=7".into(),
            custom_parameters: vec![
                "next = https://x/y?a=1&b=2".into(),
                "context_title=Demo".into(),
            ],
            ask_to_send_username: true,
            passport: Some(Passport {
                key: "k1".into(),
                secret: "s3cr3t".into(),
            }),
            document_target: None,
        }
    }

    fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
        &fields
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name}"))
            .1
    }

    #[test]
    fn a_launch_carries_open_edx_parameters_and_a_verifiable_signature() {
        let launch = settings()
            .sign(&who(false), 1_700_000_000, "n0nce")
            .unwrap();
        let f = &launch.fields;
        assert_eq!(field(f, "lti_message_type"), "basic-lti-launch-request");
        assert_eq!(field(f, "lti_version"), "LTI-1p0");
        assert_eq!(field(f, "roles"), "Student");
        assert_eq!(field(f, "context_id"), "course-v1:O+C+R");
        assert_eq!(field(f, "resource_link_id"), "course-v1%3AO%2BC%2BR-lti1");
        assert_eq!(field(f, "oauth_consumer_key"), "k1");
        assert_eq!(field(f, "oauth_timestamp"), "1700000000");
        assert_eq!(field(f, "custom_next"), "https://x/y?a=1&b=2");
        assert_eq!(
            field(f, "context_title"),
            "Demo",
            "standard names keep their name"
        );
        assert_eq!(field(f, "lis_person_sourcedid"), "ada_l");
        let user = field(f, "user_id");
        assert_eq!(user.len(), 32);
        assert!(!user.contains("ada"));
        assert_eq!(
            field(f, "lis_result_sourcedid"),
            format!("course-v1%3AO%2BC%2BR:course-v1%3AO%2BC%2BR-lti1:{user}")
        );
        // The signature: over the query and every field but itself, keyed by "secret&".
        let mut signed: Vec<(String, String)> = vec![("course".into(), "7".into())];
        signed.extend(f.iter().filter(|(n, _)| n != "oauth_signature").cloned());
        let base = base_string("POST", "https://tool.example/launch", &signed);
        assert_eq!(field(f, "oauth_signature"), hmac_sha1(&base, "s3cr3t", ""));
        assert_eq!(launch.url.origin, "https://tool.example");
        // Another secret, another signature and another anonymous id.
        let mut other = settings();
        other.passport = Some(Passport {
            key: "k1".into(),
            secret: "other".into(),
        });
        let again = other.sign(&who(false), 1_700_000_000, "n0nce").unwrap();
        assert_ne!(
            field(&again.fields, "oauth_signature"),
            field(f, "oauth_signature")
        );
        assert_ne!(field(&again.fields, "user_id"), user);
    }

    #[test]
    fn staff_launch_as_administrators_and_names_are_sent_only_when_asked() {
        let mut s = settings();
        s.ask_to_send_username = false;
        s.document_target = Some("iframe");
        let launch = s.sign(&who(true), 1, "n").unwrap();
        assert_eq!(field(&launch.fields, "roles"), "Administrator");
        assert_eq!(
            field(&launch.fields, "launch_presentation_document_target"),
            "iframe"
        );
        assert!(
            !launch
                .fields
                .iter()
                .any(|(n, _)| n == "lis_person_sourcedid")
        );
    }

    #[test]
    fn no_passport_signs_with_an_empty_key_as_open_edx_does() {
        let mut s = settings();
        s.passport = None;
        let launch = s.sign(&who(false), 1, "n").unwrap();
        assert_eq!(field(&launch.fields, "oauth_consumer_key"), "");
    }

    #[test]
    fn bad_settings_are_named() {
        let mut s = settings();
        s.launch_url = "www.example.com/lti".into();
        assert!(
            s.sign(&who(false), 1, "n")
                .unwrap_err()
                .contains("launch_url")
        );
        let err = custom_fields(&["novalue".into()]).unwrap_err();
        assert!(
            err.contains("Could not parse custom parameter: \"novalue\""),
            "{err}"
        );
        let nonce = new_nonce().unwrap();
        assert_eq!(nonce.len(), 32);
        assert_ne!(nonce, new_nonce().unwrap());
    }
}
