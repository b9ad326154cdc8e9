//! What the processes of a cluster share beyond topics, in the blog's database (SQLite in the
//! data directory, which processes on one machine share; PostgreSQL through `DATABASE_URL`,
//! which processes on several machines share): the counter every tab shares and the
//! notification feed's toasts.

use sqlx::AnyPool;

/// The shared counter and notifications.
#[derive(Debug, Clone)]
pub struct Shared {
    pool: AnyPool,
}

impl Shared {
    /// Creates the tables on `pool` (`postgres`: its dialect) if they are not there.
    pub async fn open(pool: AnyPool, postgres: bool) -> Result<Self, sqlx::Error> {
        let id = if postgres { "BIGSERIAL PRIMARY KEY" } else { "INTEGER PRIMARY KEY AUTOINCREMENT" };
        sqlx::query("CREATE TABLE IF NOT EXISTS demo_counter (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)")
            .execute(&pool)
            .await?;
        let conflict = "ON CONFLICT (id) DO NOTHING";
        sqlx::query(&format!("INSERT INTO demo_counter (id, n) VALUES (1, 0) {conflict}")).execute(&pool).await?;
        sqlx::query(&format!("CREATE TABLE IF NOT EXISTS demo_notifications (id {id}, text TEXT NOT NULL)"))
            .execute(&pool)
            .await?;
        Ok(Self { pool })
    }

    /// The shared count now.
    pub async fn count(&self) -> Result<i64, sqlx::Error> {
        let (n,): (i64,) = sqlx::query_as("SELECT n FROM demo_counter WHERE id = 1").fetch_one(&self.pool).await?;
        Ok(n)
    }

    /// Adds one to the shared count and returns it (one statement: two processes never get
    /// the same value).
    pub async fn bump(&self) -> Result<i64, sqlx::Error> {
        let (n,): (i64,) =
            sqlx::query_as("UPDATE demo_counter SET n = n + 1 WHERE id = 1 RETURNING n").fetch_one(&self.pool).await?;
        Ok(n)
    }

    /// Stores a notification and returns its number.
    pub async fn notify(&self, text: &str) -> Result<i64, sqlx::Error> {
        let (n,): (i64,) = sqlx::query_as("INSERT INTO demo_notifications (text) VALUES ($1) RETURNING id")
            .bind(text)
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    /// The last `limit` notifications, oldest first.
    pub async fn notifications(&self, limit: i64) -> Result<Vec<(i64, String)>, sqlx::Error> {
        let mut rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, text FROM demo_notifications ORDER BY id DESC LIMIT $1")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        rows.reverse();
        Ok(rows)
    }
}
