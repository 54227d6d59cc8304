//! The table and its indexes, as `decompte store init` creates them (the SAM
//! template declares the same; a test compares them).

use super::*;

impl DynamoStore {
    /// Creates the table, its indexes and its TTL; does nothing if they exist.
    pub async fn init(&self) -> Result<bool> {
        let exists = match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(_) => true,
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                false
            }
            Err(error) => return Err(unavailable(error)),
        };
        if !exists {
            let key = |name: &str, kind: KeyType| {
                KeySchemaElement::builder()
                    .attribute_name(name)
                    .key_type(kind)
                    .build()
            };
            let attribute = |name: &str| {
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
            };
            let index = |name: &str,
                         pk: &str,
                         sk: &str,
                         projection: ProjectionType|
             -> Result<GlobalSecondaryIndex> {
                GlobalSecondaryIndex::builder()
                    .index_name(name)
                    .key_schema(
                        key(pk, KeyType::Hash).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    )
                    .key_schema(
                        key(sk, KeyType::Range).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    )
                    .projection(Projection::builder().projection_type(projection).build())
                    .build()
                    .map_err(|e| StoreError::Corrupt(e.to_string()))
            };
            let mut request = self
                .client
                .create_table()
                .table_name(&self.table)
                .billing_mode(BillingMode::PayPerRequest);
            for name in ["PK", "SK", "G1PK", "G1SK", "G2PK", "G2SK"] {
                request = request.attribute_definitions(
                    attribute(name).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                );
            }
            request = request
                .key_schema(
                    key("PK", KeyType::Hash).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                )
                .key_schema(
                    key("SK", KeyType::Range).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                )
                .global_secondary_indexes(index(
                    CHANGES_INDEX,
                    "G1PK",
                    "G1SK",
                    ProjectionType::All,
                )?)
                .global_secondary_indexes(index(
                    DAYS_INDEX,
                    "G2PK",
                    "G2SK",
                    ProjectionType::KeysOnly,
                )?);
            request.send().await.map_err(unavailable)?;
        }
        for _ in 0..120 {
            let table = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(unavailable)?;
            if table.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let ttl = self
            .client
            .describe_time_to_live()
            .table_name(&self.table)
            .send()
            .await
            .map_err(unavailable)?;
        let enabled = ttl
            .time_to_live_description()
            .and_then(|d| d.attribute_name())
            .is_some_and(|name| name == "ttl");
        if !enabled {
            let specification = TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("ttl")
                .build()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            self.client
                .update_time_to_live()
                .table_name(&self.table)
                .time_to_live_specification(specification)
                .send()
                .await
                .map_err(unavailable)?;
        }
        Ok(!exists)
    }
}
