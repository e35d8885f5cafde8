"""botocore, the SDK every caller's clients are made with: retry backoff and its jitter, and the signing time, on
the virtual clock.

A backoff is the sleeping actor's own: the rest of the world goes on meanwhile. The jitter is drawn from the
clock's seeded random, in turn order, for both of botocore's retry modes (standard: the pipeline's clients;
legacy: Step Functions' aws-sdk tasks). SigV4 signs at virtual time (`botocore.auth.get_current_datetime`, which
SigV4Auth and SigV4QueryAuth read for X-Amz-Date): a presigned request, such as an EKS token, ages on the
virtual clock, and whoever checks its age checks it there.
"""

from __future__ import annotations

import time
from datetime import datetime
from types import SimpleNamespace
from typing import Any
from unittest import mock

import botocore.auth as botocore_auth
import botocore.endpoint as botocore_endpoint
from botocore import retryhandler
from botocore.retries.standard import ExponentialBackoff

from sim.clock import VirtualClock


def patches(clock: VirtualClock) -> list[Any]:
    original_delay = ExponentialBackoff.delay_amount

    def delay_amount(self: ExponentialBackoff, context: Any) -> float:
        self._random = clock.random.random  # botocore's jitter, drawn in turn order
        return original_delay(self, context)

    backoff = SimpleNamespace(sleep=lambda seconds: clock.sleep(seconds, reason="botocore backoff"), time=time.time)

    def signing_time(remove_tzinfo: bool = True) -> datetime:
        now = clock.now()  # UTC
        return now.replace(tzinfo=None) if remove_tzinfo else now

    return [
        mock.patch.object(botocore_auth, "get_current_datetime", signing_time),
        mock.patch.object(botocore_endpoint, "time", backoff),
        mock.patch.object(ExponentialBackoff, "delay_amount", delay_amount),
        mock.patch.object(retryhandler, "random", clock.random),  # legacy mode's jitter (aws-sdk tasks)
    ]
