//! A view's stream: the HTTP render is the list, each later update only the change, the page
//! keeps at most the limit, and the view keeps nothing of what it rendered.

use livehtml::view::Stream;
use livehtml::{Context, Event, Html, Live, LiveRoutes, LiveView, Mount, ViewError};
use maud::html;

struct Feed {
    entries: Stream,
    next: u32,
    title: String,
}

impl LiveView for Feed {
    type State = ();

    async fn mount(_: &(), _: &Mount) -> Result<Self, ViewError> {
        let mut entries = Stream::new("entries").limit(5);
        for i in 1..=8 {
            entries.append(html! { li id={ "e" (i) } { "entry " (i) } });
        }
        Ok(Feed { entries, next: 8, title: "Feed".into() })
    }

    fn render(&self) -> Html {
        html! {
            h1 #title { (self.title) }
            ul id=(self.entries.id()) lh-stream=(self.entries.limit_attr()) { (self.entries) }
        }
        .into()
    }

    async fn on_event(&mut self, _: &mut Context, event: Event) -> Result<(), ViewError> {
        match event.name.as_deref() {
            Some("add") => {
                self.next += 1;
                self.entries.append(html! { li id={ "e" (self.next) } { "entry " (self.next) } });
            }
            Some("top") => self.entries.prepend(html! { li #top { "pinned" } }),
            Some("edit") => {
                let id = event.value("id").unwrap_or_default();
                self.entries.append(html! { li id=(id) { "edited" } });
            }
            Some("delete") => self.entries.delete(event.value("id").unwrap_or_default()),
            Some("clear") => self.entries.reset(),
            Some("rename") => self.title = event.value("title").unwrap_or_default().to_owned(),
            _ => return Err(ViewError::unknown_event(&event)),
        }
        Ok(())
    }
}

fn views() -> livehtml::Views<()> {
    LiveRoutes::new(&Live::default(), ()).route::<Feed>("/feed").build()
}

fn ids(items: &[String]) -> Vec<String> {
    items.iter().map(|i| i.split('"').nth(1).unwrap_or_default().to_owned()).collect()
}

#[tokio::test]
async fn the_first_render_is_the_list_with_its_limit() {
    let page = views().test("/feed").await.unwrap();
    assert_eq!(ids(&page.stream("entries")), ["e4", "e5", "e6", "e7", "e8"]);
}

#[tokio::test]
async fn an_update_sends_the_change_alone_and_the_page_keeps_the_limit() {
    let mut page = views().test("/feed").await.unwrap();
    for _ in 0..20 {
        let sent = page.event("add", &[]).await.unwrap();
        assert!(sent.starts_with(r#"<ul id="entries" lh-stream="5"><li id="e"#), "{sent}");
        assert_eq!(sent.matches("<li").count(), 1, "only the new item: {sent}");
    }
    assert_eq!(ids(&page.stream("entries")), ["e24", "e25", "e26", "e27", "e28"]);
    // The view holds nothing of what it sent.
    assert!(page.html().contains(r#"<ul id="entries" lh-stream="5"></ul>"#), "{}", page.html());
    // A change elsewhere does not resend the stream.
    assert_eq!(page.event("rename", &[("title", "News")]).await.unwrap(), r#"<h1 id="title">News</h1>"#);
}

#[tokio::test]
async fn insert_first_update_in_place_delete_and_reset() {
    let mut page = views().test("/feed").await.unwrap();
    let sent = page.event("top", &[]).await.unwrap();
    assert!(sent.contains(r#"<li id="top" lh-insert-at="0">pinned</li>"#), "{sent}");
    // Inserted first, the last item goes.
    assert_eq!(ids(&page.stream("entries")), ["top", "e4", "e5", "e6", "e7"]);
    page.event("edit", &[("id", "e5")]).await.unwrap();
    assert_eq!(page.stream("entries")[2], r#"<li id="e5">edited</li>"#);
    let sent = page.event("delete", &[("id", "e6")]).await.unwrap();
    assert!(sent.contains(r#"<template lh-stream-delete="e6"></template>"#), "{sent}");
    assert_eq!(ids(&page.stream("entries")), ["top", "e4", "e5", "e7"]);
    page.event("clear", &[]).await.unwrap();
    page.event("add", &[]).await.unwrap();
    assert_eq!(ids(&page.stream("entries")), ["e9"]);
}

#[tokio::test]
async fn the_http_render_shows_the_items() {
    let app = views();
    let page = app.render_page("/feed").await.unwrap();
    for i in 4..=8 {
        assert!(page.contains(&format!(r#"<li id="e{i}">entry {i}</li>"#)), "{page}");
    }
    assert!(!page.contains(r#"id="e3""#));
}
