//! The board's cards, in the demo's database (SQLite by default, PostgreSQL by `DATABASE_URL`).

use sqlx::AnyPool;

/// The board's columns: id and heading.
pub const COLUMNS: [(&str, &str); 3] = [("todo", "To do"), ("doing", "Doing"), ("done", "Done")];

/// One card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    /// Its id (in its element's id, `card-N`).
    pub id: i64,
    /// Its column's id.
    pub column: String,
    /// Its title.
    pub title: String,
    /// Its details.
    pub body: String,
    /// Who changed it last.
    pub by: String,
    /// Its image's file name under the data directory's `uploads`, if one was attached.
    pub image: Option<String>,
}

/// What the statistics panel shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Cards per column, in [`COLUMNS`] order.
    pub per_column: Vec<i64>,
    /// People who changed a card.
    pub people: i64,
}

/// The board's table.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
}

type Row = (i64, String, String, String, String, Option<String>);

impl Store {
    /// Creates the table on `pool` (`postgres`: its dialect) and a first few cards.
    pub async fn open(pool: AnyPool, postgres: bool) -> Result<Self, sqlx::Error> {
        let id = if postgres { "BIGSERIAL PRIMARY KEY" } else { "INTEGER PRIMARY KEY AUTOINCREMENT" };
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS board_cards (id {id}, col TEXT NOT NULL, position BIGINT NOT NULL, \
             title TEXT NOT NULL, body TEXT NOT NULL, by_name TEXT NOT NULL, image TEXT)"
        ))
        .execute(&pool)
        .await?;
        let store = Self { pool };
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM board_cards").fetch_one(&store.pool).await?;
        if count == 0 {
            for (col, title, body) in [
                ("todo", "Write the release notes", "What changed, for whom, and how to upgrade."),
                ("todo", "Try the board in two windows", "Move a card here; watch it move there."),
                ("doing", "Attach a screenshot", "Open a card's details and upload an image."),
                ("done", "Set up the board", "Columns, cards, and who changed what."),
            ] {
                store.add(col, title, body, "livehtml").await?;
            }
        }
        Ok(store)
    }

    /// Every card, by column and position.
    pub async fn cards(&self) -> Result<Vec<Card>, sqlx::Error> {
        let rows: Vec<Row> =
            sqlx::query_as("SELECT id, col, title, body, by_name, image FROM board_cards ORDER BY col, position, id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(id, column, title, body, by, image)| Card { id, column, title, body, by, image })
            .collect())
    }

    /// Adds a card at the end of `column`.
    pub async fn add(&self, column: &str, title: &str, body: &str, by: &str) -> Result<i64, sqlx::Error> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO board_cards (col, position, title, body, by_name) \
             VALUES ($1, (SELECT COALESCE(MAX(position), 0) + 1 FROM board_cards WHERE col = $2), $3, $4, $5) RETURNING id",
        )
        .bind(column)
        .bind(column)
        .bind(title)
        .bind(body)
        .bind(by)
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    /// Moves card `id` to `column` at `index` (past the end: last). `None` if there is no such
    /// card.
    pub async fn move_card(&self, id: i64, column: &str, index: usize, by: &str) -> Result<Option<()>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, col FROM board_cards ORDER BY col, position, id").fetch_all(&mut *tx).await?;
        let Some((_, from)) = rows.iter().find(|(card, _)| *card == id).cloned() else { return Ok(None) };
        let mut target: Vec<i64> = rows.iter().filter(|(c, col)| col == column && *c != id).map(|(c, _)| *c).collect();
        target.insert(index.min(target.len()), id);
        for (position, card) in target.iter().enumerate() {
            sqlx::query("UPDATE board_cards SET col = $1, position = $2 WHERE id = $3")
                .bind(column)
                .bind(position as i64)
                .bind(*card)
                .execute(&mut *tx)
                .await?;
        }
        if from != column {
            let rest = rows.iter().filter(|(c, col)| *col == from && *c != id).map(|(c, _)| *c);
            for (position, card) in rest.enumerate() {
                sqlx::query("UPDATE board_cards SET position = $1 WHERE id = $2")
                    .bind(position as i64)
                    .bind(card)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        sqlx::query("UPDATE board_cards SET by_name = $1 WHERE id = $2").bind(by).bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Some(()))
    }

    /// Sets card `id`'s image (a file name under `uploads`).
    pub async fn set_image(&self, id: i64, image: &str, by: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("UPDATE board_cards SET image = $1, by_name = $2 WHERE id = $3")
            .bind(image)
            .bind(by)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Counts for the statistics panel.
    pub async fn stats(&self) -> Result<Stats, sqlx::Error> {
        let mut per_column = Vec::with_capacity(COLUMNS.len());
        for (col, _) in COLUMNS {
            let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM board_cards WHERE col = $1")
                .bind(col)
                .fetch_one(&self.pool)
                .await?;
            per_column.push(n);
        }
        let (people,): (i64,) =
            sqlx::query_as("SELECT COUNT(DISTINCT by_name) FROM board_cards").fetch_one(&self.pool).await?;
        Ok(Stats { per_column, people })
    }
}
