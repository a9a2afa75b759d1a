//! `kestra://` URIs: Kestra's names for the files of its internal storage,
//! `kestra:///<namespace as folders>/<flow>/executions/<execution>/...`.

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use std::fmt;

/// The scheme every internal-storage URI starts with (an empty authority, as Kestra writes it).
pub const SCHEME: &str = "kestra://";

/// The longest URI accepted, as text.
const MAX_URI: usize = 2048;

/// What a segment's text encodes in a URI: controls, spaces and URI delimiters.
const ENCODED: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// A checked internal-storage URI: non-empty segments, none of them `.`, `..` or holding a
/// slash or a control character once decoded, so that it names a file under the storage's
/// root and nowhere else.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StorageUri {
    segments: Vec<String>,
}

impl StorageUri {
    /// Reads `text`, a `kestra:///...` URI.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_URI {
            return Err(format!("a storage URI is at most {MAX_URI} characters"));
        }
        let path = text
            .strip_prefix(SCHEME)
            .and_then(|rest| rest.strip_prefix('/'))
            .ok_or_else(|| format!("'{}' is not a kestra:/// URI", shown(text)))?;
        let segments = path
            .split('/')
            .map(|segment| {
                percent_decode_str(segment)
                    .decode_utf8()
                    .map(|decoded| decoded.into_owned())
                    .map_err(|_| format!("'{}' is not UTF-8 once decoded", shown(text)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_segments(segments).map_err(|why| format!("'{}': {why}", shown(text)))
    }

    /// The URI of these segments (decoded texts), each checked.
    pub fn from_segments(segments: Vec<String>) -> Result<Self, String> {
        if segments.is_empty() {
            return Err("a storage URI names a file".into());
        }
        for segment in &segments {
            check_segment(segment)?;
        }
        Ok(Self { segments })
    }

    /// This URI with `more` segments after its own.
    pub fn join<I, S>(&self, more: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut segments = self.segments.clone();
        segments.extend(more.into_iter().map(Into::into));
        Self::from_segments(segments)
    }

    /// The decoded segments, the first ones the namespace's parts.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The last segment: the file's name.
    pub fn file_name(&self) -> &str {
        self.segments.last().map_or("", String::as_str)
    }

    /// Whether this URI is `prefix` or lies under it.
    pub fn starts_with(&self, prefix: &StorageUri) -> bool {
        self.segments.starts_with(&prefix.segments)
    }
}

impl fmt::Display for StorageUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SCHEME)?;
        for segment in &self.segments {
            write!(f, "/{}", utf8_percent_encode(segment, ENCODED))?;
        }
        Ok(())
    }
}

fn check_segment(segment: &str) -> Result<(), String> {
    if segment.is_empty() || segment == "." || segment == ".." {
        return Err("a storage URI's segments are names, not empty, `.` or `..`".into());
    }
    if segment.contains('/') || segment.chars().any(char::is_control) {
        return Err("a storage URI's segment holds no slash or control character".into());
    }
    Ok(())
}

/// At most 200 characters of a URI given by a user, for an error message.
fn shown(text: &str) -> String {
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uri_reads_back_as_written() {
        let text = "kestra:///company/team/flow/executions/abc/tasks/t/run/out%20file.txt";
        let uri = StorageUri::parse(text).expect("valid");
        assert_eq!(uri.file_name(), "out file.txt");
        assert_eq!(uri.segments()[..2], ["company", "team"]);
        assert_eq!(uri.to_string(), text);
    }

    #[test]
    fn nothing_leads_outside_the_root() {
        for text in [
            "kestra:///a/../b",
            "kestra:///a/./b",
            "kestra:///a//b",
            "kestra:///a/%2e%2e/b",
            "kestra:///a/b%2Fc",
            "kestra:///a/b%00",
            "kestra:///",
            "kestra://host/a",
            "file:///etc/passwd",
            "/etc/passwd",
        ] {
            assert!(StorageUri::parse(text).is_err(), "{text} accepted");
        }
    }

    #[test]
    fn a_long_uri_is_refused_and_the_error_is_bounded() {
        let text = format!("kestra:///{}", "a/".repeat(2000));
        let error = StorageUri::parse(&text).expect_err("too long");
        assert!(error.len() < 300, "{error}");
    }

    #[test]
    fn prefixes_are_whole_segments() {
        let base = StorageUri::parse("kestra:///dev/flow").expect("valid");
        let under = StorageUri::parse("kestra:///dev/flow/x").expect("valid");
        let beside = StorageUri::parse("kestra:///dev/flowx").expect("valid");
        assert!(under.starts_with(&base));
        assert!(!beside.starts_with(&base));
    }
}
