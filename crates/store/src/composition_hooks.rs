//! Composition hooks (Twilio's CompositionHooks): stored settings of a
//! composition that the server makes of every room that ends. The REST API
//! writes them; the hook runner reads the enabled ones when a room ends.

use salon_sid::{AccountSid, CompositionHookSid};
use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};

use crate::queries::{Order, Sql, created_between, page};
use crate::records::{sid, timestamp};
use crate::{Cursor, Page, PageRequest, Result, Store, Timestamp};

/// A composition hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompositionHookRecord {
    pub sid: CompositionHookSid,
    pub account_sid: AccountSid,
    /// Unique per account.
    pub friendly_name: String,
    pub enabled: bool,
    /// `VideoLayout` JSON as given (`{}`: none).
    pub video_layout: String,
    /// `AudioSources` as a JSON array.
    pub audio_sources: String,
    pub format: String,
    pub resolution: String,
    pub trim: bool,
    pub status_callback: Option<String>,
    pub status_callback_method: String,
    pub date_created: Timestamp,
    pub date_updated: Timestamp,
}

impl FromRow<'_, AnyRow> for CompositionHookRecord {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            sid: sid(row, "sid")?,
            account_sid: sid(row, "account_sid")?,
            friendly_name: row.try_get("friendly_name")?,
            enabled: row.try_get::<i64, _>("enabled")? != 0,
            video_layout: row.try_get("video_layout")?,
            audio_sources: row.try_get("audio_sources")?,
            format: row.try_get("format")?,
            resolution: row.try_get("resolution")?,
            trim: row.try_get::<i64, _>("trim")? != 0,
            status_callback: row.try_get("status_callback")?,
            status_callback_method: row.try_get("status_callback_method")?,
            date_created: timestamp(row, "date_created")?,
            date_updated: timestamp(row, "date_updated")?,
        })
    }
}

/// Filters of `GET /v1/CompositionHooks`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompositionHookFilter {
    pub enabled: Option<bool>,
    pub friendly_name: Option<String>,
    pub created_after: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
}

impl Store {
    /// Write a new hook. A friendly name the account already uses is a
    /// unique violation ([`crate::StoreError::is_unique_violation`]).
    pub async fn insert_composition_hook(&self, h: &CompositionHookRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO composition_hooks (sid, account_sid, friendly_name, enabled, video_layout,
                audio_sources, format, resolution, trim, status_callback, status_callback_method,
                date_created, date_updated)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(h.sid.as_str())
        .bind(h.account_sid.as_str())
        .bind(&h.friendly_name)
        .bind(i64::from(h.enabled))
        .bind(&h.video_layout)
        .bind(&h.audio_sources)
        .bind(&h.format)
        .bind(&h.resolution)
        .bind(i64::from(h.trim))
        .bind(&h.status_callback)
        .bind(&h.status_callback_method)
        .bind(h.date_created.millis())
        .bind(h.date_updated.millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Replace a hook's settings (all but its SID, account and creation
    /// date). Returns false if there is no such hook.
    pub async fn update_composition_hook(&self, h: &CompositionHookRecord) -> Result<bool> {
        let changed = sqlx::query(
            "UPDATE composition_hooks SET friendly_name = $2, enabled = $3, video_layout = $4,
                audio_sources = $5, format = $6, resolution = $7, trim = $8,
                status_callback = $9, status_callback_method = $10, date_updated = $11
             WHERE sid = $1",
        )
        .bind(h.sid.as_str())
        .bind(&h.friendly_name)
        .bind(i64::from(h.enabled))
        .bind(&h.video_layout)
        .bind(&h.audio_sources)
        .bind(&h.format)
        .bind(&h.resolution)
        .bind(i64::from(h.trim))
        .bind(&h.status_callback)
        .bind(&h.status_callback_method)
        .bind(h.date_updated.millis())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(changed > 0)
    }

    pub async fn composition_hook(
        &self,
        sid: CompositionHookSid,
    ) -> Result<Option<CompositionHookRecord>> {
        Ok(
            sqlx::query_as("SELECT * FROM composition_hooks WHERE sid = $1")
                .bind(sid.as_str())
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Remove a hook. Returns false if there was none.
    pub async fn delete_composition_hook(&self, sid: CompositionHookSid) -> Result<bool> {
        let changed = sqlx::query("DELETE FROM composition_hooks WHERE sid = $1")
            .bind(sid.as_str())
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(changed > 0)
    }

    /// Hooks matching `filter`, newest first.
    pub async fn composition_hooks(
        &self,
        account: AccountSid,
        filter: &CompositionHookFilter,
        request: &PageRequest,
    ) -> Result<Page<CompositionHookRecord>> {
        let mut q = Sql::new("SELECT * FROM composition_hooks WHERE account_sid = ");
        q.push_bind(account.to_string());
        if let Some(enabled) = filter.enabled {
            q.push(" AND enabled = ").push_bind(i64::from(enabled));
        }
        if let Some(name) = &filter.friendly_name {
            q.push(" AND friendly_name = ").push_bind(name.clone());
        }
        created_between(&mut q, filter.created_after, filter.created_before);
        page(
            self,
            q,
            "date_created",
            "sid",
            Order::NewestFirst,
            request,
            |h: &CompositionHookRecord| Cursor {
                date_created: h.date_created,
                sid: h.sid.to_string(),
            },
        )
        .await
    }

    /// The account's enabled hooks (at most 100, oldest first): what a room
    /// that ends is composed with.
    pub async fn enabled_composition_hooks(
        &self,
        account: AccountSid,
    ) -> Result<Vec<CompositionHookRecord>> {
        Ok(sqlx::query_as(
            "SELECT * FROM composition_hooks WHERE account_sid = $1 AND enabled = 1
             ORDER BY date_created, sid LIMIT 100",
        )
        .bind(account.as_str())
        .fetch_all(&self.pool)
        .await?)
    }
}
