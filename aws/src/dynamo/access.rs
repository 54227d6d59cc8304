//! Credentials, sessions and login-failure counters on DynamoDB.
use super::*;

#[async_trait]
impl Access for DynamoStore {
    async fn insert_credential(&self, credential: &Credential) -> Result<()> {
        let lookup = Item::from([
            ("PK".into(), s(format!("CODEHASH#{}", credential.code_hash))),
            ("SK".into(), s("CODEHASH")),
            ("credential_id".into(), s(&credential.id)),
        ]);
        let items = vec![
            put(
                &self.table,
                credential_item(credential),
                Some("attribute_not_exists(PK)"),
                vec![],
            )?,
            put(
                &self.table,
                lookup,
                Some("attribute_not_exists(PK)"),
                vec![],
            )?,
        ];
        self.write_transaction(items).await.map_err(|(_, e)| e)
    }

    async fn credential_by_hash(&self, code_hash: &str) -> Result<Option<Credential>> {
        let Some(lookup) = self
            .get(&format!("CODEHASH#{code_hash}"), "CODEHASH")
            .await?
        else {
            return Ok(None);
        };
        self.credential(get_s(&lookup, "credential_id")?).await
    }

    async fn credential(&self, id: &str) -> Result<Option<Credential>> {
        self.get("CREDENTIAL", id)
            .await?
            .as_ref()
            .map(to_credential)
            .transpose()
    }

    async fn credentials(&self) -> Result<Vec<Credential>> {
        let items = self
            .query_all(None, "PK = :pk", vec![(":pk", s("CREDENTIAL"))], true, None)
            .await?;
        let mut credentials = items
            .iter()
            .map(to_credential)
            .collect::<Result<Vec<_>>>()?;
        credentials.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(credentials)
    }

    async fn revoke_credential(&self, id: &str, at: DateTime<Utc>) -> Result<bool> {
        let revoked = self
            .stamp_credential(
                id,
                "revoked_at",
                at,
                "attribute_exists(PK) AND attribute_not_exists(revoked_at)",
            )
            .await?;
        if revoked {
            self.delete_sessions_of(id).await?;
        }
        Ok(revoked)
    }

    async fn touch_credential(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        self.stamp_credential(id, "last_used_at", at, "attribute_exists(PK)")
            .await
            .map(drop)
    }

    async fn set_departements(&self, id: &str, departements: &[String]) -> Result<bool> {
        if departements.is_empty() {
            // Every département served: no attribute, as when inserted.
            return self
                .update_credential(
                    id,
                    "REMOVE departements",
                    "attribute_exists(PK)",
                    vec![],
                    vec![],
                )
                .await;
        }
        self.update_credential(
            id,
            "SET departements = :departements",
            "attribute_exists(PK)",
            vec![],
            vec![(":departements", s(departements.join(",")))],
        )
        .await
    }

    async fn begin_second_factor(&self, id: &str, secret: &str) -> Result<bool> {
        self.update_credential(
            id,
            "SET totp_secret = :secret, totp_last_step = :zero REMOVE recovery",
            "attribute_exists(PK) AND attribute_not_exists(totp_confirmed_at)",
            vec![],
            vec![(":secret", s(secret)), (":zero", n(0))],
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
        let (update, mut values) = match recovery_hashes.is_empty() {
            true => (
                "SET totp_confirmed_at = :at, totp_last_step = :step",
                vec![],
            ),
            false => (
                "SET totp_confirmed_at = :at, totp_last_step = :step, recovery = :recovery",
                vec![(":recovery", AttributeValue::Ss(recovery_hashes.to_vec()))],
            ),
        };
        values.extend([
            (":secret", s(secret)),
            (":at", s(ts(at))),
            (":step", n(step)),
        ]);
        self.update_credential(
            id,
            update,
            "totp_secret = :secret AND attribute_not_exists(totp_confirmed_at)",
            vec![],
            values,
        )
        .await
    }

    async fn use_second_factor_step(&self, id: &str, step: u64) -> Result<bool> {
        self.update_credential(
            id,
            "SET totp_last_step = :step",
            "attribute_exists(totp_confirmed_at) AND totp_last_step < :step",
            vec![],
            vec![(":step", n(step))],
        )
        .await
    }

    async fn use_recovery_code(&self, id: &str, hash: &str) -> Result<bool> {
        self.update_credential(
            id,
            "DELETE recovery :hash",
            "attribute_exists(totp_confirmed_at) AND contains(recovery, :one)",
            vec![],
            vec![
                (":hash", AttributeValue::Ss(vec![hash.to_owned()])),
                (":one", s(hash)),
            ],
        )
        .await
    }

    async fn insert_session(&self, session: &Session) -> Result<()> {
        let item = Item::from([
            ("PK".into(), s(format!("SESSION#{}", session.id_hash))),
            ("SK".into(), s("SESSION")),
            ("credential_id".into(), s(&session.credential_id)),
            ("created_at".into(), s(ts(session.created_at))),
            ("expires_at".into(), s(ts(session.expires_at))),
            ("last_seen_at".into(), s(ts(session.last_seen_at))),
            ("pending".into(), AttributeValue::Bool(session.pending)),
            ("ttl".into(), epoch(session.expires_at)),
        ]);
        let index = Item::from([
            (
                "PK".into(),
                s(format!("CREDENTIAL_SESSIONS#{}", session.credential_id)),
            ),
            ("SK".into(), s(&session.id_hash)),
            ("ttl".into(), epoch(session.expires_at)),
        ]);
        let items = vec![
            put(&self.table, item, None, vec![])?,
            put(&self.table, index, None, vec![])?,
        ];
        self.write_transaction(items).await.map_err(|(_, e)| e)
    }

    async fn session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<Option<Session>> {
        let Some(item) = self.get(&format!("SESSION#{id_hash}"), "SESSION").await? else {
            return Ok(None);
        };
        let session = Session {
            id_hash: id_hash.to_owned(),
            credential_id: get_s(&item, "credential_id")?.to_owned(),
            created_at: get_ts(&item, "created_at")?,
            expires_at: get_ts(&item, "expires_at")?,
            last_seen_at: match get_opt_ts(&item, "last_seen_at")? {
                Some(at) => at,
                None => get_ts(&item, "created_at")?,
            },
            pending: item
                .get("pending")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
        };
        Ok((session.expires_at > now).then_some(session))
    }

    async fn delete_session(&self, id_hash: &str) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("PK", s(format!("SESSION#{id_hash}")))
            .key("SK", s("SESSION"))
            .send()
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn touch_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<()> {
        // Only an existing session: a late touch never brings a deleted one back.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(format!("SESSION#{id_hash}")))
            .key("SK", s("SESSION"))
            .update_expression("SET last_seen_at = :at")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":at", s(ts(at)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if error.code() == Some("ConditionalCheckFailedException") => Ok(()),
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn delete_sessions_of(&self, credential_id: &str) -> Result<()> {
        let pk = format!("CREDENTIAL_SESSIONS#{credential_id}");
        let items = self
            .query_all(None, "PK = :pk", vec![(":pk", s(&pk))], true, None)
            .await?;
        for item in items {
            let hash = get_s(&item, "SK")?.to_owned();
            self.delete_session(&hash).await?;
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("PK", s(&pk))
                .key("SK", s(&hash))
                .send()
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn add_failure(
        &self,
        key: &str,
        window: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<u32> {
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(format!("FAILURES#{key}")))
            .key("SK", s(ts(window)))
            .update_expression("ADD failures :one SET expires_at = :expires, #ttl = :ttl")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":expires", s(ts(expires_at)))
            .expression_attribute_values(":ttl", epoch(expires_at))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(unavailable)?;
        output
            .attributes
            .as_ref()
            .map_or(Err(corrupt("failures")), |item| get_n(item, "failures"))
    }

    async fn failures(&self, key: &str, window: DateTime<Utc>, now: DateTime<Utc>) -> Result<u32> {
        match self.get(&format!("FAILURES#{key}"), &ts(window)).await? {
            Some(item) if get_ts(&item, "expires_at")? > now => get_n(&item, "failures"),
            _ => Ok(0),
        }
    }
}
