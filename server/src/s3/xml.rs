//! Just enough XML reading for S3's answers: the text of simple elements, found by name.
//! S3's answers are flat records of text elements, which is all this needs to read (error
//! codes and messages, upload ids, ETags, multipart listings).

/// The unescaped text of every `<tag>…</tag>` in `xml`, in order (elements written with a
/// namespace prefix or attributes are not matched; S3 writes none for these).
pub(crate) fn all(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        found.push(unescape(&after[..end]));
        rest = &after[end + close.len()..];
    }
    found
}

/// The unescaped text of the first `<tag>…</tag>` in `xml`.
pub(crate) fn first(xml: &str, tag: &str) -> Option<String> {
    all(xml, tag).into_iter().next()
}

/// The raw inner XML of every `<tag>…</tag>` in `xml` (for records such as `<Upload>`).
pub(crate) fn blocks<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        found.push(&after[..end]);
        rest = &after[end + close.len()..];
    }
    found
}

/// Whether `xml`'s root element is `<root>` (after any declaration).
pub(crate) fn root_is(xml: &str, root: &str) -> bool {
    let mut rest = xml.trim_start();
    if rest.starts_with("<?") {
        rest = rest
            .find("?>")
            .map_or("", |end| rest[end + 2..].trim_start());
    }
    rest.strip_prefix('<')
        .and_then(|r| r.strip_prefix(root))
        .is_some_and(|r| r.starts_with(['>', ' ', '\t', '\r', '\n', '/']))
}

/// `text` with XML's entities and character references replaced.
pub(crate) fn unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let tail = &rest[amp..];
        let Some(semi) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let entity = &tail[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `text` escaped for an XML element's content.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_elements() {
        let xml = "<?xml version=\"1.0\"?>\n<R><Upload><Key>a&amp;b</Key><UploadId>1</UploadId></Upload><Upload><Key>&#x263A;&#65;&lt;</Key></Upload></R>";
        assert!(root_is(xml, "R"));
        assert!(!root_is(xml, "Error"));
        assert_eq!(all(xml, "Key"), ["a&b", "\u{263A}A<"]);
        assert_eq!(first(xml, "UploadId").as_deref(), Some("1"));
        assert_eq!(first(xml, "Nope"), None);
        assert_eq!(blocks(xml, "Upload").len(), 2);
        assert_eq!(unescape("x &bogus; &amp"), "x &bogus; &amp");
        assert_eq!(unescape(&escape("<\"a&b\">")), "<\"a&b\">");
        assert!(root_is("<Error>", "Error"));
        assert!(!root_is("<ErrorX>", "Error"));
    }
}
