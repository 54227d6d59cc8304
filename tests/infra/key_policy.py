"""Checks the DynamoDB permissions of infra/template.yaml key by key
(`dynamodb:LeadingKeys`) against a table the app really wrote.

    python key_policy.py TEMPLATE ENDPOINT TABLE

- every statement of a function's role on the table itself names the
  partition keys it may touch;
- the publish function writes publication records only (never a report, a
  credential or a session); the ingest function deletes sessions only (never
  history);
- every item of TABLE (written by a run of the app: a login, declarations,
  a failed login, a second factor, a publication) has a partition key the
  ingest function's policy allows, and publication records the publish
  function's.

Prints what it found; exits 1 on the first disagreement. Runs in
tests/infra/.venv (cfn-lint reads the template's short-form tags).
"""
import fnmatch
import sys

import boto3
from cfnlint.decode import decode

TABLE_ARN = {"Fn::GetAtt": ["Table", "Arn"]}
WRITES = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
          "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem"}


def fail(message):
    sys.exit(f"key policy: {message}")


def table_grants(template, role):
    """{action: [key patterns]} of the role's statements on the table."""
    grants = {}
    for policy in template["Resources"][role]["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            if statement.get("Resource") != TABLE_ARN:
                continue
            actions = statement["Action"]
            actions = [actions] if isinstance(actions, str) else actions
            if any(a in ("dynamodb:*", "*") for a in actions):
                fail(f"{role} {statement.get('Sid')}: a wildcard action on the table")
            keys = (statement.get("Condition", {})
                    .get("ForAllValues:StringLike", {})
                    .get("dynamodb:LeadingKeys"))
            if not keys:
                fail(f"{role} {statement.get('Sid')}: no dynamodb:LeadingKeys condition")
            for action in actions:
                grants.setdefault(action, []).extend(keys)
    return grants


def allowed(patterns, key):
    return any(fnmatch.fnmatchcase(key, p) for p in patterns)


def main(template_path, endpoint, table):
    template, matches = decode(template_path)
    if matches:
        fail(f"{template_path} does not parse: {matches}")
    ingest = table_grants(template, "IngestRole")
    publish = table_grants(template, "PublishRole")
    print("ingest:", {a: sorted(set(k)) for a, k in ingest.items()})
    print("publish:", {a: sorted(set(k)) for a, k in publish.items()})

    for action in WRITES & publish.keys():
        wrong = [k for k in publish[action] if not k.startswith("PUBLICATION")]
        if wrong:
            fail(f"the publish function may {action} {wrong}")
    for key in ("CREDENTIAL", "CODEHASH#x", "SESSION#x", "COMMUNE#56260"):
        for action in WRITES & publish.keys():
            if allowed(publish[action], key):
                fail(f"the publish function may {action} {key}")
    deletes = ingest.get("dynamodb:DeleteItem", [])
    if any(not k.startswith(("SESSION#", "CREDENTIAL_SESSIONS#")) for k in deletes):
        fail(f"the ingest function may delete {deletes}")
    if allowed(deletes, "COMMUNE#56260"):
        fail("the ingest function may delete history")

    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="eu-west-3",
                          aws_access_key_id="local", aws_secret_access_key="local")
    keys = set()
    for page in client.get_paginator("scan").paginate(TableName=table, ProjectionExpression="PK"):
        keys.update(item["PK"]["S"] for item in page["Items"])
    print(f"{table}: {len(keys)} partition keys")
    if not keys:
        fail("the table is empty: nothing was checked")
    for key in sorted(keys):
        if not allowed(ingest.get("dynamodb:PutItem", []) + ingest.get("dynamodb:UpdateItem", []), key):
            fail(f"the app wrote {key}, which the ingest function's policy does not allow")
        if key.startswith("PUBLICATION") and not allowed(publish.get("dynamodb:PutItem", []), key):
            fail(f"the publisher writes {key}, which its policy does not allow")
    prefixes = sorted({k.split("#")[0] for k in keys})
    print("kinds of items checked:", ", ".join(prefixes))
    for needed in ("COMMUNE", "IDEMPOTENCY", "CREDENTIAL", "CODEHASH", "SESSION",
                   "CREDENTIAL_SESSIONS", "FAILURES", "PUBLICATION", "PUBLICATIONS",
                   "REFERENCE", "REMINDERS"):
        if needed not in prefixes:
            fail(f"no {needed} item in the table: the run did not write every kind")


if __name__ == "__main__":
    main(*sys.argv[1:])
