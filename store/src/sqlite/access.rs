//! Credentials, sessions and login-failure counters on SQLite.
use super::*;

#[async_trait]
impl Access for SqliteStore {
    async fn insert_credential(&self, credential: &Credential) -> Result<()> {
        let cr = credential.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO credentials (id, role, commune, departements, label, code_hash, \
                    created_at, last_used_at, revoked_at, issued_by, expires_at, totp_secret, \
                    totp_confirmed_at, totp_last_step, recovery_hashes) VALUES (?1, ?2, ?3, ?4, \
                    ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                params![
                    cr.id,
                    cr.role.as_str(),
                    cr.commune.as_ref().map(ToString::to_string),
                    cr.departements_text(),
                    cr.label,
                    cr.code_hash,
                    ts(cr.created_at),
                    cr.last_used_at.map(ts),
                    cr.revoked_at.map(ts),
                    cr.issued_by,
                    cr.expires_at.map(ts),
                    cr.second_factor.as_ref().map(|f| f.secret.clone()),
                    cr.second_factor
                        .as_ref()
                        .and_then(|f| f.confirmed_at)
                        .map(ts),
                    cr.second_factor
                        .as_ref()
                        .map_or(0, |f| i64::try_from(f.last_step).unwrap_or(i64::MAX)),
                    cr.second_factor
                        .as_ref()
                        .map(|f| f.recovery_hashes.join(","))
                        .unwrap_or_default()
                ],
            )
            .map(drop)
            .map_err(unavailable)
        })
        .await
    }

    async fn credential_by_hash(&self, code_hash: &str) -> Result<Option<Credential>> {
        self.credential_where("code_hash", code_hash).await
    }

    async fn credential(&self, id: &str) -> Result<Option<Credential>> {
        self.credential_where("id", id).await
    }

    async fn credentials(&self) -> Result<Vec<Credential>> {
        self.with(move |c| {
            let mut statement = c
                .prepare(&format!(
                    "SELECT {CREDENTIAL_COLUMNS} FROM credentials ORDER BY created_at, id"
                ))
                .map_err(unavailable)?;
            let raws = statement
                .query_map([], raw_credential)
                .map_err(unavailable)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(unavailable)?;
            raws.into_iter().map(to_credential).collect()
        })
        .await
    }

    async fn revoke_credential(&self, id: &str, at: DateTime<Utc>) -> Result<bool> {
        let id = id.to_owned();
        self.with(move |c| {
            let tx = c.transaction().map_err(unavailable)?;
            let changed = tx
                .execute(
                    "UPDATE credentials SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                    params![id, ts(at)],
                )
                .map_err(unavailable)?;
            tx.execute("DELETE FROM sessions WHERE credential_id = ?1", [&id])
                .map_err(unavailable)?;
            tx.commit().map_err(unavailable)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn touch_credential(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        let id = id.to_owned();
        self.with(move |c| {
            c.execute(
                "UPDATE credentials SET last_used_at = ?2 WHERE id = ?1",
                params![id, ts(at)],
            )
            .map(drop)
            .map_err(unavailable)
        })
        .await
    }

    async fn set_departements(&self, id: &str, departements: &[String]) -> Result<bool> {
        let id = id.to_owned();
        let text = departements.join(",");
        self.with(move |c| {
            c.execute(
                "UPDATE credentials SET departements = ?2 WHERE id = ?1",
                params![id, text],
            )
            .map(|changed| changed == 1)
            .map_err(unavailable)
        })
        .await
    }

    async fn begin_second_factor(&self, id: &str, secret: &str) -> Result<bool> {
        let (id, secret) = (id.to_owned(), secret.to_owned());
        self.with(move |c| {
            c.execute(
                "UPDATE credentials SET totp_secret = ?2, totp_last_step = 0, recovery_hashes = '' \
                    WHERE id = ?1 AND totp_confirmed_at IS NULL",
                params![id, secret],
            )
            .map(|changed| changed == 1)
            .map_err(unavailable)
        })
        .await
    }

    async fn confirm_second_factor(
        &self,
        id: &str,
        secret: &str,
        step: u64,
        recovery_hashes: &[String],
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let (id, secret) = (id.to_owned(), secret.to_owned());
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        let hashes = recovery_hashes.join(",");
        self.with(move |c| {
            c.execute(
                "UPDATE credentials SET totp_confirmed_at = ?3, totp_last_step = ?4, \
                    recovery_hashes = ?5 WHERE id = ?1 AND totp_secret = ?2 AND \
                    totp_confirmed_at IS NULL",
                params![id, secret, ts(at), step, hashes],
            )
            .map(|changed| changed == 1)
            .map_err(unavailable)
        })
        .await
    }

    async fn use_second_factor_step(&self, id: &str, step: u64) -> Result<bool> {
        let id = id.to_owned();
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        self.with(move |c| {
            c.execute(
                "UPDATE credentials SET totp_last_step = ?2 WHERE id = ?1 AND \
                    totp_confirmed_at IS NOT NULL AND totp_last_step < ?2",
                params![id, step],
            )
            .map(|changed| changed == 1)
            .map_err(unavailable)
        })
        .await
    }

    async fn use_recovery_code(&self, id: &str, hash: &str) -> Result<bool> {
        let (id, hash) = (id.to_owned(), hash.to_owned());
        self.with(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let hashes: Option<String> = tx
                .query_row(
                    "SELECT recovery_hashes FROM credentials WHERE id = ?1 AND \
                        totp_confirmed_at IS NOT NULL",
                    [&id],
                    |row| row.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            let hashes = hashes.unwrap_or_default();
            let left: Vec<&str> = hashes
                .split(',')
                .filter(|h| !h.is_empty() && *h != hash)
                .collect();
            if left.len() == hashes.split(',').filter(|h| !h.is_empty()).count() {
                return Ok(false);
            }
            tx.execute(
                "UPDATE credentials SET recovery_hashes = ?2 WHERE id = ?1",
                params![id, left.join(",")],
            )
            .map_err(unavailable)?;
            tx.commit().map_err(unavailable)?;
            Ok(true)
        })
        .await
    }

    async fn insert_session(&self, session: &Session) -> Result<()> {
        let s = session.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO sessions (id_hash, credential_id, created_at, expires_at, \
                    last_seen_at, pending) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    s.id_hash,
                    s.credential_id,
                    ts(s.created_at),
                    ts(s.expires_at),
                    ts(s.last_seen_at),
                    s.pending
                ],
            )
            .map(drop)
            .map_err(unavailable)
        })
        .await
    }

    async fn session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<Option<Session>> {
        let id_hash = id_hash.to_owned();
        self.with(move |c| {
            let raw = c
                .query_row(
                    "SELECT id_hash, credential_id, created_at, expires_at, \
                        COALESCE(last_seen_at, created_at), pending FROM sessions WHERE \
                        id_hash = ?1 AND expires_at > ?2",
                    params![id_hash, ts(now)],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, String>(4)?,
                            row.get::<_, bool>(5)?,
                        ))
                    },
                )
                .optional()
                .map_err(unavailable)?;
            raw.map(
                |(id_hash, credential_id, created_at, expires_at, last_seen_at, pending)| {
                    Ok(Session {
                        id_hash,
                        credential_id,
                        created_at: parse_ts(&created_at)?,
                        expires_at: parse_ts(&expires_at)?,
                        last_seen_at: parse_ts(&last_seen_at)?,
                        pending,
                    })
                },
            )
            .transpose()
        })
        .await
    }

    async fn delete_session(&self, id_hash: &str) -> Result<()> {
        let id_hash = id_hash.to_owned();
        self.with(move |c| {
            c.execute("DELETE FROM sessions WHERE id_hash = ?1", [id_hash])
                .map(drop)
                .map_err(unavailable)
        })
        .await
    }

    async fn touch_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<()> {
        let id_hash = id_hash.to_owned();
        self.with(move |c| {
            c.execute(
                "UPDATE sessions SET last_seen_at = ?2 WHERE id_hash = ?1",
                params![id_hash, ts(at)],
            )
            .map(drop)
            .map_err(unavailable)
        })
        .await
    }

    async fn delete_sessions_of(&self, credential_id: &str) -> Result<()> {
        let credential_id = credential_id.to_owned();
        self.with(move |c| {
            c.execute(
                "DELETE FROM sessions WHERE credential_id = ?1",
                [credential_id],
            )
            .map(drop)
            .map_err(unavailable)
        })
        .await
    }

    async fn add_failure(
        &self,
        key: &str,
        window: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<u32> {
        let key = key.to_owned();
        self.with(move |c| {
            c.query_row(
                "INSERT INTO login_failures (key, window, count, expires_at) VALUES (?1, ?2, 1, \
                    ?3) \
                 ON CONFLICT (key, window) DO UPDATE SET count = count + 1 RETURNING count",
                params![key, ts(window), ts(expires_at)],
                |row| row.get(0),
            )
            .map_err(unavailable)
        })
        .await
    }

    async fn failures(&self, key: &str, window: DateTime<Utc>, now: DateTime<Utc>) -> Result<u32> {
        let key = key.to_owned();
        self.with(move |c| {
            Ok(c.query_row(
                "SELECT count FROM login_failures WHERE key = ?1 AND window = ?2 AND expires_at > \
                    ?3",
                params![key, ts(window), ts(now)],
                |row| row.get(0),
            )
            .optional()
            .map_err(unavailable)?
            .unwrap_or(0))
        })
        .await
    }
}

impl SqliteStore {
    /// The credential whose `column` (`id` or `code_hash`) is `value`.
    async fn credential_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> Result<Option<Credential>> {
        let value = value.to_owned();
        self.with(move |c| {
            c.query_row(
                &format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE {column} = ?1"),
                [value],
                raw_credential,
            )
            .optional()
            .map_err(unavailable)?
            .map(to_credential)
            .transpose()
        })
        .await
    }
}
