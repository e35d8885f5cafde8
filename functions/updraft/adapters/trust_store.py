"""The last trusted TUF metadata, in S3: targets.json outgrows a DynamoDB item as releases accumulate."""

from __future__ import annotations

from updraft.adapters.aws import client


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
