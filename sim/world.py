"""A simulated AWS region with Updraft deployed and a Bottlerocket fleet in it.

Everything here talks to the pipeline through AWS APIs only, as a fleet and an operator would:
instances are launched and tagged through EC2, rollouts are started through Step Functions, and
results are read from the ledger table and the execution history.
"""

from __future__ import annotations

import json
import os
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.loaders
from boto3.dynamodb.conditions import Key

from sim import aws, faults
from sim.bottlerocket import Fault, Repository
from sim.clock import VirtualClock
from sim.deploy import ACCOUNT, REGION, deploy
from sim.fleet import Fleet
from sim.kubernetes import SimulatedCluster
from sim.kubernetes_api import TOKEN_LIFETIME_SECONDS, AccessEntry, Endpoint, KubernetesApiServer
from updraft import ledger_schema

_SERVICE_MODELS = botocore.loaders.create_loader()
MAX_EXECUTION_SECONDS = 31 * 86_400  # the state machine's own timeout is 30 days
IAM_PREFIX = {"sfn": "states", "eventbridge": "events"}  # botocore's event names use service ids, IAM its own prefixes
AZS = ("us-east-1a", "us-east-1b", "us-east-1c")
AMI = "ami-0b0770cf8a9a5e1c5"  # any id: moto need not know it
ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
    "no_proxy": "127.0.0.1,localhost",  # the simulated update repository is served on the loopback
}


@dataclass(frozen=True)
class Execution:
    arn: str
    name: str
    status: str
    output: dict[str, Any] | None
    error: str | None
    cause: str | None


class World:
    """Use as a context manager: `with World(template, tag_key) as world: ...`."""

    def __init__(
        self,
        template: dict[str, Any],
        tag_key: str = "updraft:group",
        releases: Iterable[str] = ("1.26.0", "1.26.1", "1.27.0"),
        variant: str = "aws-ecs-2",
        seed: int = 7,
        lambda_log_level: str | None = None,
        eks_clusters: Iterable[str] = (),
        eks_version: str = "1.32",
    ) -> None:
        self.template = template
        self.tag_key = tag_key
        self.clock = VirtualClock(seed=seed)
        self.repository = Repository(variant=variant, arch="x86_64", versions=list(releases))
        self.seed = seed
        # Quiet Lambdas log only at that level and publish no metrics to standard output.
        self.lambda_env = (
            {"POWERTOOLS_LOG_LEVEL": lambda_log_level, "POWERTOOLS_METRICS_DISABLED": "true"}
            if lambda_log_level
            else {}
        )
        self.outputs: dict[str, str] = {}
        self.api_calls: Counter[str] = Counter()  # calls made by the pipeline (not by this harness)
        self.calls_by_function: dict[str, set[str]] = defaultdict(set)  # function name -> IAM actions used
        self._saved_env: dict[str, str] = {}
        self._undo: list[Callable[[], Any]] = []  # deletes what the harness created, for `reset`
        self._alarms: set[str] = set()  # the alarms it created
        # EKS clusters that exist before the deployment (its access entries name them), and their version.
        self._eks_deployed, self.eks_version = tuple(eks_clusters), eks_version
        self._kubernetes: KubernetesApiServer | None = None
        self._eks: dict[str, SimulatedCluster] = {}

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> World:
        self._saved_env = dict(os.environ)
        os.environ.update(ENVIRONMENT)
        self._mock = aws.mocked()
        self._mock.start()
        self._harness = self.clock.harness()  # this thread drives the world, and holds the turn until it waits
        self._harness.__enter__()
        boto3.setup_default_session()  # a fresh session, so that the call counter sees every client
        # Service models are read from disk once per process, not once per world (they never change).
        boto3.DEFAULT_SESSION._session.register_component("data_loader", _SERVICE_MODELS)
        boto3.DEFAULT_SESSION.events.register("before-call", self._count_call)
        aws.seed(self.seed)
        self.fleet = Fleet(self.clock, [self.repository], seed=self.seed)
        self._wiring = aws.wired(self.fleet, self.clock, self.lambda_env)
        self._patched = self._wiring.__enter__()
        for name in self._eks_deployed:
            self._create_eks_cluster(name, self.eks_version)
        self.outputs = deploy(self.template)
        self._deployed = aws.deployed(ACCOUNT, REGION), self.clock.random.getstate()
        self.sfn = boto3.client("stepfunctions")
        self.ec2 = boto3.client("ec2")
        self.cloudformation = boto3.client("cloudformation")
        self.cloudwatch = boto3.client("cloudwatch")
        self.ledger = boto3.resource("dynamodb").Table(self.outputs["LedgerTableName"])
        self.locks = boto3.resource("dynamodb").Table(self.outputs["LockTableName"])
        return self

    def __exit__(self, *exc: object) -> None:
        aws.lambda_.AFTER_STEP.clear()
        try:
            if not self.clock.failed:  # a stuck world's actors stay parked: they make no call
                self._stop_running()
        finally:
            self._harness.__exit__(None, None, None)
            self._wiring.__exit__(None, None, None)
            self._mock.stop()
            self.fleet.close()
            if self._kubernetes is not None:
                self._kubernetes.close()
            os.environ.clear()
            os.environ.update(self._saved_env)

    def reset(self) -> None:
        """Put the deployment back as it was just deployed, for the next test: every execution ended and
        forgotten, the tables and the failed-deliveries queue empty, no instance, what the harness created
        (alarms, queues, rules, ECS clusters, EKS clusters and access entries) deleted, the fleet, ECS and EKS
        simulations empty (the clusters that predate the deployment stay, without nodes or workloads), faults
        and hooks gone, the call counts at zero, virtual time at its start, and ids and names drawn as right after the
        deployment. A test then sees what it would in a World of its own, at a fraction of the cost; the stack
        itself stays deployed."""
        aws.lambda_.AFTER_STEP.clear()
        faults.LAMBDA_ERRORS.clear()
        self._stop_running()
        for table in (self.ledger, self.locks):
            _empty(table)
        self._drain(self.outputs["FailedDeliveriesQueueUrl"])  # PurgeQueue: once a minute, in real time
        while self._undo:
            self._undo.pop()()
        self._alarms.clear()
        for name in self._eks_deployed:
            self._eks[name].reset()
            endpoint = self.eks_endpoint(name)
            endpoint.token_lifetime_seconds, endpoint.refused_tokens = TOKEN_LIFETIME_SECONDS, 0
        deployed, names = self._deployed
        aws.back_to(deployed, self._patched, ACCOUNT, REGION)
        self.clock.random.setstate(names)
        self.fleet.reset()
        self.repository.bad_releases.clear()
        self.api_calls.clear()
        self.calls_by_function.clear()
        self.clock.rewind()

    def executions(self) -> list[dict[str, Any]]:
        """The state machine's executions, oldest first."""
        arn = self.outputs["RolloutStateMachineArn"]
        return sorted(self.sfn.list_executions(stateMachineArn=arn)["executions"], key=lambda e: e["startDate"])

    def _count_call(self, event_name: str, **_: Any) -> None:
        # The pipeline's calls: its Lambdas' and its executions' own tasks, not the harness's reads.
        if aws.pipeline_call(self.clock):
            _, service, operation = event_name.split(".", 2)
            self.api_calls[f"{service}:{operation}"] += 1
            aws.lambda_.count_function_call(service)
            function = aws.lambda_.running_function()
            if function:
                self.calls_by_function[function].add(f"{IAM_PREFIX.get(service, service)}:{operation}")

    def _stop_running(self) -> None:
        # A thread that outlives the mock would make real calls: stop every execution and let each end.
        arn = self.outputs.get("RolloutStateMachineArn")
        if arn:
            for execution in self.sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]:
                self.sfn.stop_execution(executionArn=execution["executionArn"], cause="simulation ended")
        self.run_until(lambda: not self.clock.parked(), "every execution to end")

    # -- the fleet ------------------------------------------------------------------------------
    def launch(
        self,
        group: str,
        count: int,
        version: str = "1.26.0",
        azs: Iterable[str] = AZS,
        faults: dict[int, set[Fault]] | None = None,
    ) -> list[str]:
        """Start `count` tagged Bottlerocket instances spread over the AZs; returns their ids."""
        zones, faults = list(azs), faults or {}
        ids: list[str] = []
        for index in range(count):
            az = zones[index % len(zones)]
            instance = self.ec2.run_instances(
                ImageId=AMI,
                MinCount=1,
                MaxCount=1,
                InstanceType="m7g.large",
                Placement={"AvailabilityZone": az},
                TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": self.tag_key, "Value": group}]}],
            )["Instances"][0]
            self.fleet.add_host(instance["InstanceId"], az, self.repository.variant, version, faults.get(index, set()))
            ids.append(instance["InstanceId"])
        return ids

    def after_step(self, step: str, hook: Callable[[dict[str, Any], Any], None]) -> None:
        """Run `hook(step_input, step_result)` each time the `step` handler (e.g. "bake") returns, in the
        execution's own thread, before the execution goes on: an operator's or the world's action at an
        exact point of a rollout."""
        aws.lambda_.AFTER_STEP.setdefault(step, []).append(hook)

    def alarm(self, name: str, state: str = "OK") -> str:
        """Create (or reset) a CloudWatch alarm, as the team's monitoring would have; returns its name."""
        self.cloudwatch.put_metric_alarm(
            AlarmName=name,
            Namespace="Workload",
            MetricName="Errors",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
        self.set_alarm(name, state)
        if name not in self._alarms:
            self._alarms.add(name)
            self._undo.append(lambda: self.cloudwatch.delete_alarms(AlarmNames=[name]))
        return name

    def set_alarm(self, name: str, state: str, reason: str = "simulated") -> None:
        self.cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason)

    def redeliver_alarm_change(self, name: str, state: str) -> None:
        """An "Alarm State Change" event for the alarm, as CloudWatch puts it, whatever the alarm's state now
        (EventBridge delivers late, and again)."""
        aws.cloudwatch.publish_alarm_change(ACCOUNT, REGION, name, "OK", state, "redelivered", self.clock)

    def tick(self) -> int:
        """Fire every scheduled EventBridge rule once, now (moto never fires them by itself)."""
        return aws.events.fire_schedules(ACCOUNT, REGION, self.clock)

    def inject(self, instance_id: str, *faults: Fault) -> None:
        self.fleet.hosts[instance_id].faults.update(faults)

    def versions(self) -> dict[str, str]:
        """The version each simulated host runs now."""
        return {instance_id: host.version for instance_id, host in self.fleet.hosts.items()}

    # -- rollouts -------------------------------------------------------------------------------
    def start(self, request: Any, name: str | None = None) -> str:
        kwargs = {"name": name} if name else {}
        body = request if isinstance(request, str) else json.dumps(request)
        return self.sfn.start_execution(stateMachineArn=self.outputs["RolloutStateMachineArn"], input=body, **kwargs)[
            "executionArn"
        ]

    def rollout(self, group: str, version: str, **request: Any) -> Execution:
        return self.wait(self.start({"group": group, "target_version": version, **request}))

    # -- driving time ---------------------------------------------------------------------------
    def run_until(self, condition: Callable[[], bool], what: str, within: float | None = None) -> bool:
        """Let the world run until `condition()` holds (looked at after every other actor's turn); False if
        `within` virtual seconds passed first. A world where nobody can move raises SimulationStuck."""
        return self.clock.run_until(condition, what, within)

    def sleep(self, seconds: float) -> None:
        """Let `seconds` of virtual time pass, the world going on meanwhile."""
        self.clock.advance(seconds)

    def settle(self) -> None:
        """Let everything due now happen (executions just started run to their first wait); time stands still."""
        self.clock.settle()

    def wait(self, arn: str, within: float = MAX_EXECUTION_SECONDS) -> Execution:
        """Let the world run until the execution ends."""
        if not self.run_until(lambda: self._status(arn) != "RUNNING", f"execution {arn} to end", within):
            raise TimeoutError(f"execution {arn} still running after {within / 86400:.1f} days of virtual time")
        described = self.sfn.describe_execution(executionArn=arn)
        output = described.get("output")
        return Execution(
            arn=arn,
            name=described["name"],
            status=described["status"],
            output=json.loads(output) if output else None,
            error=described.get("error"),
            cause=described.get("cause"),
        )

    def _status(self, arn: str) -> str:
        return self.sfn.describe_execution(executionArn=arn)["status"]

    def wait_all(self, within: float = MAX_EXECUTION_SECONDS) -> list[Execution]:
        """Let the world run until no execution is left; every execution of the state machine, oldest first."""
        if not self.run_until(lambda: not self.clock.parked(), "every execution to end", within):
            raise TimeoutError(f"executions still running after {within / 86400:.1f} days of virtual time")
        return [self.wait(e["executionArn"]) for e in self.executions()]

    def history(self, arn: str) -> list[dict[str, Any]]:
        return self.sfn.get_execution_history(executionArn=arn)["events"]

    # -- the ledger -----------------------------------------------------------------------------
    def rollout_record(self, rollout_id: str) -> dict[str, Any]:
        """The rollout's item, with the operator's requests on it, as the ledger adapter reads it."""
        item = self.ledger.get_item(Key=ledger_schema.rollout_key(rollout_id)).get("Item", {})
        requests = self.ledger.get_item(Key=ledger_schema.request_key(rollout_id)).get("Item", {})
        return item | {name: requests[name] for name in ledger_schema.REQUEST_FIELDS if name in requests}

    def host_records(self, rollout_id: str) -> dict[str, dict[str, Any]]:
        """Every host the rollout recorded (planned or skipped), by instance id."""
        items, start = [], None
        while True:
            extra = {"ExclusiveStartKey": start} if start else {}
            pk = Key(ledger_schema.PK).eq(ledger_schema.rollout_pk(rollout_id))
            page = self.ledger.query(KeyConditionExpression=pk, **extra)
            items += page["Items"]
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        hosts = (ledger_schema.WAVE, ledger_schema.SKIPPED)
        return {item["instance_id"]: item for item in items if item[ledger_schema.SK].startswith(hosts)}

    def rollout_events(self, rollout_id: str) -> list[dict[str, Any]]:
        """The rollout's own events (waves, bakes, alarms, halt, ...), as the ledger keeps them."""
        condition = Key(ledger_schema.PK).eq(ledger_schema.rollout_pk(rollout_id)) & Key(ledger_schema.SK).begins_with(
            ledger_schema.EVENT
        )
        return self.ledger.query(KeyConditionExpression=condition)["Items"]

    def lock_holder(self, group: str) -> str | None:
        return self.locks.get_item(Key={"group": group}).get("Item", {}).get("holder")

    # -- notifications and lifecycle events -----------------------------------------------------
    def subscribe_queue(self) -> str:
        """An SQS queue subscribed to the notification topic, as an operator's tooling would; its URL."""
        sqs = boto3.client("sqs")
        url = sqs.create_queue(QueueName="updraft-notifications")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns = boto3.client("sns")
        subscription = sns.subscribe(TopicArn=self.outputs["NotificationTopicArn"], Protocol="sqs", Endpoint=arn)
        self._undo.append(lambda: sqs.delete_queue(QueueUrl=url))
        self._undo.append(lambda: sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"]))
        return url

    def notifications(self, queue_url: str) -> list[dict[str, Any]]:
        """Every SNS notification the queue holds, oldest first: SNS's envelope (Subject, Message, ...)."""
        return [json.loads(body) for body in self._drain(queue_url)]

    def capture_lifecycle_events(self) -> str:
        """A rule on the default bus sending every Updraft event to a FIFO queue, which keeps their order."""
        sqs, events = boto3.client("sqs"), boto3.client("events")
        url = sqs.create_queue(
            QueueName="updraft-lifecycle.fifo",
            Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
        )["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="updraft-lifecycle-capture", EventPattern=json.dumps({"source": ["updraft"]}))
        events.put_targets(
            Rule="updraft-lifecycle-capture",
            Targets=[{"Id": "capture", "Arn": arn, "SqsParameters": {"MessageGroupId": "updraft"}}],
        )
        self._undo.append(lambda: sqs.delete_queue(QueueUrl=url))
        self._undo.append(lambda: events.delete_rule(Name="updraft-lifecycle-capture"))
        self._undo.append(lambda: events.remove_targets(Rule="updraft-lifecycle-capture", Ids=["capture"]))
        return url

    def lifecycle_events(self, queue_url: str) -> list[dict[str, Any]]:
        """The events the capture queue received, in the order they were published."""
        return [json.loads(body) for body in self._drain(queue_url)]

    @staticmethod
    def _drain(queue_url: str) -> list[str]:
        sqs, bodies = boto3.client("sqs"), []
        while True:
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return bodies
            for message in messages:
                bodies.append(message["Body"])
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    # -- ECS ------------------------------------------------------------------------------------
    def ecs_cluster(self, name: str) -> None:
        """An ECS cluster with a service task definition (`app`) and a standalone one (`job`)."""
        ecs = boto3.client("ecs")
        ecs.create_cluster(clusterName=name)
        for family in ("app", "job"):
            ecs.register_task_definition(
                family=family,
                containerDefinitions=[{"name": family, "image": f"example/{family}:1", "memory": 256}],
            )

    def join_cluster(self, cluster: str, instance_ids: Iterable[str]) -> dict[str, str]:
        """Register the hosts as container instances of the cluster, as their ECS agents do; their ARNs."""
        ecs, joined = boto3.client("ecs"), {}
        for instance_id in instance_ids:
            identity = {"instanceId": instance_id, "region": REGION, "accountId": ACCOUNT}
            registered = ecs.register_container_instance(cluster=cluster, instanceIdentityDocument=json.dumps(identity))
            joined[instance_id] = registered["containerInstance"]["containerInstanceArn"]
        return joined

    def run_service_tasks(self, cluster: str, instance_id: str, count: int, service: str = "web") -> list[str]:
        """Tasks a service's deployment placed on the host: ECS stops and replaces them when it drains."""
        started_by = f"ecs-svc/{zlib.crc32(service.encode()):019d}"  # the shape of a deployment id
        return self._start_tasks(cluster, instance_id, count, "app", started_by, f"service:{service}")

    def run_standalone_task(self, cluster: str, instance_id: str, seconds: int) -> str:
        """A task no service owns (RunTask/StartTask): it runs until its command (`sleep N`) ends."""
        overrides = {"containerOverrides": [{"name": "job", "command": ["sleep", str(seconds)]}]}
        (task,) = self._start_tasks(cluster, instance_id, 1, "job", "nightly-report", "family:job", overrides)
        return task

    def _start_tasks(
        self, cluster: str, instance_id: str, count: int, family: str, started_by: str, group: str, overrides=None
    ) -> list[str]:
        ecs = boto3.client("ecs")
        arn = self.container_instance_arns(cluster)[instance_id]
        return [
            ecs.start_task(
                cluster=cluster,
                taskDefinition=family,
                containerInstances=[arn],
                startedBy=started_by,
                group=group,
                overrides=overrides or {},
            )["tasks"][0]["taskArn"]
            for _ in range(count)
        ]

    def container_instance_arns(self, cluster: str) -> dict[str, str]:
        described = self.container_instances(cluster)
        return {instance_id: view["containerInstanceArn"] for instance_id, view in described.items()}

    def container_instances(self, cluster: str) -> dict[str, dict[str, Any]]:
        """Every container instance of the cluster as ECS describes it now, by EC2 instance id."""
        ecs = boto3.client("ecs")
        arns = ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(arns), 100):
            described = ecs.describe_container_instances(cluster=cluster, containerInstances=arns[start : start + 100])
            found |= {item["ec2InstanceId"]: item for item in described["containerInstances"]}
        return found

    def running_tasks(self, cluster: str) -> dict[str, dict[str, Any]]:
        """Every task of the cluster that runs now, by task ARN."""
        ecs = boto3.client("ecs")
        arns = ecs.list_tasks(cluster=cluster, desiredStatus="RUNNING")["taskArns"]
        tasks: dict[str, dict[str, Any]] = {}
        for start in range(0, len(arns), 100):
            described = ecs.describe_tasks(cluster=cluster, tasks=arns[start : start + 100])["tasks"]
            tasks |= {task["taskArn"]: task for task in described}
        return tasks

    # -- EKS ------------------------------------------------------------------------------------------
    def eks_cluster(self, name: str, version: str | None = None) -> SimulatedCluster:
        """An EKS cluster (CreateCluster, as the harness) whose Kubernetes API is served over HTTPS on 127.0.0.1,
        as DescribeCluster tells; its model, to build workloads and read state. A cluster the stack's access
        entries name must exist before the deployment: `World(..., eks_clusters=[name])` makes it then (it stays
        across resets, emptied); this one is deleted by `reset`."""
        cluster = self._create_eks_cluster(name, version or self.eks_version)
        self._undo.append(lambda: self._delete_eks_cluster(name))
        return cluster

    def eks(self, name: str) -> SimulatedCluster:
        """The cluster's model: its nodes, pods, ReplicaSets, DaemonSets, budgets, and their counters."""
        return self._eks[name]

    def eks_endpoint(self, name: str) -> Endpoint:
        """The cluster's API server: `url`, `ca_pem`, `ca_file`, `token_lifetime_seconds` (settable) and
        `refused_tokens` (requests answered 401)."""
        assert self._kubernetes is not None, f"no EKS cluster {name}"
        return self._kubernetes.endpoints[name]

    def join_eks(self, name: str, instance_ids: Iterable[str]) -> dict[str, str]:
        """The hosts' kubelets register them as nodes of the cluster (named after their EC2 private DNS names,
        as Bottlerocket names them); node name by instance id."""
        ids = list(instance_ids)
        reservations = self.ec2.describe_instances(InstanceIds=ids)["Reservations"] if ids else []
        described = {i["InstanceId"]: i for r in reservations for i in r["Instances"]}
        cluster = self._eks[name]
        return {
            instance_id: cluster.join(
                instance_id,
                name=described[instance_id]["PrivateDnsName"],
                private_ip=described[instance_id]["PrivateIpAddress"],
                instance_type=described[instance_id]["InstanceType"],
            )
            for instance_id in ids
        }

    def eks_access_entry(
        self, name: str, principal_arn: str, groups: Iterable[str] = (), username: str | None = None
    ) -> AccessEntry:
        """An access entry the operator made by hand (CreateAccessEntry); deleted by `reset`."""
        entry = aws.eks.create_access_entry(ACCOUNT, REGION, name, principal_arn, list(groups), username)
        self._undo.append(lambda: aws.eks.ACCESS_ENTRIES.get((ACCOUNT, REGION, name), {}).pop(principal_arn, None))
        return entry

    def _create_eks_cluster(self, name: str, version: str) -> SimulatedCluster:
        boto3.client("eks").create_cluster(
            name=name,
            version=version,
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks-cluster-{name}",
            resourcesVpcConfig={"subnetIds": []},
        )
        if self._kubernetes is None:
            self._kubernetes = KubernetesApiServer(self.clock)
        cluster = SimulatedCluster(name, self.fleet, self.clock, version=version, region=REGION, seed=self.seed)
        endpoint = self._kubernetes.serve(cluster, aws.eks.signers(ACCOUNT), aws.eks.entries(ACCOUNT, REGION, name))
        aws.eks.attach(ACCOUNT, REGION, endpoint)
        self._eks[name] = cluster
        return cluster

    def _delete_eks_cluster(self, name: str) -> None:
        assert self._kubernetes is not None
        self._kubernetes.stop(name)
        self._eks.pop(name)
        aws.eks.forget_entries(ACCOUNT, REGION, name)
        boto3.client("eks").delete_cluster(name=name)

    # -- faults of the AWS side (sim/faults.py, answered in sim/aws/) ---------------------------------
    def terminate(self, *instance_ids: str) -> None:
        """TerminateInstances, as an autoscaler or an operator would: the simulated hosts go away (and the
        kubelets of those that are EKS nodes stop posting now)."""
        self.ec2.terminate_instances(InstanceIds=list(instance_ids))
        for cluster in self._eks.values():
            for instance_id in instance_ids:
                cluster.instance_terminated(instance_id)

    def fail_lambda(self, step: str, code: str = "ServiceException", on_call: int = 1, times: int = 1) -> None:
        """The Lambda service fails `times` Invoke calls of `step` (e.g. "check_hosts") in a row, from its
        `on_call`-th call on, before the handler runs: the state machine sees `Lambda.<code>`."""
        faults.LAMBDA_ERRORS.fail(step, code, on_call, times)

    def lambda_errors_raised(self) -> list[tuple[str, str]]:
        return list(faults.LAMBDA_ERRORS.raised)

    def redeliver_status_change(self, arn: str, status: str | None = None) -> None:
        """Deliver the execution's "Step Functions Execution Status Change" event again (EventBridge
        delivers at least once, and not always in order); with `status`, one that says what is not so."""
        described = self.sfn.describe_execution(executionArn=arn)
        detail = {
            "executionArn": arn,
            "stateMachineArn": described["stateMachineArn"],
            "name": described["name"],
            "status": status or described["status"],
            "input": described.get("input"),
            "error": described.get("error"),
            "cause": described.get("cause"),
        }
        entry = {
            "Source": "aws.states",
            "DetailType": "Step Functions Execution Status Change",
            "Detail": json.dumps(detail),
            "Time": self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Resources": [arn],
        }
        aws.events.put_events(ACCOUNT, REGION, [entry])

    def announce_release(self, version: str, released_at: str, arch: str = "x86_64") -> None:
        """What the detector does on finding a release of this world's variant, without running it: its record
        in the release ledger, then its "Bottlerocket Release Available" event on the release bus."""
        detail = self.record_release(version, released_at, arch)
        self.put_release_event("Bottlerocket Release Available", detail)

    def record_release(self, version: str, released_at: str, arch: str = "x86_64") -> dict[str, Any]:
        """The detector's record of a release it verified (as updraft.detection writes it); its announcement."""
        detail = {
            "variant": self.repository.variant,
            "arch": arch,
            "version": version,
            "released_at": released_at,
            "manifest_digest": "0" * 64,
        }
        record = ledger_schema.release_item(self.repository.variant, arch, version) | detail
        self.ledger.put_item(Item=record | {"first_seen_at": self.clock.now().isoformat()})
        return detail

    def withdraw_release(self, version: str, arch: str = "x86_64") -> None:
        """What the detector does on finding an announced release pulled, without running it: the withdrawal
        claimed and marked sent on its release record, and its "Bottlerocket Release Withdrawn" event."""
        variant, now = self.repository.variant, self.clock.now().isoformat()
        self.ledger.update_item(
            Key=ledger_schema.release_key(variant, arch, version),
            UpdateExpression="SET claimed_withdrawn = :now, announced_withdrawn = :now",
            ExpressionAttributeValues={":now": now},
        )
        detail = {"variant": variant, "arch": arch, "version": version, "manifest_digest": "0" * 64}
        self.put_release_event("Bottlerocket Release Withdrawn", detail)

    def put_release_event(self, detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
        """One event on the release bus, with the caller's credentials (a forger's, when not the detector)."""
        entry = {
            "EventBusName": self.outputs["ReleaseBusName"],
            "Source": "updraft",
            "DetailType": detail_type,
            "Detail": json.dumps(detail),
        }
        return boto3.client("events").put_events(Entries=[entry])

    def stop_while_sleeping(self, arn: str, cause: str = "operator stop") -> bool:
        """StopExecution once the execution waits in a Wait state, between two steps, as an operator usually
        finds it (moto fails, rather than aborts, an execution stopped inside a task); False if it ended first."""
        name = f"execution {arn.rsplit(':', 1)[-1]}"

        def between_steps() -> bool:
            found = [a for a in self.clock.parked() if a.name == name]
            return not found or (found[0].state == "sleeping" and found[0].reason.startswith("Wait state"))

        self.run_until(between_steps, f"{name} to reach a Wait state")
        if self._status(arn) != "RUNNING":
            return False
        self.sfn.stop_execution(executionArn=arn, cause=cause)
        return True

    def host_snapshot(self) -> dict[str, tuple[str, bool]]:
        """Each simulated host's version now (after what was due by now happened), and whether it is gone."""
        now = self.clock.seconds
        snapshot = {}
        for instance_id, host in list(self.fleet.hosts.items()):
            host.sync(now)
            snapshot[instance_id] = (host.version, isinstance(host, faults.TerminatedHost))
        return snapshot


def _empty(table: Any) -> None:
    """Delete every item of a table (a handful of thousand at most in a test)."""
    keys = [key["AttributeName"] for key in table.key_schema]
    with table.batch_writer() as batch:
        for page in _scan(table, keys):
            for item in page:
                batch.delete_item(Key={key: item[key] for key in keys})


def _scan(table: Any, keys: list[str]) -> Iterable[list[dict[str, Any]]]:
    start = None
    while True:
        extra = {"ExclusiveStartKey": start} if start else {}
        page = table.scan(
            ProjectionExpression=", ".join(f"#k{i}" for i in range(len(keys))),
            ExpressionAttributeNames={f"#k{i}": key for i, key in enumerate(keys)},
            **extra,
        )
        yield page["Items"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return
