"""The CDK app's template: what a deployment creates, asserted on the synthesized CloudFormation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from aws_cdk.assertions import Match

from shopstream.adapters.aws.resources import Names, table_definitions
from tests.infra.conftest import resources

SERVICES = {"ingest-api", "invoice-api", "analytics-api", "s3-archiver", "dynamo-writer", "warehouse-loader",
            "bulk-loader"}


def role_actions(template) -> dict[str, set[str]]:
    """Each task role (by its service) -> every action its policies allow."""
    roles = {logical: props["Properties"]["Description"].split()[1].rstrip(":")
             for logical, props in resources(template, "AWS::IAM::Role").items()
             if props["Properties"].get("Description", "").startswith("shopstream ")}
    allowed = {service: set() for service in roles.values()}
    for policy in resources(template, "AWS::IAM::Policy").values():
        for role in policy["Properties"]["Roles"]:
            if role["Ref"] in roles:
                for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                    actions = statement["Action"]
                    allowed[roles[role["Ref"]]] |= {actions} if isinstance(actions, str) else set(actions)
    return allowed


def test_kinesis_is_on_demand_and_encrypted(template):
    template.has_resource_properties("AWS::Kinesis::Stream", {
        "StreamModeDetails": {"StreamMode": "ON_DEMAND"},
        "StreamEncryption": {"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"},
    })


def test_the_lake_is_encrypted_private_and_has_a_lifecycle(template):
    template.has_resource_properties("AWS::S3::Bucket", {
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
        "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                           "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
        "LifecycleConfiguration": {"Rules": Match.array_with([Match.object_like({
            "Prefix": "raw/", "Status": "Enabled"})])},
    })


def test_the_dynamodb_tables_are_the_adapters_own_on_demand_with_pitr(template):
    names = Names("s", "b", "", "shopstream", "shopstream-ledger", "shopstream-lake-index", "shopstream-leases")
    expected = table_definitions(names)
    tables = {t["Properties"]["TableName"]: t["Properties"] for t in resources(template, "AWS::DynamoDB::Table").values()}
    assert set(tables) == set(expected)
    for name, definition in expected.items():
        table = tables[name]
        assert table["BillingMode"] == "PAY_PER_REQUEST"
        assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert table["KeySchema"] == definition["KeySchema"]
        assert table["AttributeDefinitions"] == definition["AttributeDefinitions"]
        assert table.get("GlobalSecondaryIndexes", []) == definition.get("GlobalSecondaryIndexes", [])


def test_redshift_serverless_with_its_admin_password_in_secrets_manager(template):
    template.resource_count_is("AWS::RedshiftServerless::Workgroup", 1)
    template.has_resource_properties("AWS::SecretsManager::Secret", {
        "GenerateSecretString": Match.object_like({"GenerateStringKey": "password"})})
    namespace = next(iter(resources(template, "AWS::RedshiftServerless::Namespace").values()))["Properties"]
    password = str(namespace["AdminUserPassword"])
    assert "resolve:secretsmanager" in password  # a dynamic reference: never in the template
    assert len(namespace["IamRoles"]) == 1  # the role Redshift's COPY of staged Parquet assumes


def test_three_apis_behind_the_load_balancer_with_health_checks_and_autoscaling(template):
    template.resource_count_is("AWS::ElasticLoadBalancingV2::LoadBalancer", 1)
    groups = resources(template, "AWS::ElasticLoadBalancingV2::TargetGroup")
    assert sorted(g["Properties"]["Port"] for g in groups.values()) == [8000, 8001, 8002]
    assert {g["Properties"]["HealthCheckPath"] for g in groups.values()} == {"/health"}
    policies = [p["Properties"] for p in resources(template, "AWS::ApplicationAutoScaling::ScalingPolicy").values()]
    metrics = [p.get("TargetTrackingScalingPolicyConfiguration", {}).get("PredefinedMetricSpecification", {})
               .get("PredefinedMetricType") for p in policies]
    assert metrics.count("ECSServiceAverageCPUUtilization") == 3
    assert metrics.count("ALBRequestCountPerTarget") == 3


def test_consumers_scale_on_the_streams_iterator_age(template):
    step_policies = [p["Properties"] for p in resources(template, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
                     if p["Properties"]["PolicyType"] == "StepScaling"]
    assert len(step_policies) == 2 * 3  # one scale-out and one scale-in policy per consumer
    alarms = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()]
    assert any(a.get("MetricName") == "GetRecords.IteratorAgeMilliseconds" for a in alarms)


def test_every_service_runs_on_fargate_and_the_bulk_loader_on_a_schedule(template):
    template.resource_count_is("AWS::ECS::Service", 6)
    template.resource_count_is("AWS::ECS::TaskDefinition", 7)
    template.has_resource_properties("AWS::Events::Rule", {
        "ScheduleExpression": "rate(15 minutes)", "State": "ENABLED",
        "Targets": Match.array_with([Match.object_like({"EcsParameters": Match.any_value()})])})
    template.has_resource_properties("AWS::Events::Rule", {
        "EventPattern": Match.object_like({"detail-type": ["Object Created"], "detail": Match.object_like({
            "object": {"key": [{"prefix": "inbox/"}]}})}),
        "Targets": Match.array_with([Match.object_like({"EcsParameters": Match.any_value()})])})
    bulk = [t["Properties"]["ContainerDefinitions"][0] for t in resources(template, "AWS::ECS::TaskDefinition").values()
            if t["Properties"]["ContainerDefinitions"][0]["Name"] == "bulk-loader"]
    assert {"Name": "SHOPSTREAM_BULK_ONCE", "Value": "true"} in bulk[0]["Environment"]


def test_alarms_on_iterator_age_5xx_and_dead_letters(template):
    descriptions = {a["Properties"]["AlarmDescription"] for a in resources(template, "AWS::CloudWatch::Alarm").values()
                    if "AlarmDescription" in a["Properties"]}
    assert {"ingest-api answers 5xx", "invoice-api answers 5xx", "analytics-api answers 5xx",
            "the consumers are more than 5 minutes behind the stream", "many requests with rejected lines"} <= descriptions


def test_one_least_privilege_task_role_per_service(template):
    allowed = role_actions(template)
    assert set(allowed) == SERVICES
    assert not any("*" in action for actions in allowed.values() for action in actions)
    assert allowed["ingest-api"] == {"kinesis:PutRecords", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem",
                                     "s3:PutObject", "secretsmanager:GetSecretValue"}
    assert allowed["invoice-api"] == {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query",
                                      "secretsmanager:GetSecretValue"}
    assert allowed["analytics-api"] == {"secretsmanager:GetSecretValue"}
    for consumer in ("s3-archiver", "dynamo-writer", "warehouse-loader"):
        assert {"kinesis:GetRecords", "kinesis:GetShardIterator"} <= allowed[consumer]
        assert "kinesis:PutRecords" not in allowed[consumer]
    assert {a for a in allowed["warehouse-loader"] if a.startswith("s3:")} == {"s3:PutObject", "s3:DeleteObject"}
    assert not {a for a in allowed["dynamo-writer"] if a.startswith("s3:")}


def test_the_secrets_reach_tasks_as_ecs_secrets_not_plain_environment(template):
    for task in resources(template, "AWS::ECS::TaskDefinition").values():
        container = task["Properties"]["ContainerDefinitions"][0]
        assert [s["Name"] for s in container["Secrets"]] == ["SHOPSTREAM_WAREHOUSE_PASSWORD"]
        assert all("PASSWORD" not in e["Name"] for e in container["Environment"])
        assert container["HealthCheck"]["Command"][:3] == ["CMD", "python", "-m"]


def test_one_ecr_repository_per_service(images_template):
    repositories = resources(images_template, "AWS::ECR::Repository")
    assert {r["Properties"]["RepositoryName"] for r in repositories.values()} == {f"shopstream/{s}" for s in SERVICES}


def test_cfn_lint_accepts_both_templates(synthesized):
    _, outdir = synthesized
    templates = sorted(str(p) for p in outdir.glob("*.template.json"))
    assert len(templates) == 2
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), *templates], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
