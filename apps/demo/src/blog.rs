//! `/blog` and `/article/{id}`: the Django Channels blog of the seed material, as live views.
//! Navigating between the list and the articles happens over the page's socket; a comment
//! shows up at once for every reader of the article; every URL also renders over plain HTTP.
//!
//! Stored with sqlx's `Any` driver: SQLite in the data directory by default, PostgreSQL when
//! `DATABASE_URL` points at one.

use livehtml::view::{LiveView, Mount, ViewError};
use livehtml::{Context, Event, Html, Info};
use maud::html;
use sqlx::AnyPool;

use crate::AppState;

const MAX_AUTHOR: usize = 40;
const MAX_COMMENT: usize = 2000;

/// Articles and comments.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
}

/// One article.
#[derive(Debug, Clone)]
pub struct Article {
    id: i64,
    title: String,
    body: String,
}

/// One comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    id: i64,
    author: String,
    body: String,
}

const SEED: [(&str, &str); 3] = [
    (
        "HTML over WebSockets",
        "Send HTML, not JSON: the server renders, the browser swaps the fragments in. One language, no client-side framework, and pages that search engines can read.",
    ),
    (
        "Why a live view keeps its state on the server",
        "The page sends events; the server updates a plain struct and sends back only the regions that changed. The browser keeps what you typed.",
    ),
    (
        "Reconnecting without a silent gap",
        "A socket that drops comes back with full-jitter backoff, and the server sends what the page missed, or the whole view.",
    ),
];

impl Store {
    /// Connects to `url` (`sqlite://…` or `postgres://…`), creates the tables and seeds a few
    /// articles on first run.
    pub async fn open(url: &str) -> Result<Self, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let pool = AnyPool::connect(url).await?;
        let postgres = url.starts_with("postgres");
        let id = if postgres { "BIGSERIAL PRIMARY KEY" } else { "INTEGER PRIMARY KEY AUTOINCREMENT" };
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS blog_articles (id {id}, title TEXT NOT NULL, body TEXT NOT NULL)"
        ))
        .execute(&pool)
        .await?;
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS blog_comments (id {id}, article_id BIGINT NOT NULL, author TEXT NOT NULL, body TEXT NOT NULL)"
        ))
        .execute(&pool)
        .await?;
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM blog_articles").fetch_one(&pool).await?;
        if count == 0 {
            for (title, body) in SEED {
                sqlx::query("INSERT INTO blog_articles (title, body) VALUES ($1, $2)")
                    .bind(title)
                    .bind(body)
                    .execute(&pool)
                    .await?;
            }
        }
        Ok(Self { pool })
    }

    /// The connection pool, for what else the demo keeps in this database.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    async fn articles(&self) -> Result<Vec<(Article, i64)>, sqlx::Error> {
        let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT a.id, a.title, a.body, (SELECT COUNT(*) FROM blog_comments c WHERE c.article_id = a.id)
             FROM blog_articles a ORDER BY a.id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id, title, body, n)| (Article { id, title, body }, n)).collect())
    }

    async fn article(&self, id: i64) -> Result<Option<Article>, sqlx::Error> {
        let row: Option<(i64, String, String)> =
            sqlx::query_as("SELECT id, title, body FROM blog_articles WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(id, title, body)| Article { id, title, body }))
    }

    async fn comments(&self, article: i64) -> Result<Vec<Comment>, sqlx::Error> {
        let rows: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT id, author, body FROM blog_comments WHERE article_id = $1 ORDER BY id")
                .bind(article)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(id, author, body)| Comment { id, author, body }).collect())
    }

    async fn add_comment(&self, article: i64, author: &str, body: &str) -> Result<Comment, sqlx::Error> {
        // RETURNING works on both PostgreSQL and SQLite (3.35+, which sqlx bundles).
        let (id,): (i64,) =
            sqlx::query_as("INSERT INTO blog_comments (article_id, author, body) VALUES ($1, $2, $3) RETURNING id")
                .bind(article)
                .bind(author)
                .bind(body)
                .fetch_one(&self.pool)
                .await?;
        Ok(Comment { id, author: author.to_owned(), body: body.to_owned() })
    }
}

/// `/blog`: the list of articles, searchable as you type.
pub struct BlogIndex {
    articles: Vec<(Article, i64)>,
    query: String,
    newest_first: bool,
}

impl LiveView for BlogIndex {
    type State = AppState;

    async fn mount(state: &AppState, _: &Mount) -> Result<Self, ViewError> {
        Ok(Self {
            articles: state.blog.articles().await.map_err(ViewError::internal)?,
            query: String::new(),
            newest_first: false,
        })
    }

    fn title(&self) -> String {
        "Blog".into()
    }

    fn render(&self) -> Html {
        let query = self.query.to_lowercase();
        let mut shown: Vec<_> = self.articles.iter().filter(|(a, _)| a.title.to_lowercase().contains(&query)).collect();
        if self.newest_first {
            shown.reverse();
        }
        html! {
            h1 { "Blog" }
            p {
                input #search type="search" name="q" placeholder="Search titles" autocomplete="off"
                    lh-keyup="search" lh-debounce="200";
                " "
                select #order name="order" lh-change="order" {
                    option value="oldest" { "Oldest first" }
                    option value="newest" { "Newest first" }
                }
            }
            ul #articles {
                @for (a, comments) in shown {
                    li id=(format!("article-{}", a.id)) {
                        a href=(format!("/article/{}", a.id)) lh-nav { (a.title) }
                        " · " span.count { (comments) " comments" }
                    }
                }
            }
        }
        .into()
    }

    async fn on_event(&mut self, _: &mut Context, event: Event) -> Result<(), ViewError> {
        match event.name.as_deref() {
            Some("search") => self.query = event.value("q").unwrap_or_default().chars().take(100).collect(),
            Some("order") => {
                self.newest_first = match event.value("order") {
                    Some("newest") => true,
                    Some("oldest") => false,
                    _ => return Err(ViewError::bad_request("order is newest or oldest")),
                }
            }
            _ => return Err(ViewError::unknown_event(&event)),
        }
        Ok(())
    }
}

/// `/article/{id}`: an article with its comments, live.
pub struct ArticleView {
    state: AppState,
    article: Article,
    comments: Vec<Comment>,
}

fn topic(article: i64) -> String {
    format!("article:{article}")
}

impl LiveView for ArticleView {
    type State = AppState;

    async fn mount(state: &AppState, mount: &Mount) -> Result<Self, ViewError> {
        let id: i64 = mount.param("id").and_then(|id| id.parse().ok()).ok_or(ViewError::NotFound)?;
        let article = state.blog.article(id).await.map_err(ViewError::internal)?.ok_or(ViewError::NotFound)?;
        let comments = state.blog.comments(id).await.map_err(ViewError::internal)?;
        Ok(Self { state: state.clone(), article, comments })
    }

    fn title(&self) -> String {
        self.article.title.clone()
    }

    async fn on_join(&mut self, ctx: &mut Context) -> Result<(), ViewError> {
        ctx.subscribe(&topic(self.article.id));
        Ok(())
    }

    fn render(&self) -> Html {
        html! {
            p { a #back href="/blog" lh-nav { "← All articles" } }
            article #article {
                h1 #title { (self.article.title) }
                div #body { p { (self.article.body) } }
            }
            h2 { "Comments " span #comment-count { "(" (self.comments.len()) ")" } }
            ul #comments {
                @for c in &self.comments {
                    li id=(format!("comment-{}", c.id)) { strong { (c.author) } ": " (c.body) }
                }
            }
            form #comment-form lh-submit="comment" lh-reset="body" {
                input #author name="author" placeholder="Your name" autocomplete="off";
                br;
                textarea #comment-body name="body" rows="3" placeholder="Your comment" {}
                br;
                // This line makes the form's own markup change when anyone comments: the whole
                // form is re-sent, and morphing keeps what the reader was typing in it.
                small.hint { "Yours will be comment #" (self.comments.len() + 1) " " }
                button #post type="submit" { "Post comment" }
            }
        }
        .into()
    }

    async fn on_event(&mut self, ctx: &mut Context, event: Event) -> Result<(), ViewError> {
        if event.name.as_deref() != Some("comment") {
            return Err(ViewError::unknown_event(&event));
        }
        let body = event.value("body").unwrap_or_default().trim();
        if body.is_empty() {
            return Err(ViewError::bad_request("Write a comment first."));
        }
        let author = event.value("author").map(str::trim).filter(|a| !a.is_empty()).unwrap_or("Anonymous");
        let author: String = author.chars().take(MAX_AUTHOR).collect();
        let body: String = body.chars().take(MAX_COMMENT).collect();
        let comment =
            self.state.blog.add_comment(self.article.id, &author, &body).await.map_err(ViewError::internal)?;
        self.comments.push(comment.clone());
        // Every reader of this article, on every process, this page included (which already
        // has it), hears of it; each reads the new comments from the database.
        ctx.pubsub().publish_text_info(&topic(self.article.id), comment.id.to_string());
        Ok(())
    }

    async fn on_info(&mut self, _: &mut Context, info: Info) -> Result<(), ViewError> {
        let Some(id) = info.get::<String>().and_then(|id| id.parse::<i64>().ok()) else { return Ok(()) };
        if !self.comments.iter().any(|c| c.id == id) {
            self.comments = self.state.blog.comments(self.article.id).await.map_err(ViewError::internal)?;
        }
        Ok(())
    }
}
