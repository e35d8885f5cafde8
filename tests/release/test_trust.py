"""The trust store contract that verify_repository relies on."""

from __future__ import annotations

from updraft.release import MemoryTrustStore, ScopedTrustStore, TrustStore


def test_the_memory_store_returns_what_was_saved_and_none_otherwise() -> None:
    store = MemoryTrustStore()

    store.save("timestamp.json", b"\x00 exact bytes \n")

    assert store.load("timestamp.json") == b"\x00 exact bytes \n"
    assert store.load("snapshot.json") is None
    assert isinstance(store, TrustStore)


def test_scoped_stores_share_a_backend_without_sharing_names() -> None:
    backend = MemoryTrustStore()
    k8s = ScopedTrustStore(backend, "aws-k8s-1.31/x86_64")
    ecs = ScopedTrustStore(backend, "/aws-ecs-2/aarch64/")

    k8s.save("timestamp.json", b"k8s")
    ecs.save("timestamp.json", b"ecs")

    assert k8s.load("timestamp.json") == b"k8s"
    assert ecs.load("timestamp.json") == b"ecs"
    assert backend.files == {"aws-k8s-1.31/x86_64/timestamp.json": b"k8s", "aws-ecs-2/aarch64/timestamp.json": b"ecs"}
    assert isinstance(k8s, TrustStore)
