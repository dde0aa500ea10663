//! XML response documents of the Query and EC2 protocols.

use std::fmt::Write as _;

/// A structure written as XML: its members as child elements (the
/// element around them is the caller's, named by the member or the
/// response).
pub trait ToXml {
    fn write_members(&self, w: &mut XmlWriter);
}

/// A value written as an element's text.
pub trait XmlScalar {
    fn write_text(&self, out: &mut String);
}

impl XmlScalar for String {
    fn write_text(&self, out: &mut String) {
        escape(self, out);
    }
}

impl XmlScalar for str {
    fn write_text(&self, out: &mut String) {
        escape(self, out);
    }
}

impl XmlScalar for bool {
    fn write_text(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }
}

macro_rules! display_scalar {
    ($($t:ty),*) => {$(
        impl XmlScalar for $t {
            fn write_text(&self, out: &mut String) {
                let _ = write!(out, "{self}");
            }
        }
    )*};
}
display_scalar!(i32, i64, f64);

/// Escapes text for an element or attribute.
pub fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// Builds one XML document.
#[derive(Debug)]
pub struct XmlWriter {
    out: String,
    root: String,
}

impl XmlWriter {
    /// A document whose root element is `root` in namespace `namespace`.
    pub fn document(root: &str, namespace: &str) -> Self {
        let mut out = String::with_capacity(512);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<");
        out.push_str(root);
        if !namespace.is_empty() {
            out.push_str(" xmlns=\"");
            escape(namespace, &mut out);
            out.push('"');
        }
        out.push('>');
        Self { out, root: root.to_owned() }
    }

    pub fn start(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
    }

    pub fn end(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    pub fn scalar<T: XmlScalar + ?Sized>(&mut self, name: &str, value: &T) {
        self.start(name);
        value.write_text(&mut self.out);
        self.end(name);
    }

    /// A timestamp as ISO 8601 in UTC with milliseconds, as AWS writes them.
    pub fn timestamp(&mut self, name: &str, epoch_seconds: f64) {
        let nanos = (epoch_seconds * 1e3).round() as i128 * 1_000_000;
        let text = time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .and_then(|t| {
                t.format(time::macros::format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
                ))
                .ok()
            })
            .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".to_owned());
        self.scalar(name, text.as_str());
    }

    /// Closes the root and returns the document.
    pub fn finish(mut self) -> String {
        let root = std::mem::take(&mut self.root);
        self.end(&root);
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_escaped_and_closed() {
        let mut w = XmlWriter::document("XResponse", "urn:x");
        w.start("XResult");
        w.scalar("Name", "a<b&\"c\"");
        w.scalar("Count", &3i32);
        w.scalar("On", &true);
        w.timestamp("At", 1_714_557_600.5);
        w.end("XResult");
        assert_eq!(
            w.finish(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<XResponse xmlns=\"urn:x\"><XResult><Name>a&lt;b&amp;&quot;c&quot;</Name>\
             <Count>3</Count><On>true</On><At>2024-05-01T10:00:00.500Z</At></XResult></XResponse>"
        );
    }
}
