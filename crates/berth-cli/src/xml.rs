//! A Query answer as a tree of elements (quick-xml reads it), for the
//! subcommands that call AWS Query services (`berth lb`).

use anyhow::Context as _;
use quick_xml::events::Event;

/// An element: its local name, its text (unescaped) and its children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The element at `path` of child names.
    pub fn at(&self, path: &[&str]) -> Option<&Element> {
        path.iter().try_fold(self, |e, name| e.child(name))
    }

    /// The text at `path`, or "" when there is none.
    pub fn text_at(&self, path: &[&str]) -> String {
        self.at(path).map(|e| e.text.clone()).unwrap_or_default()
    }

    /// The `member` items of the list at `path`.
    pub fn members(&self, path: &[&str]) -> Vec<&Element> {
        self.at(path).map(|l| l.children.iter().filter(|c| c.name == "member").collect()).unwrap_or_default()
    }
}

/// Parses a document into its root element.
pub fn parse(text: &str) -> anyhow::Result<Element> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut stack: Vec<Element> = vec![Element::default()];
    loop {
        match reader.read_event().context("not XML")? {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                stack.push(Element { name, ..Default::default() });
            }
            Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if let Some(parent) = stack.last_mut() {
                    parent.children.push(Element { name, ..Default::default() });
                }
            }
            Event::Text(t) => {
                let text = t.decode().context("not UTF-8")?;
                let text = quick_xml::escape::unescape(&text).context("a bad entity")?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text);
                }
            }
            Event::GeneralRef(r) => {
                let name = r.decode().context("not UTF-8")?;
                let text = quick_xml::escape::unescape(&format!("&{name};")).context("a bad entity")?.into_owned();
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text);
                }
            }
            Event::End(_) => {
                let done = stack.pop().context("unbalanced elements")?;
                stack.last_mut().context("unbalanced elements")?.children.push(done);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut top = stack.pop().context("no document")?;
    anyhow::ensure!(stack.is_empty(), "unclosed elements");
    top.children.pop().context("an empty document")
}

#[cfg(test)]
mod tests {
    #[test]
    fn documents_become_trees_with_unescaped_text() {
        let doc = super::parse(
            r#"<?xml version="1.0"?><R xmlns="x"><List><member><A>1 &amp; 2</A></member><member><A>3</A><B/></member></List></R>"#,
        )
        .unwrap();
        assert_eq!(doc.name, "R");
        let items = doc.members(&["List"]);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].text_at(&["A"]), "1 & 2");
        assert!(items[1].child("B").is_some());
        assert!(super::parse("<a><b></a>").is_err());
    }
}
