//! Publication records on DynamoDB: one item per publication, and one in the
//! list of publications, newest last.
use super::*;

#[async_trait]
impl Publications for DynamoStore {
    async fn insert_publication(&self, publication: &Publication) -> Result<()> {
        self.update_publication(publication).await
    }

    async fn update_publication(&self, p: &Publication) -> Result<()> {
        let mut by_id = publication_attributes(p);
        by_id.insert("PK".into(), s(format!("PUBLICATION#{}", p.id)));
        by_id.insert("SK".into(), s("PUBLICATION"));
        let mut listed = publication_attributes(p);
        listed.insert("PK".into(), s("PUBLICATIONS"));
        listed.insert("SK".into(), s(format!("{}#{}", ts(p.requested_at), p.id)));
        let items = vec![
            put(&self.table, by_id, None, vec![])?,
            put(&self.table, listed, None, vec![])?,
        ];
        self.write_transaction(items).await.map_err(|(_, e)| e)
    }

    async fn publication(&self, id: &str) -> Result<Option<Publication>> {
        self.get(&format!("PUBLICATION#{id}"), "PUBLICATION")
            .await?
            .as_ref()
            .map(to_publication)
            .transpose()
    }

    async fn publications(&self, limit: usize) -> Result<Vec<Publication>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let items = self
            .query_all(
                None,
                "PK = :pk",
                vec![(":pk", s("PUBLICATIONS"))],
                false,
                Some(limit),
            )
            .await?;
        items.iter().take(limit).map(to_publication).collect()
    }
}
