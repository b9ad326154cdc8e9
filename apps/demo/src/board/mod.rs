//! `/board`: a shared task board. Cards in columns, kept in the database, moved by anyone
//! signed in (by name, in a signed cookie) and seen moving by every viewer at once; each card
//! shows who changed it last. It uses what a live view offers: keyed lists (a move sends the
//! new order, not the board), a stream (the activity feed keeps its last 20 entries in the
//! page, none in the view), an async statistics panel, inline validation on the card form,
//! loading states, a details panel the page toggles by itself, presence (who is viewing), and
//! the app's own extractor (the signed cookie jar) on the HTTP render and again on the join.

mod store;

use axum::Router;
use axum::extract::{Form, FromRef, Path, State};
use axum::http::{StatusCode, header};
use axum::response::Redirect;
use axum::routing::{get, post};
use axum_extra::extract::cookie::{Cookie, Key, SameSite, SignedCookieJar};
use livehtml::protocol::close;
use livehtml::pubsub::PresenceDiff;
use livehtml::session::{AsyncValue, Done};
use livehtml::view::{LiveView, Mount, Stream, Upload, UploadedFile, ViewError};
use livehtml::{Context, Event, Html, Info};
use maud::{Markup, html};

pub use store::{COLUMNS, Card, Stats, Store};

use crate::AppState;

/// Where every change to the board is announced (a line for the activity feed).
const TOPIC: &str = "board";
/// The cookie that says who is signed in.
const NAME_COOKIE: &str = "board-name";
const MAX_NAME: usize = 30;
const MAX_TITLE: usize = 80;
const MAX_BODY: usize = 500;
/// Entries of the activity feed a page keeps.
const ACTIVITY: usize = 20;
/// Images a card takes, and what they are stored as.
const IMAGE_TYPES: [(&str, &str); 4] =
    [("image/png", "png"), ("image/jpeg", "jpg"), ("image/gif", "gif"), ("image/webp", "webp")];
/// The largest image a card takes.
const MAX_IMAGE: u64 = 8_000_000;

impl FromRef<AppState> for Key {
    fn from_ref(state: &AppState) -> Key {
        state.cookie_key.clone()
    }
}

/// The topic on which a user's own views hear that they signed out.
fn user_topic(name: &str) -> String {
    format!("board-user:{name}")
}

/// The card form as the page has it, and what is wrong with it. What a page typed outlives its
/// process (`LiveView::save`): the cards are the database's.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Draft {
    title: String,
    body: String,
    column: String,
    /// The user tried to add it: an empty title is an error from now on.
    submitted: bool,
}

impl Draft {
    fn update(&mut self, event: &Event) {
        self.title = event.value("title").unwrap_or_default().to_owned();
        self.body = event.value("body").unwrap_or_default().to_owned();
        self.column = event.value("column").unwrap_or("todo").to_owned();
    }

    fn title_error(&self) -> Option<String> {
        let n = self.title.trim().chars().count();
        if n > MAX_TITLE {
            Some(format!("At most {MAX_TITLE} characters ({n} now)"))
        } else if n == 0 && self.submitted {
            Some("A card needs a title".into())
        } else {
            None
        }
    }

    fn body_error(&self) -> Option<String> {
        let n = self.body.chars().count();
        (n > MAX_BODY).then(|| format!("At most {MAX_BODY} characters ({n} now)"))
    }
}

/// The board page.
pub struct BoardView {
    state: AppState,
    /// Who is signed in (from the signed cookie), if anyone.
    user: Option<String>,
    cards: Vec<Card>,
    draft: Draft,
    stats: AsyncValue<Stats>,
    activity: Stream,
    /// Activity lines this view has shown (their items' ids).
    announced: u64,
    viewers: Vec<String>,
    /// Images on their way to cards.
    images: Upload,
}

impl BoardView {
    fn signed_in(&self) -> Result<&str, ViewError> {
        self.user.as_deref().ok_or_else(|| ViewError::bad_request("Sign in to change the board"))
    }

    fn load_stats(&self, ctx: &mut Context) {
        let store = self.state.board.clone();
        ctx.spawn("stats", async move { store.stats().await.map_err(|e| e.to_string()) });
    }

    /// Where `to` (left, right, up, down) takes card `id`: its column and index there.
    fn destination(&self, id: i64, to: &str) -> Option<(&'static str, usize)> {
        let card = self.cards.iter().find(|c| c.id == id)?;
        let col = COLUMNS.iter().position(|(c, _)| *c == card.column)?;
        let index = self.cards.iter().filter(|c| c.column == card.column).position(|c| c.id == id)?;
        match to {
            "left" => Some((COLUMNS[col.checked_sub(1)?].0, usize::MAX)),
            "right" => Some((COLUMNS.get(col + 1)?.0, usize::MAX)),
            "up" => Some((COLUMNS[col].0, index.checked_sub(1)?)),
            "down" => Some((COLUMNS[col].0, index + 1)),
            _ => None,
        }
    }

    fn announce(&self, ctx: &Context, line: String) {
        ctx.pubsub().publish_text_info(TOPIC, line);
    }
}

impl LiveView for BoardView {
    type State = AppState;

    async fn mount(state: &AppState, mount: &Mount) -> Result<Self, ViewError> {
        // The app's own extractor, on the page's GET and again when its socket joins.
        let jar: SignedCookieJar = mount.extract(state).await.map_err(|e| match e {})?;
        let user = jar.get(NAME_COOKIE).map(|c| c.value().to_owned()).filter(|n| valid_name(n));
        Ok(Self {
            state: state.clone(),
            user,
            cards: state.board.cards().await.map_err(ViewError::internal)?,
            draft: Draft { column: "todo".into(), ..Draft::default() },
            stats: AsyncValue::Loading,
            activity: Stream::new("activity").limit(ACTIVITY),
            announced: 0,
            viewers: Vec::new(),
            images: Upload::new("image").accept(&IMAGE_TYPES.map(|(mime, _)| mime)).max_size(MAX_IMAGE).max_files(3),
        })
    }

    fn title(&self) -> String {
        "Board".into()
    }

    async fn on_join(&mut self, ctx: &mut Context) -> Result<(), ViewError> {
        ctx.subscribe(TOPIC);
        let (key, shown) = match &self.user {
            Some(name) => (format!("user:{name}"), name.clone()),
            None => (format!("guest:{}", ctx.id()), "a guest".to_owned()),
        };
        ctx.track(TOPIC, &key, &shown);
        if let Some(name) = &self.user {
            ctx.subscribe(&user_topic(name));
        }
        self.viewers = ctx.pubsub().members(TOPIC).into_iter().map(|m| m.meta).collect();
        // Also for a view kept across a reconnect: what changed meanwhile is counted again.
        self.cards = self.state.board.cards().await.map_err(ViewError::internal)?;
        self.load_stats(ctx);
        Ok(())
    }

    fn render(&self) -> Html {
        render(self).into()
    }

    async fn on_event(&mut self, ctx: &mut Context, event: Event) -> Result<(), ViewError> {
        match event.name.as_deref() {
            Some("validate") => self.draft.update(&event),
            Some("add") => {
                self.draft.update(&event);
                self.draft.submitted = true;
                let user = self.signed_in()?.to_owned();
                if self.draft.title_error().is_some() || self.draft.body_error().is_some() {
                    return Err(ViewError::bad_request("The card has mistakes: see beside its fields"));
                }
                let column = COLUMNS.iter().find(|(c, _)| *c == self.draft.column).map_or("todo", |(c, _)| *c);
                let title = self.draft.title.trim().to_owned();
                self.state
                    .board
                    .add(column, &title, self.draft.body.trim(), &user)
                    .await
                    .map_err(ViewError::internal)?;
                self.draft = Draft { column: column.into(), ..Draft::default() };
                self.announce(ctx, format!("{user} added “{title}”"));
            }
            Some("move") => {
                let user = self.signed_in()?.to_owned();
                let id: i64 = event
                    .value("id")
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| ViewError::bad_request("no such card"))?;
                let to = event.value("to").unwrap_or_default();
                let Some((column, index)) = self.destination(id, to) else { return Ok(()) };
                let title = self.cards.iter().find(|c| c.id == id).map(|c| c.title.clone()).unwrap_or_default();
                match self.state.board.move_card(id, column, index, &user).await.map_err(ViewError::internal)? {
                    Some(()) => self.announce(ctx, format!("{user} moved “{title}” {to}")),
                    None => return Err(ViewError::bad_request("That card is gone")),
                }
            }
            _ => return Err(ViewError::unknown_event(&event)),
        }
        Ok(())
    }

    fn upload(&mut self, name: &str) -> Option<&mut Upload> {
        (name == "image" && self.user.is_some()).then_some(&mut self.images)
    }

    async fn on_upload(&mut self, ctx: &mut Context, file: UploadedFile) -> Result<(), ViewError> {
        let user = self.signed_in()?.to_owned();
        let card = file.values.get("card").and_then(|v| v.parse::<i64>().ok());
        let Some(card) = card.and_then(|id| self.cards.iter().find(|c| c.id == id)) else {
            return Err(ViewError::bad_request("That card is gone"));
        };
        let (id, title) = (card.id, card.title.clone());
        let ext = IMAGE_TYPES.iter().find(|(mime, _)| *mime == file.content_type).map_or("bin", |(_, ext)| *ext);
        let name = format!("{id}-{}.{ext}", crate::user::new_id());
        let dir = self.state.data_dir.join("uploads");
        tokio::fs::create_dir_all(&dir).await.map_err(ViewError::internal)?;
        tokio::fs::write(dir.join(&name), &file.bytes).await.map_err(ViewError::internal)?;
        self.state.board.set_image(id, &name, &user).await.map_err(ViewError::internal)?;
        self.announce(ctx, format!("{user} attached an image to “{title}”"));
        Ok(())
    }

    fn save(&self) -> Option<Vec<u8>> {
        serde_json::to_vec(&self.draft).ok()
    }

    fn restore(&mut self, saved: &[u8]) -> bool {
        serde_json::from_slice(saved).map(|draft| self.draft = draft).is_ok()
    }

    async fn on_info(&mut self, ctx: &mut Context, info: Info) -> Result<(), ViewError> {
        if info.topic() == TOPIC {
            if let Some(line) = info.get::<String>() {
                self.cards = self.state.board.cards().await.map_err(ViewError::internal)?;
                self.announced += 1;
                self.activity.prepend(html! { li id={ "activity-" (self.announced) } { (line) } });
                self.load_stats(ctx);
            } else if info.get::<PresenceDiff>().is_some() {
                self.viewers = ctx.pubsub().members(TOPIC).into_iter().map(|m| m.meta).collect();
            }
            return Ok(());
        }
        if self.user.as_deref().is_some_and(|u| info.topic() == user_topic(u)) {
            // Signed out (in this tab or another): the page reloads, signed out.
            ctx.close(close::STALE_VIEW, "signed out");
            return Ok(());
        }
        if let Ok(done) = info.take::<Done<Result<Stats, String>>>() {
            self.stats = match done.into_result() {
                Ok(result) => result.into(),
                Err(failed) => AsyncValue::Failed(failed.to_string()),
            };
        }
        Ok(())
    }
}

fn valid_name(name: &str) -> bool {
    let n = name.trim().chars().count();
    (1..=MAX_NAME).contains(&n) && !name.chars().any(char::is_control)
}

fn render(view: &BoardView) -> Markup {
    let draft = &view.draft;
    html! {
        h1 { "Board" }
        div #who {
            @if let Some(user) = &view.user {
                "Signed in as " strong { (user) } " "
                form.inline method="post" action="/board/signout" { button #signout { "Sign out" } }
            } @else {
                form #signin.inline method="post" action="/board/signin" {
                    input #signin-name name="name" placeholder="Your name" required maxlength=(MAX_NAME);
                    " " button { "Sign in" }
                }
                " to change cards; anyone can watch."
            }
        }
        p #viewers { (view.viewers.len()) " viewing: " (view.viewers.join(", ")) }
        div.board {
            @for (col, heading) in COLUMNS {
                @let cards: Vec<&Card> = view.cards.iter().filter(|c| c.column == col).collect();
                section.column {
                    h2 id={ "head-" (col) } { (heading) " (" (cards.len()) ")" }
                    ul id={ "col-" (col) } { @for card in cards { (card_item(card, view.user.is_some())) } }
                }
            }
        }
        h2 { "New card" }
        form #card-form lh-change="validate" lh-submit="add" lh-debounce="150" {
            label { "Title " input #card-title name="title" value=(draft.title) autocomplete="off"; }
            span #title-error.error { @if let Some(e) = draft.title_error() { (e) } }
            label { "Details " textarea #card-body name="body" rows="2" { (draft.body) } }
            span #body-error.error { @if let Some(e) = draft.body_error() { (e) } }
            label { "Column "
                select #card-column name="column" {
                    @for (col, heading) in COLUMNS { option value=(col) selected[draft.column == col] { (heading) } }
                }
            }
            " " button #add-card lh-disable-with="Adding…" { "Add card" }
        }
        section #uploads {
            @for entry in view.images.entries() {
                p { (entry.name()) " "
                    progress value=(entry.received()) max=(entry.size()) { (entry.percent()) "%" }
                    " " button type="button" lh-click="lh:upload-cancel" lh-value-upload="image" lh-value-id=(entry.id()) { "Cancel" }
                }
            }
            @for error in view.images.errors() { p.error { (error) } }
        }
        section #stats {
            @match &view.stats {
                AsyncValue::Loading => span.loading { "Loading statistics…" },
                AsyncValue::Ready(s) => {
                    @for ((_, heading), n) in COLUMNS.iter().zip(&s.per_column) { (heading) ": " (n) " · " }
                    (s.people) " people changed cards"
                }
                AsyncValue::Failed(e) => span.error { "Statistics unavailable: " (e) },
            }
        }
        h2 { "Activity" }
        ul #activity lh-stream=(view.activity.limit_attr()) { (view.activity) }
    }
}

fn card_item(card: &Card, signed_in: bool) -> Markup {
    html! {
        li id={ "card-" (card.id) } .card {
            strong { (card.title) } " " small.by { "by " (card.by) }
            @if let Some(image) = &card.image { img.thumb src={ "/board/image/" (image) } alt={ "Image of " (card.title) }; }
            div.moves {
                @for (to, label) in [("left", "←"), ("up", "↑"), ("down", "↓"), ("right", "→")] {
                    button type="button" lh-click="move" lh-value-id=(card.id) lh-value-to=(to) title={ "Move " (to) } { (label) }
                }
                " " button type="button" lh-js={ "toggle #details-" (card.id) } { "Details" }
            }
            div id={ "details-" (card.id) } hidden {
                p { (card.body) }
                @if signed_in {
                    label { "Attach an image "
                        input type="file" lh-upload="image" lh-value-card=(card.id) accept=(IMAGE_TYPES.map(|(m, _)| m).join(","));
                    }
                }
            }
        }
    }
}

#[derive(Debug, serde::Deserialize)]
struct SignIn {
    name: String,
}

async fn sign_in(jar: SignedCookieJar, Form(form): Form<SignIn>) -> (SignedCookieJar, Redirect) {
    let name = form.name.trim().to_owned();
    if !valid_name(&name) {
        return (jar, Redirect::to("/board"));
    }
    let cookie = Cookie::build((NAME_COOKIE, name)).path("/").http_only(true).same_site(SameSite::Lax);
    (jar.add(cookie), Redirect::to("/board"))
}

async fn sign_out(State(state): State<AppState>, jar: SignedCookieJar) -> (SignedCookieJar, Redirect) {
    if let Some(name) = jar.get(NAME_COOKIE).map(|c| c.value().to_owned()) {
        // Every open board of this user, in every process, closes and reloads signed out.
        state.live.pubsub().publish_text_info(&user_topic(&name), "signed out");
    }
    (jar.remove(Cookie::build(NAME_COOKIE).path("/")), Redirect::to("/board"))
}

/// `/board/image/{file}`: a card's image, from the data directory.
async fn image(State(state): State<AppState>, Path(file): Path<String>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (stem, ext) = file.rsplit_once('.').unwrap_or_default();
    let mime = IMAGE_TYPES.iter().find(|(_, e)| *e == ext).map(|(mime, _)| *mime);
    let safe = stem.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') && !stem.is_empty();
    let (Some(mime), true) = (mime, safe) else { return StatusCode::NOT_FOUND.into_response() };
    match tokio::fs::read(state.data_dir.join("uploads").join(&file)).await {
        Ok(bytes) => {
            ([(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, "public, max-age=86400")], bytes).into_response()
        }
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Sign-in and sign-out (plain forms; the board itself is a live view in [`crate::views`]),
/// and the cards' images.
pub(crate) fn routes(state: &AppState) -> Router {
    Router::new()
        .route("/board/signin", post(sign_in))
        .route("/board/signout", post(sign_out))
        .route("/board/image/{file}", get(image))
        .with_state(state.clone())
}
