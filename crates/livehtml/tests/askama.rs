//! A live view rendered by an askama template (feature `askama`): the region diff works on its
//! output as on maud's, and what users typed stays text.
#![cfg(feature = "askama")]

use askama::Template;
use livehtml::{Context, Event, Html, Live, LiveRoutes, LiveView, Mount, ViewError};

#[derive(Template)]
#[template(
    source = r#"<h1>Guestbook</h1><p id="count">{{ entries.len() }} entries</p><ul id="entries">{% for e in entries %}<li>{{ e }}</li>{% endfor %}</ul>"#,
    ext = "html"
)]
struct Page<'a> {
    entries: &'a [String],
}

struct Guestbook {
    entries: Vec<String>,
}

impl LiveView for Guestbook {
    type State = ();

    async fn mount(_: &(), _: &Mount) -> Result<Self, ViewError> {
        Ok(Guestbook { entries: Vec::new() })
    }

    fn render(&self) -> Html {
        Html::from_template(&Page { entries: &self.entries })
    }

    async fn on_event(&mut self, _: &mut Context, event: Event) -> Result<(), ViewError> {
        self.entries.push(event.value("text").unwrap_or_default().to_owned());
        Ok(())
    }
}

#[tokio::test]
async fn an_askama_view_sends_only_what_changed_and_escapes_user_text() {
    let views = LiveRoutes::new(&Live::default(), ()).route::<Guestbook>("/guestbook").build();
    let mut page = views.test("/guestbook").await.unwrap();
    assert!(page.html().starts_with("<h1>Guestbook</h1>"));
    let sent = page.event("sign", &[("text", "<script>alert(1)</script>")]).await.unwrap();
    assert_eq!(
        sent,
        concat!(
            r#"<p id="count">1 entries</p>"#,
            r#"<ul id="entries"><li>&#60;script&#62;alert(1)&#60;/script&#62;</li></ul>"#
        )
    );
}
