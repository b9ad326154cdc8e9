//! livehtml.js as the browser fetches it: built by `build.rs` (its parts joined, minified,
//! precompressed with brotli and gzip, named by a hash of its content), and which of its forms
//! a request accepts. Pure data: the axum integration serves it, a live view's default page
//! links it.

/// Where [`crate::Live::client_script`] serves livehtml.js under a name that never changes:
/// answered with `Cache-Control: no-cache` and an `ETag`, so a browser asks each time and gets
/// `304 Not Modified` while the script is the same.
pub const SCRIPT_PATH: &str = "/_livehtml/livehtml.js";

/// Where [`crate::Live::client_script`] serves this build's livehtml.js for good: the name
/// carries a hash of the content, so the answer is cached as `immutable` for a year and a page
/// that links it fetches no script on its next visit. Link this one from your pages.
///
/// ```
/// let tag = format!(r#"<script src="{}" defer></script>"#, livehtml::SCRIPT_URL);
/// assert!(tag.contains("/_livehtml/livehtml."));
/// ```
pub const SCRIPT_URL: &str = concat!("/_livehtml/livehtml.", env!("LIVEHTML_CLIENT_HASH"), ".js");

/// The hash [`SCRIPT_URL`] is named by (16 hex digits of the minified script's SHA-256).
pub(crate) const HASH: &str = env!("LIVEHTML_CLIENT_HASH");

/// The source of livehtml.js, the browser client (no build step), readable: its six parts,
/// dom.js (applying the server's HTML), input.js (what a page sends, and when), commands.js
/// (client commands and loading states), upload.js (files over the socket), http.js (SSE + POST
/// and long-polling) and livehtml.js (connections, the WebSocket, fallback, sending,
/// navigation), as one script. What is served is [`SCRIPT_MINIFIED`].
pub const SCRIPT: &str = concat!(
    include_str!("../client/dom.js"),
    include_str!("../client/input.js"),
    include_str!("../client/commands.js"),
    include_str!("../client/upload.js"),
    include_str!("../client/http.js"),
    include_str!("../client/livehtml.js")
);

/// [`SCRIPT`] without its comments and spaces, as served (names are kept).
pub const SCRIPT_MINIFIED: &str = include_str!(concat!(env!("OUT_DIR"), "/livehtml.min.js"));

const GZIP: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/livehtml.min.js.gz"));
const BROTLI: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/livehtml.min.js.br"));

/// A form of the script a response can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Brotli,
    Gzip,
    Identity,
}

impl Encoding {
    /// The best form an `Accept-Encoding` header allows: brotli (the smallest), then gzip, then
    /// the plain script. Written here rather than taken from tower-http: its compression layer
    /// compresses per response, and this only has to pick among three fixed byte strings.
    pub(crate) fn choose<'a>(accept: impl IntoIterator<Item = &'a str>) -> Encoding {
        let (mut brotli, mut gzip, mut any) = (None, None, None);
        for item in accept.into_iter().flat_map(|v| v.split(',')) {
            let mut pieces = item.split(';');
            let coding = pieces.next().unwrap_or_default().trim();
            let quality = pieces
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let accepted = quality > 0.0;
            if coding.eq_ignore_ascii_case("br") {
                brotli = Some(accepted);
            } else if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                gzip = Some(accepted);
            } else if coding == "*" {
                any = Some(accepted);
            }
        }
        if brotli.or(any) == Some(true) {
            Encoding::Brotli
        } else if gzip.or(any) == Some(true) {
            Encoding::Gzip
        } else {
            Encoding::Identity
        }
    }

    /// The `Content-Encoding` value (none for the plain script).
    pub(crate) fn header(self) -> Option<&'static str> {
        match self {
            Encoding::Brotli => Some("br"),
            Encoding::Gzip => Some("gzip"),
            Encoding::Identity => None,
        }
    }

    /// The script's bytes in this form.
    pub(crate) fn body(self) -> &'static [u8] {
        match self {
            Encoding::Brotli => BROTLI,
            Encoding::Gzip => GZIP,
            Encoding::Identity => SCRIPT_MINIFIED.as_bytes(),
        }
    }

    /// A strong `ETag` for this form: each encoding is its own representation.
    pub(crate) fn etag(self) -> String {
        match self.header() {
            Some(coding) => format!("\"{HASH}-{coding}\""),
            None => format!("\"{HASH}\""),
        }
    }
}

/// Whether an `If-None-Match` header names this build's script (in any of its forms).
pub(crate) fn matches<'a>(if_none_match: impl IntoIterator<Item = &'a str>) -> bool {
    if_none_match.into_iter().flat_map(|v| v.split(',')).any(|tag| {
        let tag = tag.trim().trim_start_matches("W/").trim_matches('"');
        tag == "*" || tag.split('-').next() == Some(HASH)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_accepted_form_is_chosen() {
        assert_eq!(Encoding::choose(["gzip, deflate, br, zstd"]), Encoding::Brotli);
        assert_eq!(Encoding::choose(["gzip, deflate"]), Encoding::Gzip);
        assert_eq!(Encoding::choose(["br;q=0, gzip;q=0.5"]), Encoding::Gzip);
        assert_eq!(Encoding::choose(["identity"]), Encoding::Identity);
        assert_eq!(Encoding::choose([]), Encoding::Identity);
        assert_eq!(Encoding::choose(["*"]), Encoding::Brotli);
        assert_eq!(Encoding::choose(["*;q=0"]), Encoding::Identity);
        assert_eq!(Encoding::choose(["gzip", "br"]), Encoding::Brotli);
    }

    #[test]
    fn every_form_is_the_same_script() {
        use std::io::Read;
        let mut gunzipped = String::new();
        flate2::read::GzDecoder::new(GZIP).read_to_string(&mut gunzipped).unwrap();
        assert_eq!(gunzipped, SCRIPT_MINIFIED);
        assert!(SCRIPT_MINIFIED.len() < SCRIPT.len() / 2, "the comments and indentation are gone");
        assert!(SCRIPT_URL.ends_with(&format!(".{HASH}.js")));
    }

    #[test]
    fn an_etag_from_any_form_matches() {
        for encoding in [Encoding::Brotli, Encoding::Gzip, Encoding::Identity] {
            assert!(matches([encoding.etag().as_str()]));
            assert!(matches([format!("W/{}", encoding.etag()).as_str()]));
        }
        assert!(!matches(["\"0000000000000000\""]));
        assert!(matches(["\"x\", *"]));
    }
}
