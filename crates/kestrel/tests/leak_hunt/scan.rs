//! What a reader could see, kept by channel, and the search for every secret form in it. A
//! finding names the channel, the secret's label and the form, never the text found.

use super::secrets::Needle;
use serde_json::Value;

/// One text a person or a program could read, and where it came from.
#[derive(Clone)]
struct Seen {
    channel: String,
    text: String,
}

/// Everything collected from one group of channels.
#[derive(Default)]
pub(crate) struct Collected {
    seen: Vec<Seen>,
}

impl Collected {
    /// Keeps `text` as it is.
    pub(crate) fn plain(&mut self, channel: impl Into<String>, text: impl Into<String>) {
        self.seen.push(Seen {
            channel: channel.into(),
            text: text.into(),
        });
    }

    /// Keeps `text` and, when it is JSON, every string and number in it as a program
    /// decoding it would read them.
    pub(crate) fn json(&mut self, channel: impl Into<String>, text: impl Into<String>) {
        let channel = channel.into();
        let text = text.into();
        if let Ok(document) = serde_json::from_str::<Value>(&text) {
            let mut decoded = Vec::new();
            scalars(&document, &mut decoded);
            self.plain(format!("{channel} (decoded)"), decoded.join("\n"));
        }
        self.plain(channel, text);
    }

    /// Keeps an HTML page as sent and with its character references decoded, as a browser
    /// shows it.
    pub(crate) fn html(&mut self, channel: impl Into<String>, text: impl Into<String>) {
        let channel = channel.into();
        let text = text.into();
        self.plain(format!("{channel} (as shown)"), unescape_html(&text));
        self.plain(channel, text);
    }

    /// Keeps a Server-Sent Events stream and the strings and numbers of the JSON of its
    /// `data:` lines, as a client decoding each event reads them.
    pub(crate) fn events(&mut self, channel: impl Into<String>, text: impl Into<String>) {
        let channel = channel.into();
        let text = text.into();
        let mut decoded = Vec::new();
        for data in text.lines().filter_map(|line| line.strip_prefix("data:")) {
            if let Ok(event) = serde_json::from_str::<Value>(data.trim_start()) {
                scalars(&event, &mut decoded);
            }
        }
        self.plain(format!("{channel} (events decoded)"), decoded.join("\n"));
        self.plain(channel, text);
    }

    /// Adds everything `other` collected.
    pub(crate) fn extend(&mut self, other: Collected) {
        self.seen.extend(other.seen);
    }

    /// Adds a copy of everything `other` collected.
    pub(crate) fn extend_from(&mut self, other: &Collected) {
        self.seen.extend(other.seen.iter().cloned());
    }

    /// How many texts were collected (a check that a channel was really driven).
    pub(crate) fn len(&self) -> usize {
        self.seen.len()
    }

    /// Every (channel, secret, form) where a form was found.
    pub(crate) fn findings(&self, needles: &[Needle]) -> Vec<String> {
        let mut findings = Vec::new();
        for seen in &self.seen {
            for needle in needles {
                if seen.text.contains(&needle.text) {
                    findings.push(format!(
                        "{}: secret {} found as its {}",
                        seen.channel, needle.label, needle.form
                    ));
                }
            }
        }
        findings
    }

    /// Panics with every finding (at most a screenful), naming no value.
    pub(crate) fn assert_no_secret(&self, group: &str, needles: &[Needle]) {
        let findings = self.findings(needles);
        const SHOWN: usize = 80;
        assert!(
            findings.is_empty(),
            "{group}: {} finding(s) in {} collected texts:\n{}{}",
            findings.len(),
            self.len(),
            findings[..findings.len().min(SHOWN)].join("\n"),
            if findings.len() > SHOWN { "\n..." } else { "" }
        );
    }
}

fn scalars(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) => out.push(text.clone()),
        Value::Number(number) => out.push(number.to_string()),
        Value::Array(items) => items.iter().for_each(|item| scalars(item, out)),
        Value::Object(fields) => {
            for (name, item) in fields {
                out.push(name.clone());
                scalars(item, out);
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
}

/// Decodes the character references of `html` (named ones HTML templates write, and every
/// numeric one).
pub(crate) fn unescape_html(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let decoded = rest
            .find(';')
            .filter(|end| *end <= 10)
            .and_then(|end| reference(&rest[1..end]).map(|ch| (ch, end)));
        match decoded {
            Some((ch, end)) => {
                out.push(ch);
                rest = &rest[end + 1..];
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

fn reference(name: &str) -> Option<char> {
    let number = |digits: &str, radix| u32::from_str_radix(digits, radix).ok();
    let code = match name {
        "amp" => Some(u32::from('&')),
        "lt" => Some(u32::from('<')),
        "gt" => Some(u32::from('>')),
        "quot" => Some(u32::from('"')),
        "apos" => Some(u32::from('\'')),
        _ => match name.strip_prefix('#') {
            Some(hex) if hex.starts_with(['x', 'X']) => number(&hex[1..], 16),
            Some(decimal) => number(decimal, 10),
            None => None,
        },
    };
    code.and_then(char::from_u32)
}

#[test]
fn html_references_are_decoded_as_a_browser_shows_them() {
    assert_eq!(
        unescape_html("a&amp;b &#39;c&#x27; &#x2f;d &lt;e&gt; &bogus; &"),
        "a&b 'c' /d <e> &bogus; &"
    );
}
