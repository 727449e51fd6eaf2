"""What DynamoDB calls cost on moto's server, per item: why the aws adapters avoid some of them.

    python bench/moto_calls.py [--items 5000]

Baseline: BatchWriteItem (25 items a call), per item. Against it, in the same run:
BatchGetItem (100 keys a call), conditional PutItem (one call an item), TransactWriteItems
(25 conditional puts a call, on a table of --items items) and a Query of one key
(moto walks the whole table). docs/decisions.md quotes these.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.awsenv import moto_endpoint  # noqa: E402


def main() -> None:
    import boto3

    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=5000)
    args = parser.parse_args()
    ddb = boto3.client("dynamodb", endpoint_url=moto_endpoint(), region_name="eu-west-1")
    ddb.create_table(TableName="bench", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}])

    def timed(fn, count: int) -> float:
        started = time.perf_counter()
        fn()
        return (time.perf_counter() - started) / count * 1000

    n = args.items
    item = lambda key: {"k": {"S": key}, "amount_milli": {"N": "12345"}}  # noqa: E731
    write = timed(lambda: [ddb.batch_write_item(RequestItems={"bench": [
        {"PutRequest": {"Item": item(f"w{j}-{i}")}} for i in range(25)]}) for j in range(n // 25)], n)
    get = timed(lambda: [ddb.batch_get_item(RequestItems={"bench": {"Keys": [
        {"k": {"S": f"w{j + c}-{i}"}} for c in range(4) for i in range(25)]}}) for j in range(0, n // 25, 4)], n)
    put = timed(lambda: [ddb.put_item(TableName="bench", Item=item(f"p{i}"), ConditionExpression="attribute_not_exists(k)")
                         for i in range(500)], 500)
    transact = timed(lambda: [ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": "bench", "Item": item(f"t{j}-{i}"), "ConditionExpression": "attribute_not_exists(k)"}}
        for i in range(25)]) for j in range(4)], 100)
    query = timed(lambda: [ddb.query(TableName="bench", KeyConditionExpression="k = :k",
                                     ExpressionAttributeValues={":k": {"S": f"w{i}-0"}}) for i in range(20)], 20)
    print(f"| call on moto's server (table of ~{n:,} items) | ms per item | × BatchWriteItem |")
    print("| --- | ---: | ---: |")
    for label, ms in (("BatchWriteItem, 25 a call (baseline)", write), ("BatchGetItem", get),
                      ("PutItem, conditional", put), ("TransactWriteItems, 25 conditional puts", transact),
                      ("Query of one key (per call)", query)):
        print(f"| {label} | {ms:.2f} | {ms / write:.1f} |")


if __name__ == "__main__":
    main()
