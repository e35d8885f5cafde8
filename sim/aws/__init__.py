"""Every change the simulation makes to moto 5.2.5 (and to botocore's retry sleep), one module per service.

What moto lacks for running Updraft for real (see the project's reference on moto), by service:
- sdk.py: botocore's retry backoff and jitter, and SigV4's signing time, follow the virtual clock;
- stepfunctions.py: executions are actors of the scheduler; Wait states, retry intervals and
  `$$.State.EnteredTime` follow the virtual clock; `start_execution` without a name gets a unique one; an
  execution's end is published to EventBridge as "Step Functions Execution Status Change";
- idempotency.py: Powertools' idempotency records (in DynamoDB) expire on the virtual clock;
- lambda_.py: functions run their real handler in-process, with their deployed environment, and sign their
  requests with their execution role's session (fault: a planned Lambda service error fails the Invoke call);
- dynamodb.py: item requests of a principal (a function's role, a user's or role session's keys) are authorised
  against its policies, `dynamodb:LeadingKeys` included (iam.py: who is calling, and the policy evaluation);
- ssm.py: Run Command is answered by the simulated fleet, which runs the real document scripts, of the
  version the command names (fault: a command naming a terminated instance fails); compliance items (moto has
  none) are kept per account (sim/compliance.py), PutComplianceItems validated and authorised as SSM does;
- ec2.py: status checks and RebootInstances reach the simulated hosts (fault: TerminateInstances takes a host
  away);
- ecs.py: ECS's scheduler and agents, played by the model in sim/ecs.py;
- eks.py: DescribeCluster answers the endpoint and CA of the cluster's simulated Kubernetes API server
  (sim/kubernetes_api.py, over the model in sim/kubernetes.py) and is authorised under the caller's policies;
  access entries are kept where that server's authenticator finds them, and signing keys resolved for it;
- events.py: rules deliver events to Lambda, Step Functions and SNS targets (Lambda's asynchronous retries and
  on-failure destination, the targets' dead-letter queues); scheduled rules fire on a tick; PutEvents is
  authorised under the caller's identity policy and the bus's resource policy;
- cloudwatch.py: an alarm's state change reaches its SNS actions and the default bus;
- cloudformation.py: the state machine is created where executions run, documents may have an object as
  content, and the SNS subscriptions, topic policies, alarms, event bus policies, queue policies and event
  invoke configs moto skips are created, and EKS access entries recorded;
- sns.py, common.py and iam.py: what the others share (no patch of their own).
The request limits moto does not enforce are applied where each request arrives, from sim/service_limits.py.
A moto upgrade that moves these internals breaks here and nowhere else: nothing outside this package imports
moto but the tests.

`wired()` enters every patch, in this order (and leaves them in the reverse order):
   1. sdk                          botocore's backoff and jitter, SigV4's signing time
   2. stepfunctions.scheduler      executions as actors, Wait/retry/EnteredTime, names, task clients
   3. idempotency                  record expiry
   4. lambda_                      Invoke: planned service error, handler, after-step hooks; the signer's
                                   credentials while a handler runs
   5. dynamodb                     item requests authorised (a function's role, keys of a user or role session)
   6. ssm                          SendCommand request limits and DocumentVersion; SendCommand: terminated
                                   instances, fleet delivery of that version; the reads; compliance items
   7. ec2                          status checks, RebootInstances, TerminateInstances
   8. ecs                          the ECS model settled on every call; request limits
   9. eks                          DescribeCluster authorised
  10. stepfunctions.status_changes an execution's end, put on the default bus
  11. events                       rules' targets (async retries, destinations, DLQs), PutEvents authorised
                                   (caller and bus policy), PutEvents limit
  12. cloudwatch                   alarm state changes to SNS and to the default bus; DescribeAlarms
  13. cloudformation               the resources moto lacks or creates elsewhere
`scheduled()` enters 1-3 alone (the routing tests bring their own Lambda answers). Each moto attribute is
patched once and only once, which `wired()` checks as it enters them: where several concerns meet in one moto
method (SSM's SendCommand, a rule's delivery, Lambda's Invoke), its one patch calls them in the order its
module's docstring gives, and no patch wraps another. So this order decides nothing about behaviour; it is
fixed, from the scheduler outwards to the services only other services reach, so that the list reads as the
layers do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from moto import mock_aws
from moto.moto_api._internal import mock_random

from sim import faults
from sim.aws import (
    cloudformation,
    cloudwatch,
    dynamodb,
    ec2,
    ecs,
    eks,
    events,
    idempotency,
    lambda_,
    sdk,
    ssm,
    stepfunctions,
)
from sim.clock import VirtualClock
from sim.ecs import SimulatedEcs
from sim.fleet import Fleet

MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}}


def mocked() -> Any:
    """moto's AWS, configured as the simulation needs it (a context manager, or `start()`/`stop()`)."""
    return mock_aws(config=MOTO_CONFIG)


def seed(value: int) -> None:
    """Make moto's generated ids (instances, commands) repeatable."""
    mock_random.seed(value)


@dataclass
class Wiring:
    """What the patches keep of the simulated services' state beyond moto's own."""

    ecs: SimulatedEcs


@contextlib.contextmanager
def wired(fleet: Fleet, clock: VirtualClock, lambda_env: dict[str, str] | None = None) -> Iterator[Wiring]:
    """Apply every patch for the life of the block, in the order above."""
    lambda_.INVOCATIONS.clear()
    model = SimulatedEcs(fleet, clock)
    services = [
        *lambda_.patches(clock, {} if lambda_env is None else lambda_env),
        *dynamodb.patches(),
        *ssm.patches(fleet),
        *ec2.patches(fleet),
        *ecs.patches(model),
        *eks.patches(),
        *stepfunctions.status_changes(clock),
        *events.patches(clock),
        *cloudwatch.patches(clock),
        *cloudformation.patches(),
    ]
    try:
        with _entered([*_scheduler(clock), *services]):
            try:
                yield Wiring(model)
            finally:
                stepfunctions.forget_threads()
    finally:
        faults.LAMBDA_ERRORS.clear()  # the planned Lambda errors end with the block


@contextlib.contextmanager
def scheduled(clock: VirtualClock) -> Iterator[None]:
    """Only the scheduler's part (1-3): executions as actors on virtual time, named from the seed (for tests of
    the state machine's routing that bring their own Lambda answers)."""
    with _entered(_scheduler(clock)):
        yield


def _scheduler(clock: VirtualClock) -> list[Any]:
    return [*sdk.patches(clock), *stepfunctions.scheduler(clock), *idempotency.patches(clock)]


@contextlib.contextmanager
def _entered(patchers: list[Any]) -> Iterator[None]:
    _one_patch_each(patchers)
    with contextlib.ExitStack() as stack:
        for patcher in patchers:
            stack.enter_context(patcher)
        yield


def _one_patch_each(patchers: list[Any]) -> None:
    """Refuse two patches of one attribute (or one dictionary key): the second would wrap the first."""
    seen: set[tuple[int, Any]] = set()
    for patcher in patchers:
        if hasattr(patcher, "in_dict"):  # mock.patch.dict
            targets = [(id(patcher.in_dict), key) for key in patcher.values]
            name = f"{sorted(patcher.values)}"
        else:
            targets = [(id(patcher.getter()), patcher.attribute)]
            name = f"{patcher.getter()!r}.{patcher.attribute}"
        for target in targets:
            if target in seen:
                raise RuntimeError(f"{name} is patched twice: make one patch call both concerns")
            seen.add(target)


def pipeline_call(clock: VirtualClock) -> bool:
    """Whether an AWS call now is the pipeline's (a Lambda, or an execution's own task), not the harness's."""
    return lambda_.running_function() is not None or not clock.in_harness_turn()


@dataclass(frozen=True)
class Deployed:
    """The account as a deployment left it: moto's id generator, and every alarm's state."""

    random_state: Any
    alarm_states: dict[str, str]


def deployed(account: str, region: str) -> Deployed:
    # Backends are made on first use, and making one draws ids: make those `back_to` reaches now, so that
    # a test after a reset draws exactly what the first test after the deployment does. The functions' role
    # sessions draw keys: they are opened now too.
    for backend in (ssm.backend, ec2.backend, ecs.backend):
        backend(account, region)
    lambda_.open_sessions(account, region)
    return Deployed(mock_random.getstate(), cloudwatch.alarm_states(account, region))


def back_to(deployment: Deployed, wiring: Wiring, account: str, region: str) -> None:
    """Put the account back as the deployment left it, for the next test: no SSM command, instance, ECS
    cluster or execution any more, the stack's alarms in their first state, and moto drawing the same ids
    as it did right after the deployment. moto keeps these in its backends, out of reach of any delete call;
    what the harness created through the APIs, it deletes itself (World.reset)."""
    ssm.forget(account, region)
    ec2.forget(account, region)
    ecs.forget(wiring.ecs, account, region)
    stepfunctions.forget(account, region)
    cloudwatch.restore(deployment.alarm_states, account, region)
    mock_random.setstate(deployment.random_state)
    lambda_.INVOCATIONS.clear()
