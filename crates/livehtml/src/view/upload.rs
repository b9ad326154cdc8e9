//! Uploads over the live connection: files chosen in a live view's page travel in chunks over
//! its WebSocket, checked against the view's limits before a byte is accepted.
//!
//! The page declares the files (name, size, type) in an event; the view's [`Upload`] accepts
//! or refuses each (too big, a type it does not take, too many); the page then sends each
//! accepted file in binary messages, and the view renders its progress from what arrived. A
//! complete file goes to [`super::LiveView::on_upload`].

use crate::protocol::Values;

/// Largest piece of a file in one message (livehtml.js sends this much).
pub const CHUNK: usize = 32 * 1024;

/// A live view's file field: what it accepts, and the files on their way.
///
/// ```
/// use livehtml::view::Upload;
///
/// let images = Upload::new("image").accept(&["image/png", "image/jpeg", ".webp"]).max_size(8 << 20).max_files(3);
/// assert!(images.entries().is_empty());
/// ```
#[derive(Debug)]
pub struct Upload {
    name: String,
    accept: Vec<String>,
    max_size: u64,
    max_files: usize,
    entries: Vec<Entry>,
    refused: Vec<String>,
}

/// A file on its way.
#[derive(Debug)]
pub struct Entry {
    id: u32,
    file_name: String,
    content_type: String,
    size: u64,
    values: Values,
    data: Vec<u8>,
}

impl Entry {
    /// Its number on this connection (what its cancel button sends as `id`).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The file's name, as the browser gave it.
    pub fn name(&self) -> &str {
        &self.file_name
    }

    /// Its size in bytes, as declared.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes arrived so far.
    pub fn received(&self) -> u64 {
        self.data.len() as u64
    }

    /// How far along it is, 0 to 100.
    pub fn percent(&self) -> u8 {
        (self.received() * 100).checked_div(self.size).map_or(100, |p| p as u8)
    }
}

/// A file that arrived whole.
#[derive(Debug, Clone)]
pub struct UploadedFile {
    /// The [`Upload`] it came to.
    pub upload: String,
    /// Its name, as the browser gave it (do not use it as a path).
    pub name: String,
    /// Its type, as the browser gave it (checked against [`Upload::accept`]; the bytes are not).
    pub content_type: String,
    /// The `lh-value-*` of the input it was chosen in.
    pub values: Values,
    /// Its content.
    pub bytes: Vec<u8>,
}

/// A file the page offers: from the upload event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Offered {
    pub(crate) reference: String,
    pub(crate) name: String,
    pub(crate) size: u64,
    pub(crate) content_type: String,
}

/// Most files one offer may list (the event's size limit bounds it too).
const MAX_OFFERED: usize = 100;

impl Offered {
    /// The upload event's `files`: a JSON list of `{ref, name, size, type}`.
    pub(crate) fn parse_list(json: &str) -> Result<Vec<Self>, String> {
        let list: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("files: {e}"))?;
        let list = list.as_array().ok_or("files: not a list")?;
        list.iter()
            .take(MAX_OFFERED)
            .map(|f| {
                let text = |k: &str| f.get(k).and_then(|v| v.as_str()).map(str::to_owned);
                Ok(Self {
                    reference: text("ref").ok_or("a file without its ref")?,
                    name: text("name").unwrap_or_default(),
                    size: f.get("size").and_then(serde_json::Value::as_u64).ok_or("a file without its size")?,
                    content_type: text("type").unwrap_or_default(),
                })
            })
            .collect()
    }
}

/// What a chunk did.
#[derive(Debug)]
pub(crate) enum Chunk {
    /// Taken; the file is this far along (percent) now, and was that far before.
    Progress { before: u8, now: u8 },
    /// The file is complete.
    Done(UploadedFile),
    /// More than the file declared: it is dropped, with a message for the page.
    Refused(String),
}

impl Upload {
    /// An upload named `name`: the page's file input carries `lh-upload="name"`. By default
    /// any type, one file, at most 8 MiB.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            accept: Vec::new(),
            max_size: 8 << 20,
            max_files: 1,
            entries: Vec::new(),
            refused: Vec::new(),
        }
    }

    /// The types it takes: MIME types (`image/png`), families (`image/*`) or extensions
    /// (`.png`), as an input's `accept` says them. Empty: any.
    #[must_use]
    pub fn accept(mut self, types: &[&str]) -> Self {
        self.accept = types.iter().map(|t| t.trim().to_ascii_lowercase()).collect();
        self
    }

    /// The largest file it takes, in bytes (checked before any byte is sent, and again as
    /// bytes arrive).
    #[must_use]
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = bytes;
        self
    }

    /// How many files may be on their way at once.
    #[must_use]
    pub fn max_files(mut self, files: usize) -> Self {
        self.max_files = files.max(1);
        self
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value for the input's `accept` attribute.
    pub fn accept_attr(&self) -> String {
        self.accept.join(",")
    }

    /// The files on their way.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Why the files last offered were refused (one message each), for the page.
    pub fn errors(&self) -> &[String] {
        &self.refused
    }

    /// Takes the files it accepts; returns their (page's reference, id) pairs. `next_id`
    /// numbers them on this connection.
    pub(crate) fn offer(&mut self, files: Vec<Offered>, values: &Values, next_id: &mut u32) -> Vec<(String, u32)> {
        self.refused.clear();
        let mut accepted = Vec::new();
        for file in files {
            let refusal = if self.entries.len() >= self.max_files {
                Some(format!("{}: at most {} at a time", file.name, plural(self.max_files, "file")))
            } else if file.size > self.max_size {
                Some(format!("{}: too big ({}; at most {})", file.name, human(file.size), human(self.max_size)))
            } else if !self.takes(&file) {
                Some(format!("{}: not a type this takes ({})", file.name, self.accept.join(", ")))
            } else {
                None
            };
            if let Some(refusal) = refusal {
                self.refused.push(refusal);
                continue;
            }
            *next_id = next_id.wrapping_add(1);
            accepted.push((file.reference, *next_id));
            self.entries.push(Entry {
                id: *next_id,
                file_name: file.name,
                content_type: file.content_type,
                size: file.size,
                values: values.clone(),
                data: Vec::new(),
            });
        }
        accepted
    }

    fn takes(&self, file: &Offered) -> bool {
        let mime = file.content_type.to_ascii_lowercase();
        let name = file.name.to_ascii_lowercase();
        self.accept.is_empty()
            || self.accept.iter().any(|a| {
                if let Some(ext) = a.strip_prefix('.') {
                    name.rsplit_once('.').is_some_and(|(_, e)| e == ext)
                } else if let Some(family) = a.strip_suffix("/*") {
                    mime.split_once('/').is_some_and(|(f, _)| f == family)
                } else {
                    *a == mime
                }
            })
    }

    /// Whether file `id` is one of this upload's.
    pub(crate) fn has(&self, id: u32) -> bool {
        self.entries.iter().any(|e| e.id == id)
    }

    /// Appends `bytes` to file `id` (one of this upload's).
    pub(crate) fn chunk(&mut self, id: u32, bytes: &[u8]) -> Chunk {
        let Some(i) = self.entries.iter().position(|e| e.id == id) else {
            return Chunk::Refused("no such file".into());
        };
        let entry = &mut self.entries[i];
        let before = entry.percent();
        if entry.received() + bytes.len() as u64 > entry.size {
            let entry = self.entries.remove(i);
            return Chunk::Refused(format!("{}: more bytes than it said it had", entry.file_name));
        }
        if entry.data.is_empty() {
            // Declared, and checked against the limit: held once, not grown chunk by chunk.
            entry.data.reserve_exact(entry.size as usize);
        }
        entry.data.extend_from_slice(bytes);
        if entry.received() < entry.size {
            return Chunk::Progress { before, now: entry.percent() };
        }
        let entry = self.entries.remove(i);
        Chunk::Done(UploadedFile {
            upload: self.name.clone(),
            name: entry.file_name,
            content_type: entry.content_type,
            values: entry.values,
            bytes: entry.data,
        })
    }

    /// Drops file `id` (cancelled, or its page went away).
    pub(crate) fn cancel(&mut self, id: u32) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.id != id);
        self.entries.len() != before
    }
}

fn human(bytes: u64) -> String {
    match bytes {
        0..1_000 => format!("{bytes} bytes"),
        1_000..1_000_000 => format!("{} KB", bytes / 1_000),
        _ => format!("{:.1} MB", bytes as f64 / 1_000_000.0),
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, size: u64, content_type: &str) -> Offered {
        Offered { reference: format!("r-{name}"), name: name.into(), size, content_type: content_type.into() }
    }

    #[test]
    fn offers_are_checked_against_count_size_and_type_before_any_byte() {
        let mut up = Upload::new("image").accept(&["image/*", ".webp"]).max_size(1000).max_files(2);
        let mut next = 0;
        let accepted = up.offer(
            vec![
                file("a.png", 10, "image/png"),
                file("b.exe", 10, "application/octet-stream"),
                file("c.png", 5000, "image/png"),
                file("d.webp", 10, ""),
                file("e.png", 10, "image/png"),
            ],
            &Values::default(),
            &mut next,
        );
        assert_eq!(accepted, [("r-a.png".to_owned(), 1), ("r-d.webp".to_owned(), 2)]);
        assert_eq!(
            up.errors(),
            [
                "b.exe: not a type this takes (image/*, .webp)",
                "c.png: too big (5 KB; at most 1 KB)",
                "e.png: at most 2 files at a time",
            ]
        );
    }

    #[test]
    fn the_offer_is_read_from_the_event() {
        let files = Offered::parse_list(r#"[{"ref":"r1","name":"a.png","size":3,"type":"image/png"}]"#).unwrap();
        assert_eq!(files, [file("a.png", 3, "image/png")].map(|f| Offered { reference: "r1".into(), ..f }));
        assert!(Offered::parse_list(r#"[{"name":"a"}]"#).is_err());
        assert!(Offered::parse_list("{}").is_err());
        let many = format!("[{}]", vec![r#"{"ref":"r","size":1}"#; 500].join(","));
        assert_eq!(Offered::parse_list(&many).unwrap().len(), MAX_OFFERED);
    }

    #[test]
    fn chunks_fill_a_file_and_more_than_declared_is_refused() {
        let mut up = Upload::new("doc");
        let mut next = 0;
        up.offer(vec![file("a.txt", 10, "text/plain")], &Values::default(), &mut next);
        assert!(matches!(up.chunk(1, b"hello"), Chunk::Progress { before: 0, now: 50 }));
        assert_eq!(up.entries()[0].received(), 5);
        let Chunk::Done(done) = up.chunk(1, b"world") else { panic!() };
        assert_eq!((done.name.as_str(), done.bytes.as_slice()), ("a.txt", &b"helloworld"[..]));
        assert!(up.entries().is_empty());

        up.offer(vec![file("b.txt", 4, "text/plain")], &Values::default(), &mut next);
        assert!(matches!(up.chunk(2, b"12345"), Chunk::Refused(m) if m.contains("more bytes")));
        assert!(!up.has(2));
        up.offer(vec![file("c.txt", 4, "text/plain")], &Values::default(), &mut next);
        assert!(up.cancel(3) && !up.has(3));
    }
}
