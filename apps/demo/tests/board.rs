//! The board through the test client: who is asking (the signed cookie), validation as the
//! user types, a card added and moved as every viewer sees it (a move is the new order, not the
//! board), the activity stream bounded, and the statistics panel loaded in the background.

mod common;

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::IntoResponse;
use axum_extra::extract::cookie::{Cookie, SignedCookieJar};
use common::WAIT;
use livehtml::ViewTest;
use livehtml::view::ViewError;
use livehtml_demo::AppState;

async fn state(dir: &std::path::Path) -> AppState {
    livehtml_demo::state(dir, None, time::UtcOffset::UTC, livehtml::Limits::default()).await.expect("state")
}

/// The `Cookie` header of a browser signed in as `name` (as `/board/signin` sets it).
fn signed_in(state: &AppState, name: &str) -> HeaderMap {
    let jar = SignedCookieJar::new(state.cookie_key.clone()).add(Cookie::new("board-name", name.to_owned()));
    let response = jar.into_response();
    let set = response.headers().get(header::SET_COOKIE).unwrap().to_str().unwrap();
    let pair = set.split(';').next().unwrap().to_owned();
    let mut headers = HeaderMap::new();
    headers.insert(header::COOKIE, HeaderValue::from_str(&pair).unwrap());
    headers
}

/// Lets the view take its messages (presence, changes, the statistics task's answer) until
/// what it sends the page contains `wanted`; returns that update.
async fn until(page: &mut ViewTest<AppState>, wanted: &str) -> String {
    loop {
        let sent = page.next_message(WAIT).await.unwrap_or_else(|| panic!("no update with {wanted:?} in time"));
        if sent.contains(wanted) {
            return sent;
        }
    }
}

/// Waits for the statistics panel's first answer (it loads in the background on join).
async fn settled(page: &mut ViewTest<AppState>) {
    until(page, "people changed cards").await;
}

#[tokio::test]
async fn who_is_asking_decides_who_may_change_the_board() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path()).await;
    let views = livehtml_demo::views(&state);

    let mut guest = views.test("/board").await.unwrap();
    assert!(guest.html().contains("to change cards; anyone can watch"));
    let refused = guest.event("add", &[("title", "x"), ("column", "todo")]).await;
    assert!(matches!(refused, Err(ViewError::BadRequest(ref m)) if m.contains("Sign in")), "{refused:?}");

    // A forged cookie is nobody.
    let mut forged = HeaderMap::new();
    forged.insert(header::COOKIE, HeaderValue::from_static("board-name=Mallory"));
    assert!(views.test_as("/board", forged).await.unwrap().html().contains("anyone can watch"));

    let ann = views.test_as("/board", signed_in(&state, "Ann")).await.unwrap();
    assert!(ann.html().contains("Signed in as <strong>Ann</strong>"));
}

#[tokio::test]
async fn the_card_form_validates_as_the_user_types_and_a_card_reaches_every_viewer() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path()).await;
    let views = livehtml_demo::views(&state);
    let mut ann = views.test_as("/board", signed_in(&state, "Ann")).await.unwrap();
    let mut bob = views.test("/board").await.unwrap();
    settled(&mut ann).await;
    settled(&mut bob).await;

    let long = "x".repeat(81);
    let sent = ann.event("validate", &[("title", &long), ("body", ""), ("column", "doing")]).await.unwrap();
    assert!(sent.contains("At most 80 characters (81 now)"), "{sent}");
    // Nothing outside the form changed.
    assert!(!sent.contains("col-todo") && !sent.contains("<h1"), "{sent}");
    let refused = ann.event("add", &[("title", &long), ("body", ""), ("column", "doing")]).await;
    assert!(matches!(refused, Err(ViewError::BadRequest(_))));
    let sent = ann.event("validate", &[("title", ""), ("body", ""), ("column", "doing")]).await.unwrap();
    assert!(sent.contains("A card needs a title"), "once submitted, an empty title is an error: {sent}");

    ann.event("add", &[("title", "Ship <it>"), ("body", "soon"), ("column", "doing")]).await.unwrap();
    for page in [&mut ann, &mut bob] {
        let sent = until(page, "Ship").await;
        assert!(sent.contains("<strong>Ship &lt;it&gt;</strong>") && sent.contains("by Ann"), "{sent}");
        assert!(sent.contains(r#"lh-order="card-3 card-5""#), "the column is sent keyed: {sent}");
        assert!(!sent.contains("Write the release notes"), "not the other columns' cards: {sent}");
        assert!(sent.contains("Ann added “Ship &lt;it&gt;”"), "the activity feed: {sent}");
    }
}

#[tokio::test]
async fn a_moved_card_is_a_new_order_not_the_board_and_the_activity_feed_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path()).await;
    let views = livehtml_demo::views(&state);
    let mut ann = views.test_as("/board", signed_in(&state, "Ann")).await.unwrap();
    settled(&mut ann).await;
    let whole = ann.html().len();

    // Card 2 is second in "To do": up makes it first.
    ann.event("move", &[("id", "2"), ("to", "up")]).await.unwrap();
    let sent = until(&mut ann, "col-todo").await;
    assert!(sent.contains(r#"<ul id="col-todo" lh-order="card-2 card-1">"#), "{sent}");
    // The moved card travels (it now says who moved it); the card it passed does not.
    assert!(sent.contains(r#"id="card-2""#) && !sent.contains(r#"id="card-1""#), "{sent}");
    eprintln!("board move: {} bytes sent (with the activity line), whole view {whole} bytes", sent.len());

    for _ in 0..25 {
        ann.event("move", &[("id", "2"), ("to", "down")]).await.unwrap();
        until(&mut ann, "moved").await;
        ann.event("move", &[("id", "2"), ("to", "up")]).await.unwrap();
        until(&mut ann, "moved").await;
    }
    assert_eq!(ann.stream("activity").len(), 20, "the page keeps the newest 20");
    assert!(ann.stream("activity")[0].contains("Ann moved"));
}
