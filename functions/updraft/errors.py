"""Named errors. Lambda reports the class name as the error type, so the state machine's Retry and
Catch clauses match these names."""


class UpdraftError(Exception):
    """Base of the errors Updraft raises on purpose."""


class InvalidRolloutRequest(UpdraftError):
    """The execution input does not match the schema, or names a group that is not configured."""


class MalformedCommandOutput(UpdraftError):
    """An SSM command printed something that is not the report its document promises."""


class CommandThrottled(UpdraftError):
    """SSM kept throttling after botocore's retries; the state machine retries the step later."""


class RolloutNotFound(UpdraftError):
    """The ledger has no record of the rollout the step was given."""


class AlarmNotFound(UpdraftError):
    """A group's alarm gate names a CloudWatch alarm (or a prefix) that matches none: it would watch nothing."""


class RollbackRefused(UpdraftError):
    """A rollback was asked for outside the rollout's rollback window, or of a rollout that cannot be undone."""


class DocumentChanged(UpdraftError):
    """An SSM document's default version is not the content the stack deployed: nothing is sent with it. Not
    retried: the content stays changed until someone looks, so the rollout fails and records its hosts."""


class KubernetesApiError(UpdraftError):
    """An EKS cluster's Kubernetes API refused a request for good (forbidden, invalid): not retried, the rollout
    fails and records its hosts, so that someone fixes the cluster's access first."""


class KubernetesUnavailable(UpdraftError):
    """An EKS cluster's Kubernetes API did not answer, throttled the request (429) or answered with a server error:
    the step is retried."""
