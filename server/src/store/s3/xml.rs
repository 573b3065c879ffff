//! S3's XML answers this client reads, as serde records read by quick-xml (the answers
//! rusty-s3 does not parse itself: errors, completions and multipart listings).

use serde::Deserialize;

use super::S3Error;

/// Reads an XML answer into `T` (root element names and namespaces are not checked).
pub(crate) fn parse<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, S3Error> {
    quick_xml::de::from_str(text)
        .map_err(|error| S3Error::BadResponse(format!("{error} in {text:?}")))
}

/// An `<Error>` answer.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorAnswer {
    /// The S3 error code, e.g. `NoSuchKey`.
    #[serde(rename = "Code", default)]
    pub(crate) code: String,
    /// The service's message.
    #[serde(rename = "Message", default)]
    pub(crate) message: String,
}

/// A `<CompleteMultipartUploadResult>` or a `<CopyObjectResult>` (or, inside a 200 answer,
/// an `<Error>`).
#[derive(Debug, Deserialize)]
pub(crate) struct CompleteAnswer {
    /// The completed object's ETag.
    #[serde(rename = "ETag")]
    pub(crate) etag: Option<String>,
    /// Set when the answer is an error.
    #[serde(rename = "Code")]
    pub(crate) code: Option<String>,
}

/// A `<ListMultipartUploadsResult>` page.
#[derive(Debug, Deserialize)]
pub(crate) struct UploadsPage {
    /// The uploads listed.
    #[serde(rename = "Upload", default)]
    pub(crate) uploads: Vec<UploadEntry>,
    /// Whether more pages follow.
    #[serde(rename = "IsTruncated", default)]
    pub(crate) is_truncated: bool,
    /// Where the next page starts.
    #[serde(rename = "NextKeyMarker", default)]
    pub(crate) next_key_marker: String,
    /// Where the next page starts, within the key.
    #[serde(rename = "NextUploadIdMarker", default)]
    pub(crate) next_upload_id_marker: String,
}

/// One `<Upload>` of a multipart listing.
#[derive(Debug, Deserialize)]
pub(crate) struct UploadEntry {
    /// The key it completes to.
    #[serde(rename = "Key")]
    pub(crate) key: String,
    /// Its id.
    #[serde(rename = "UploadId")]
    pub(crate) upload_id: String,
    /// When it started (RFC 3339).
    #[serde(rename = "Initiated", default)]
    pub(crate) initiated: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_answers_with_entities_and_namespaces() {
        let xml = "<?xml version=\"1.0\"?>\n<ListMultipartUploadsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>b</Bucket><IsTruncated>true</IsTruncated><NextKeyMarker>a&amp;b</NextKeyMarker><NextUploadIdMarker>2</NextUploadIdMarker><Upload><Key>a&amp;b</Key><UploadId>1</UploadId><Initiated>2026-11-25T10:00:00Z</Initiated></Upload><Upload><Key>&#x263A;&lt;</Key><UploadId>2</UploadId></Upload></ListMultipartUploadsResult>";
        let page: UploadsPage = parse(xml).unwrap();
        assert!(page.is_truncated);
        assert_eq!(page.next_key_marker, "a&b");
        let keys: Vec<&str> = page.uploads.iter().map(|u| u.key.as_str()).collect();
        assert_eq!(keys, ["a&b", "\u{263A}<"]);
        let error: ErrorAnswer =
            parse("<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>").unwrap();
        assert_eq!(
            (error.code.as_str(), error.message.as_str()),
            ("NoSuchKey", "gone")
        );
        let done: CompleteAnswer = parse(
            "<CompleteMultipartUploadResult><Location>l</Location><ETag>&quot;e-2&quot;</ETag></CompleteMultipartUploadResult>",
        )
        .unwrap();
        assert_eq!(done.etag.as_deref(), Some("\"e-2\""));
        assert!(done.code.is_none());
        assert!(parse::<UploadsPage>("not xml <").is_err());
    }
}
