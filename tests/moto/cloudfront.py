"""CloudFront on moto's server, for the end-to-end tests.

    python3 cloudfront.py ENDPOINT create             prints a new distribution's id
    python3 cloudfront.py ENDPOINT invalidations ID   prints the paths of each invalidation, oldest first (JSON)
"""
import json
import sys

import boto3


def client(endpoint):
    return boto3.client(
        "cloudfront",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def create(cf):
    config = {
        "CallerReference": "decompte-tests",
        "Comment": "decompte tests",
        "Enabled": True,
        "DefaultRootObject": "index.html",
        "Origins": {
            "Quantity": 1,
            "Items": [
                {
                    "Id": "site",
                    "DomainName": "site.s3.amazonaws.com",
                    "S3OriginConfig": {"OriginAccessIdentity": ""},
                }
            ],
        },
        "DefaultCacheBehavior": {
            "TargetOriginId": "site",
            "ViewerProtocolPolicy": "redirect-to-https",
            "MinTTL": 0,
            "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
            "TrustedSigners": {"Enabled": False, "Quantity": 0},
        },
    }
    print(cf.create_distribution(DistributionConfig=config)["Distribution"]["Id"])


def invalidations(cf, distribution):
    listed = cf.list_invalidations(DistributionId=distribution)["InvalidationList"]
    ids = [item["Id"] for item in listed.get("Items", [])]
    batches = []
    for invalidation in ids:
        got = cf.get_invalidation(DistributionId=distribution, Id=invalidation)
        batch = got["Invalidation"]["InvalidationBatch"]
        batches.append({"reference": batch["CallerReference"], "paths": batch["Paths"].get("Items", [])})
    batches.sort(key=lambda b: b["reference"])
    print(json.dumps(batches))


if __name__ == "__main__":
    endpoint, command = sys.argv[1], sys.argv[2]
    cf = client(endpoint)
    if command == "create":
        create(cf)
    elif command == "invalidations":
        invalidations(cf, sys.argv[3])
    else:
        sys.exit(f"unknown command {command}")
