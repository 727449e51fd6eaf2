"""Shopstream on AWS: Kinesis, S3, DynamoDB, Redshift Serverless and the seven services on ECS Fargate.

The DynamoDB tables come from the package's own definitions (shopstream.adapters.aws.resources),
so the key schemas and indexes here are exactly the ones the adapters use and `shopstream init`
creates. Every service has its own task role with only the actions its adapters call.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_logs as logs
from aws_cdk import aws_redshiftserverless as redshift
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from shopstream.adapters.aws.resources import Names, table_definitions

SERVICES = ("ingest-api", "invoice-api", "analytics-api", "s3-archiver", "dynamo-writer", "warehouse-loader",
            "bulk-loader")
APIS = {"ingest-api": (8000, ["/transactions*"]), "invoice-api": (8001, ["/invoices*", "/customers*"]),
        "analytics-api": (8002, ["/*"])}
CONSUMERS = {"s3-archiver": 8010, "dynamo-writer": 8011, "warehouse-loader": 8012}
TABLE = "shopstream"
WAREHOUSE_DB = "shopstream"
KINESIS_READ = ["kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:ListShards",
                "kinesis:DescribeStreamSummary"]
LEASES = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query"]
LEDGER_WRITE = ["dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"]
LAKE_WRITE = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
LAKE_INDEX = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:BatchGetItem"]
STORE_WRITE = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:BatchGetItem"]
STAGING = ["s3:PutObject", "s3:DeleteObject"]  # Parquet staged for Redshift's COPY
INBOX_CLAIMS = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]  # S3 inbox claims (leases table)
STORE_READ = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"]


class ImagesStack(Stack):
    """The ECR repositories, deployed first: CI pushes the images here, then deploys Shopstream."""

    def __init__(self, scope: Construct, id: str, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        self.repositories = {
            name: ecr.Repository(
                self, f"Repo-{name}", repository_name=f"shopstream/{name}", image_scan_on_push=True,
                image_tag_mutability=ecr.TagMutability.IMMUTABLE,
                lifecycle_rules=[ecr.LifecycleRule(max_image_count=20)], removal_policy=RemovalPolicy.RETAIN,
            )
            for name in SERVICES
        }


def dynamo_table(scope: Construct, name: str, definition: dict) -> dynamodb.CfnTable:
    """A CfnTable from the boto3 create_table definition the adapters use."""
    def key_schema(keys):
        return [dynamodb.CfnTable.KeySchemaProperty(attribute_name=k["AttributeName"], key_type=k["KeyType"])
                for k in keys]

    indexes = [
        dynamodb.CfnTable.GlobalSecondaryIndexProperty(
            index_name=index["IndexName"], key_schema=key_schema(index["KeySchema"]),
            projection=dynamodb.CfnTable.ProjectionProperty(
                projection_type=index["Projection"]["ProjectionType"],
                non_key_attributes=index["Projection"].get("NonKeyAttributes")),
        )
        for index in definition.get("GlobalSecondaryIndexes", [])
    ]
    table = dynamodb.CfnTable(
        scope, f"Table-{name}", table_name=name, billing_mode="PAY_PER_REQUEST",
        key_schema=key_schema(definition["KeySchema"]),
        attribute_definitions=[dynamodb.CfnTable.AttributeDefinitionProperty(
            attribute_name=a["AttributeName"], attribute_type=a["AttributeType"]) for a in definition["AttributeDefinitions"]],
        global_secondary_indexes=indexes or None,
        point_in_time_recovery_specification=dynamodb.CfnTable.PointInTimeRecoverySpecificationProperty(
            point_in_time_recovery_enabled=True),
        sse_specification=dynamodb.CfnTable.SSESpecificationProperty(sse_enabled=True),
    )
    table.apply_removal_policy(RemovalPolicy.RETAIN)
    return table


class ShopstreamStack(Stack):
    def __init__(self, scope: Construct, id: str, *, repositories: dict[str, ecr.IRepository], **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        image_tag = self.node.try_get_context("imageTag") or "latest"
        certificate_arn = self.node.try_get_context("certificateArn")

        # -- data ------------------------------------------------------------------------------
        stream = kinesis.Stream(self, "Stream", stream_name="shopstream", stream_mode=kinesis.StreamMode.ON_DEMAND,
                                encryption=kinesis.StreamEncryption.MANAGED, retention_period=Duration.hours(48))
        lake = s3.Bucket(
            self, "Lake", encryption=s3.BucketEncryption.S3_MANAGED, block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True, versioned=False, removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(id="raw-to-cheaper-storage", prefix="raw/", transitions=[
                    s3.Transition(storage_class=s3.StorageClass.INFREQUENT_ACCESS, transition_after=Duration.days(30)),
                    s3.Transition(storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                                  transition_after=Duration.days(180))]),
                s3.LifecycleRule(id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(7)),
            ],
        )
        # S3 events to EventBridge (the inbox trigger), set on the bucket itself: CDK's
        # event_bridge_enabled would add a custom-resource Lambda for the same thing.
        lake.node.default_child.add_property_override(
            "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True)
        names = Names(stream="shopstream", bucket="lake", prefix="", table=TABLE, ledger_table=f"{TABLE}-ledger",
                      lake_index_table=f"{TABLE}-lake-index", lease_table=f"{TABLE}-leases")
        tables = {name: dynamo_table(self, name, definition) for name, definition in table_definitions(names).items()}

        def table_arns(name: str) -> list[str]:
            return [tables[name].attr_arn, f"{tables[name].attr_arn}/index/*"]

        # -- network, warehouse ----------------------------------------------------------------
        vpc = ec2.Vpc(self, "Vpc", max_azs=2, nat_gateways=1)
        tasks_sg = ec2.SecurityGroup(self, "TasksSecurityGroup", vpc=vpc, description="shopstream tasks")
        warehouse_sg = ec2.SecurityGroup(self, "WarehouseSecurityGroup", vpc=vpc, description="Redshift Serverless")
        warehouse_sg.add_ingress_rule(tasks_sg, ec2.Port.tcp(5439), "tasks to the warehouse")
        admin = secretsmanager.Secret(
            self, "WarehouseAdmin", description="Redshift Serverless admin",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template='{"username": "shopstream_admin"}', generate_string_key="password",
                exclude_punctuation=True, password_length=32),
        )
        copy_role = iam.Role(self, "WarehouseCopyRole", assumed_by=iam.ServicePrincipal("redshift.amazonaws.com"),
                             description="Redshift COPY of the staged Parquet batches")
        copy_role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[lake.arn_for_objects("staging/*")]))
        copy_role.add_to_policy(iam.PolicyStatement(actions=["s3:ListBucket"], resources=[lake.bucket_arn]))
        namespace = redshift.CfnNamespace(
            self, "WarehouseNamespace", namespace_name="shopstream", db_name=WAREHOUSE_DB, iam_roles=[copy_role.role_arn],
            admin_username="shopstream_admin", admin_user_password=admin.secret_value_from_json("password").to_string())
        workgroup = redshift.CfnWorkgroup(
            self, "WarehouseWorkgroup", workgroup_name="shopstream", namespace_name=namespace.namespace_name,
            base_capacity=8, publicly_accessible=False, security_group_ids=[warehouse_sg.security_group_id],
            subnet_ids=[subnet.subnet_id for subnet in vpc.private_subnets])
        workgroup.node.add_dependency(namespace)
        warehouse_url = (f"redshift+redshift_connector://shopstream_admin@{workgroup.attr_workgroup_endpoint_address}"
                         f":5439/{WAREHOUSE_DB}")
        api_keys = secretsmanager.Secret(self, "ApiKeys", description="shopstream API key records (hashed)",
                                         secret_string_value=None)

        # -- least-privilege task roles ----------------------------------------------------------
        grants: dict[str, list[iam.PolicyStatement]] = {
            "ingest-api": [
                iam.PolicyStatement(actions=["kinesis:PutRecords"], resources=[stream.stream_arn]),
                iam.PolicyStatement(actions=LEDGER_WRITE, resources=table_arns(names.ledger_table)),
                iam.PolicyStatement(actions=["s3:PutObject"], resources=[lake.arn_for_objects("dead-letters/*")]),
            ],
            "invoice-api": [iam.PolicyStatement(actions=STORE_READ, resources=table_arns(names.table))],
            "analytics-api": [],
            "s3-archiver": [
                iam.PolicyStatement(actions=LAKE_WRITE, resources=[lake.arn_for_objects("raw/*")]),
                iam.PolicyStatement(actions=["s3:ListBucket"], resources=[lake.bucket_arn]),
                iam.PolicyStatement(actions=LAKE_INDEX, resources=table_arns(names.lake_index_table)),
            ],
            "dynamo-writer": [iam.PolicyStatement(actions=STORE_WRITE, resources=table_arns(names.table))],
            "warehouse-loader": [iam.PolicyStatement(actions=STAGING, resources=[lake.arn_for_objects("staging/*")])],
            "bulk-loader": [
                iam.PolicyStatement(actions=LEDGER_WRITE, resources=table_arns(names.ledger_table)),
                iam.PolicyStatement(actions=LAKE_WRITE, resources=[lake.arn_for_objects(p) for p in
                                                                   ("raw/*", "inbox/*", "dead-letters/*")]),
                iam.PolicyStatement(actions=STAGING, resources=[lake.arn_for_objects("staging/*")]),
                iam.PolicyStatement(actions=["s3:ListBucket"], resources=[lake.bucket_arn]),
                iam.PolicyStatement(actions=LAKE_INDEX, resources=table_arns(names.lake_index_table)),
                iam.PolicyStatement(actions=STORE_WRITE, resources=table_arns(names.table)),
                iam.PolicyStatement(actions=INBOX_CLAIMS, resources=table_arns(names.lease_table)),
            ],
        }
        for consumer in CONSUMERS:
            grants[consumer] += [
                iam.PolicyStatement(actions=KINESIS_READ, resources=[stream.stream_arn]),
                iam.PolicyStatement(actions=LEASES, resources=table_arns(names.lease_table)),
            ]
        for api in APIS:
            grants[api].append(iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"],
                                                   resources=[api_keys.secret_arn]))
        self.task_roles: dict[str, iam.Role] = {}
        for name, statements in grants.items():
            role = iam.Role(self, f"TaskRole-{name}", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
                            description=f"shopstream {name}: only what its adapters call")
            for statement in statements:
                role.add_to_policy(statement)
            self.task_roles[name] = role

        # -- the services ---------------------------------------------------------------------------
        cluster = ecs.Cluster(self, "Cluster", vpc=vpc, container_insights_v2=ecs.ContainerInsights.ENABLED)
        settings = {
            "SHOPSTREAM_PROFILE": "aws", "AWS_REGION": self.region, "SHOPSTREAM_STREAM_NAME": stream.stream_name,
            "SHOPSTREAM_LAKE_URI": f"s3://{lake.bucket_name}", "SHOPSTREAM_TABLE_NAME": TABLE,
            "SHOPSTREAM_WAREHOUSE_URL": warehouse_url, "SHOPSTREAM_HOST": "0.0.0.0",
            "SHOPSTREAM_API_KEYS_SECRET_ARN": api_keys.secret_arn, "SHOPSTREAM_WAREHOUSE_COPY_ROLE_ARN": copy_role.role_arn,
            "SHOPSTREAM_BULK_INBOX": f"s3://{lake.bucket_name}/inbox/",
        }
        secrets = {"SHOPSTREAM_WAREHOUSE_PASSWORD": ecs.Secret.from_secrets_manager(admin, "password")}

        def task_definition(name: str, port: int | None, **extra: str) -> ecs.FargateTaskDefinition:
            task = ecs.FargateTaskDefinition(self, f"Task-{name}", cpu=512, memory_limit_mib=1024,
                                             task_role=self.task_roles[name])
            health = (["CMD", "python", "-m", "shopstream.entrypoints.healthcheck", name])
            task.add_container(
                name, image=ecs.ContainerImage.from_ecr_repository(repositories[name], image_tag),
                environment=settings | extra, secrets=secrets, stop_timeout=Duration.seconds(30),
                logging=ecs.LogDrivers.aws_logs(stream_prefix=name, log_group=logs.LogGroup(
                    self, f"Logs-{name}", retention=logs.RetentionDays.ONE_MONTH, removal_policy=RemovalPolicy.DESTROY)),
                health_check=ecs.HealthCheck(command=health, interval=Duration.seconds(15),
                                             start_period=Duration.seconds(30)),
                port_mappings=[ecs.PortMapping(container_port=port)] if port else None,
            )
            return task

        def fargate_service(name: str, port: int | None, desired: int) -> ecs.FargateService:
            return ecs.FargateService(
                self, f"Service-{name}", cluster=cluster, task_definition=task_definition(name, port),
                desired_count=desired, security_groups=[tasks_sg], min_healthy_percent=100,
                circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
                vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS))

        alb = elbv2.ApplicationLoadBalancer(self, "LoadBalancer", vpc=vpc, internet_facing=True,
                                            drop_invalid_header_fields=True)
        if certificate_arn:
            listener = alb.add_listener("Https", port=443, certificates=[
                acm.Certificate.from_certificate_arn(self, "Certificate", certificate_arn)])
            alb.add_redirect()
        else:
            listener = alb.add_listener("Http", port=80)
        CfnOutput(self, "LoadBalancerDns", value=alb.load_balancer_dns_name)
        tasks_sg.connections.allow_from(alb, ec2.Port.tcp_range(8000, 8002), "load balancer to the APIs")
        self.alarms: list[cloudwatch.Alarm] = []
        for priority, (name, (port, paths)) in enumerate(APIS.items(), start=1):
            service = fargate_service(name, port, desired=2)
            group = elbv2.ApplicationTargetGroup(
                self, f"Targets-{name}", vpc=vpc, port=port, protocol=elbv2.ApplicationProtocol.HTTP,
                targets=[service], deregistration_delay=Duration.seconds(30),
                health_check=elbv2.HealthCheck(path="/health", healthy_http_codes="200", interval=Duration.seconds(15)))
            if name == "analytics-api":
                listener.add_target_groups(f"Default-{name}", target_groups=[group])
            else:
                listener.add_target_groups(f"Route-{name}", target_groups=[group], priority=priority * 10,
                                           conditions=[elbv2.ListenerCondition.path_patterns(paths)])
            scaling = service.auto_scale_task_count(min_capacity=2, max_capacity=10)
            scaling.scale_on_cpu_utilization(f"Cpu-{name}", target_utilization_percent=60)
            scaling.scale_on_request_count(f"Requests-{name}", requests_per_target=1000, target_group=group)
            self.alarms.append(cloudwatch.Alarm(
                self, f"Alarm5xx-{name}", metric=group.metrics.http_code_target(
                    elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=Duration.minutes(5), statistic="Sum"),
                threshold=10, evaluation_periods=1, alarm_description=f"{name} answers 5xx",
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING))

        iterator_age = stream.metric_get_records_iterator_age_milliseconds(period=Duration.minutes(1),
                                                                          statistic="Maximum")
        for name, port in CONSUMERS.items():
            service = fargate_service(name, port, desired=1)
            scaling = service.auto_scale_task_count(min_capacity=1, max_capacity=4)  # at most one task per shard
            scaling.scale_on_metric(f"IteratorAge-{name}", metric=iterator_age, adjustment_type=(
                appscaling.AdjustmentType.CHANGE_IN_CAPACITY), cooldown=Duration.minutes(3), scaling_steps=[
                    appscaling.ScalingInterval(upper=10_000, change=-1),
                    appscaling.ScalingInterval(lower=60_000, change=+1),
                    appscaling.ScalingInterval(lower=300_000, change=+2)])
        self.alarms.append(cloudwatch.Alarm(
            self, "AlarmIteratorAge", metric=iterator_age, threshold=300_000, evaluation_periods=3,
            alarm_description="the consumers are more than 5 minutes behind the stream"))
        ingest_logs = self.node.find_child("Logs-ingest-api")
        dead_letters = logs.MetricFilter(
            self, "DeadLetterRequests", log_group=ingest_logs, metric_namespace="shopstream",
            metric_name="RequestsWithDeadLetters", metric_value="1",
            filter_pattern=logs.FilterPattern.all(
                logs.FilterPattern.string_value("$.message", "=", "accepted*rejected)"),
                logs.FilterPattern.string_value("$.message", "!=", "*, 0 rejected)")))
        self.alarms.append(cloudwatch.Alarm(
            self, "AlarmDeadLetters", metric=dead_letters.metric(period=Duration.minutes(5), statistic="Sum"),
            threshold=100, evaluation_periods=1, alarm_description="many requests with rejected lines",
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING))

        # bulk-loader: a task that loads what is in the S3 inbox and exits, run every 15 minutes and
        # whenever a file lands in inbox/ (claims in the lease table: two runs never load a file twice).
        bulk_loader = targets.EcsTask(
            cluster=cluster, task_definition=task_definition("bulk-loader", None, SHOPSTREAM_BULK_ONCE="true"),
            security_groups=[tasks_sg], subnet_selection=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS))
        events.Rule(self, "BulkLoaderSchedule", schedule=events.Schedule.rate(Duration.minutes(15)), targets=[bulk_loader])
        events.Rule(self, "BulkLoaderInboxTrigger", targets=[bulk_loader], event_pattern=events.EventPattern(
            source=["aws.s3"], detail_type=["Object Created"],
            detail={"bucket": {"name": [lake.bucket_name]}, "object": {"key": [{"prefix": "inbox/"}]}}))
