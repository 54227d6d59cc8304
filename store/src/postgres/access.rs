//! Credentials, sessions and login-failure counters on PostgreSQL.
use tokio_postgres::Row;

use super::*;

fn raw_credential(row: &Row) -> Result<RawCredential> {
    let get = |i: usize| -> Result<String> { row.try_get(i).map_err(unavailable) };
    let opt = |i: usize| -> Result<Option<String>> { row.try_get(i).map_err(unavailable) };
    Ok(RawCredential {
        id: get(0)?,
        role: get(1)?,
        commune: opt(2)?,
        departements: get(3)?,
        label: get(4)?,
        code_hash: get(5)?,
        created_at: get(6)?,
        last_used_at: opt(7)?,
        revoked_at: opt(8)?,
        issued_by: opt(9)?,
        expires_at: opt(10)?,
        totp_secret: opt(11)?,
        totp_confirmed_at: opt(12)?,
        totp_last_step: row.try_get(13).map_err(unavailable)?,
        recovery_hashes: get(14)?,
    })
}

impl PostgresStore {
    /// Runs `sql` with `params`; returns whether it changed exactly one row.
    pub(super) async fn changed_one(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<bool> {
        let conn = self.pooled().await?;
        let changed = conn.execute(sql, params).await.map_err(unavailable)?;
        Ok(changed == 1)
    }

    async fn credential_where(&self, condition: &str, value: &str) -> Result<Option<Credential>> {
        let conn = self.pooled().await?;
        let row = conn
            .query_opt(
                &format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE {condition} = $1"),
                &[&value],
            )
            .await
            .map_err(unavailable)?;
        row.map(|row| raw_credential(&row).and_then(to_credential))
            .transpose()
    }
}

#[async_trait]
impl Access for PostgresStore {
    async fn insert_credential(&self, cr: &Credential) -> Result<()> {
        let conn = self.pooled().await?;
        let factor = cr.second_factor.as_ref();
        conn.execute(
            "INSERT INTO credentials (id, role, commune, departements, label, code_hash, \
             created_at, last_used_at, revoked_at, issued_by, expires_at, totp_secret, \
             totp_confirmed_at, totp_last_step, recovery_hashes) VALUES ($1, $2, $3, $4, $5, $6, \
             $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            &[
                &cr.id,
                &cr.role.as_str(),
                &cr.commune.as_ref().map(ToString::to_string),
                &cr.departements_text(),
                &cr.label,
                &cr.code_hash,
                &ts(cr.created_at),
                &cr.last_used_at.map(ts),
                &cr.revoked_at.map(ts),
                &cr.issued_by,
                &cr.expires_at.map(ts),
                &factor.map(|f| f.secret.clone()),
                &factor.and_then(|f| f.confirmed_at).map(ts),
                &factor.map_or(0, |f| i64::try_from(f.last_step).unwrap_or(i64::MAX)),
                &factor
                    .map(|f| f.recovery_hashes.join(","))
                    .unwrap_or_default(),
            ],
        )
        .await
        .map(drop)
        .map_err(unavailable)
    }

    async fn credential_by_hash(&self, code_hash: &str) -> Result<Option<Credential>> {
        self.credential_where("code_hash", code_hash).await
    }

    async fn credential(&self, id: &str) -> Result<Option<Credential>> {
        self.credential_where("id", id).await
    }

    async fn credentials(&self) -> Result<Vec<Credential>> {
        let conn = self.pooled().await?;
        let rows = conn
            .query(
                &format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials ORDER BY created_at, id"),
                &[],
            )
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|row| raw_credential(row).and_then(to_credential))
            .collect()
    }

    async fn revoke_credential(&self, id: &str, at: DateTime<Utc>) -> Result<bool> {
        let mut conn = self.pooled().await?;
        let tx = conn.transaction().await.map_err(unavailable)?;
        let changed = tx
            .execute(
                "UPDATE credentials SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                &[&id, &ts(at)],
            )
            .await
            .map_err(unavailable)?;
        tx.execute("DELETE FROM sessions WHERE credential_id = $1", &[&id])
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(changed == 1)
    }

    async fn touch_credential(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        self.changed_one(
            "UPDATE credentials SET last_used_at = $2 WHERE id = $1",
            &[&id, &ts(at)],
        )
        .await
        .map(drop)
    }

    async fn set_departements(&self, id: &str, departements: &[String]) -> Result<bool> {
        self.changed_one(
            "UPDATE credentials SET departements = $2 WHERE id = $1",
            &[&id, &departements.join(",")],
        )
        .await
    }

    async fn begin_second_factor(&self, id: &str, secret: &str) -> Result<bool> {
        self.changed_one(
            "UPDATE credentials SET totp_secret = $2, totp_last_step = 0, recovery_hashes = '' \
             WHERE id = $1 AND totp_confirmed_at IS NULL",
            &[&id, &secret],
        )
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
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        self.changed_one(
            "UPDATE credentials SET totp_confirmed_at = $3, totp_last_step = $4, \
             recovery_hashes = $5 WHERE id = $1 AND totp_secret = $2 AND \
             totp_confirmed_at IS NULL",
            &[&id, &secret, &ts(at), &step, &recovery_hashes.join(",")],
        )
        .await
    }

    async fn use_second_factor_step(&self, id: &str, step: u64) -> Result<bool> {
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        self.changed_one(
            "UPDATE credentials SET totp_last_step = $2 WHERE id = $1 AND \
             totp_confirmed_at IS NOT NULL AND totp_last_step < $2",
            &[&id, &step],
        )
        .await
    }

    async fn use_recovery_code(&self, id: &str, hash: &str) -> Result<bool> {
        let mut conn = self.pooled().await?;
        let tx = conn.transaction().await.map_err(unavailable)?;
        let hashes: String = tx
            .query_opt(
                "SELECT recovery_hashes FROM credentials WHERE id = $1 AND \
                 totp_confirmed_at IS NOT NULL FOR UPDATE",
                &[&id],
            )
            .await
            .map_err(unavailable)?
            .map(|row| row.get(0))
            .unwrap_or_default();
        let all: Vec<&str> = hashes.split(',').filter(|h| !h.is_empty()).collect();
        let left: Vec<&str> = all.iter().copied().filter(|h| *h != hash).collect();
        if left.len() == all.len() {
            return Ok(false);
        }
        tx.execute(
            "UPDATE credentials SET recovery_hashes = $2 WHERE id = $1",
            &[&id, &left.join(",")],
        )
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    async fn insert_session(&self, s: &Session) -> Result<()> {
        let conn = self.pooled().await?;
        conn.execute(
            "INSERT INTO sessions (id_hash, credential_id, created_at, expires_at, last_seen_at, \
             pending) VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &s.id_hash,
                &s.credential_id,
                &ts(s.created_at),
                &ts(s.expires_at),
                &ts(s.last_seen_at),
                &s.pending,
            ],
        )
        .await
        .map(drop)
        .map_err(unavailable)
    }

    async fn session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<Option<Session>> {
        let conn = self.pooled().await?;
        let row = conn
            .query_opt(
                "SELECT id_hash, credential_id, created_at, expires_at, last_seen_at, pending \
                 FROM sessions WHERE id_hash = $1 AND expires_at > $2",
                &[&id_hash, &ts(now)],
            )
            .await
            .map_err(unavailable)?;
        row.map(|row| {
            Ok(Session {
                id_hash: row.get(0),
                credential_id: row.get(1),
                created_at: parse_ts(row.get(2))?,
                expires_at: parse_ts(row.get(3))?,
                last_seen_at: parse_ts(row.get(4))?,
                pending: row.get(5),
            })
        })
        .transpose()
    }

    async fn delete_session(&self, id_hash: &str) -> Result<()> {
        self.changed_one("DELETE FROM sessions WHERE id_hash = $1", &[&id_hash])
            .await
            .map(drop)
    }

    async fn touch_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<()> {
        self.changed_one(
            "UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1",
            &[&id_hash, &ts(at)],
        )
        .await
        .map(drop)
    }

    async fn delete_sessions_of(&self, credential_id: &str) -> Result<()> {
        self.changed_one(
            "DELETE FROM sessions WHERE credential_id = $1",
            &[&credential_id],
        )
        .await
        .map(drop)
    }

    async fn add_failure(
        &self,
        key: &str,
        window: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<u32> {
        let conn = self.pooled().await?;
        let count: i32 = conn
            .query_one(
                "INSERT INTO login_failures (key, window_start, count, expires_at) \
                 VALUES ($1, $2, 1, $3) ON CONFLICT (key, window_start) \
                 DO UPDATE SET count = login_failures.count + 1 RETURNING count",
                &[&key, &ts(window), &ts(expires_at)],
            )
            .await
            .map_err(unavailable)?
            .get(0);
        uint(count)
    }

    async fn failures(&self, key: &str, window: DateTime<Utc>, now: DateTime<Utc>) -> Result<u32> {
        let conn = self.pooled().await?;
        let count: Option<i32> = conn
            .query_opt(
                "SELECT count FROM login_failures WHERE key = $1 AND window_start = $2 AND \
                 expires_at > $3",
                &[&key, &ts(window), &ts(now)],
            )
            .await
            .map_err(unavailable)?
            .map(|row| row.get(0));
        uint(count.unwrap_or(0))
    }
}
