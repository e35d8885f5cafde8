"""The last trusted TUF metadata, in S3: targets.json outgrows a DynamoDB item as releases accumulate."""

from __future__ import annotations

import hashlib

from updraft.adapters.aws import client
from updraft.release.errors import TrustedRootMismatch


def pinned_root(bucket: str, key: str, sha512: str) -> bytes:
    """The operator's root.json as deployed, refused unless its SHA-512 is the one synth checked."""
    where = f"s3://{bucket}/{key}"
    s3 = client("s3")
    try:
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        raise TrustedRootMismatch(f"trusted root.json: {where} does not exist") from None
    digest = hashlib.sha512(data).hexdigest()
    if digest != sha512:
        raise TrustedRootMismatch(f"trusted root.json: {where} has SHA-512 {digest[:16]}..., deployed {sha512[:16]}...")
    return data


class S3TrustStore:
    """A `updraft.release.TrustStore` in one bucket, under a prefix."""

    def __init__(self, bucket: str, prefix: str = "trust/") -> None:
        self.bucket, self.prefix = bucket, prefix
        self._s3 = client("s3")

    def load(self, name: str) -> bytes | None:
        try:
            return self._s3.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"].read()
        except self._s3.exceptions.NoSuchKey:
            return None

    def save(self, name: str, data: bytes) -> None:
        self._s3.put_object(Bucket=self.bucket, Key=self.prefix + name, Body=data)
