"""Compares the DynamoDB table of infra/template.yaml with the one
`decompte store init` created on DynamoDB Local.

    python table_schema.py TEMPLATE ENDPOINT TABLE

Prints both schemas and exits 1 if they differ. Runs in tests/infra/.venv
(cfn-lint reads the template's short-form tags; boto3 describes the table).
"""
import json
import sys

import boto3
from cfnlint.decode import decode


def normalise(attributes, keys, indexes, billing, ttl):
    return {
        "attributes": sorted((a["AttributeName"], a["AttributeType"]) for a in attributes),
        "keys": [(k["AttributeName"], k["KeyType"]) for k in keys],
        "indexes": sorted(
            (
                i["IndexName"],
                [(k["AttributeName"], k["KeyType"]) for k in i["KeySchema"]],
                i["Projection"]["ProjectionType"],
            )
            for i in indexes
        ),
        "billing": billing,
        "ttl": ttl,
    }


def from_template(path):
    template, matches = decode(path)
    if matches:
        sys.exit(f"{path} does not parse: {matches}")
    table = template["Resources"]["Table"]["Properties"]
    ttl = table.get("TimeToLiveSpecification", {})
    return normalise(
        table["AttributeDefinitions"],
        table["KeySchema"],
        table.get("GlobalSecondaryIndexes", []),
        table.get("BillingMode"),
        ttl.get("AttributeName") if ttl.get("Enabled") else None,
    )


def from_dynamodb(endpoint, name):
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="eu-west-3",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    table = client.describe_table(TableName=name)["Table"]
    ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    return normalise(
        table["AttributeDefinitions"],
        table["KeySchema"],
        table.get("GlobalSecondaryIndexes", []),
        table.get("BillingModeSummary", {}).get("BillingMode"),
        ttl.get("AttributeName") if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") else None,
    )


if __name__ == "__main__":
    declared = from_template(sys.argv[1])
    created = from_dynamodb(sys.argv[2], sys.argv[3])
    print("template:   ", json.dumps(declared))
    print("store init: ", json.dumps(created))
    sys.exit(0 if declared == created else 1)
