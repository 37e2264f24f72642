//! Usage keys as exports write them, reduced to url_names ([`url_name_of`]).

/// A usage key as exports write them (`i4x://Org/Course/vertical/NAME`,
/// `block-v1:Org+Course+Run+type@vertical+block@NAME`, or a bare url_name) to its url_name.
pub fn url_name_of(location: &str) -> &str {
    if let Some(at) = location.rfind("block@") {
        return &location[at + "block@".len()..];
    }
    if location.starts_with("i4x://") {
        return location.rsplit('/').next().unwrap_or(location);
    }
    location
}

#[cfg(test)]
mod tests {
    use super::url_name_of;

    #[test]
    fn usage_keys_map_to_url_names() {
        assert_eq!(url_name_of("i4x://TestX/Course/vertical/9ddf"), "9ddf");
        assert_eq!(
            url_name_of("block-v1:TestX+Course+1+type@vertical+block@9ddf"),
            "9ddf"
        );
        assert_eq!(url_name_of("9ddf"), "9ddf");
    }
}
