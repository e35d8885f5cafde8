"""verify_repository anchored on a root shaped like Bottlerocket's, RSA-3072 PSS signatures throughout.

The roots under data/ come from make_bottlerocket_shaped_root.py (see its docstring for the shape of
Bottlerocket's root.json version 2 it reproduces). Tests sign new metadata with the test-only keys kept
beside them and, for a rotation to a version 3, with the RSA keys conftest generates once per run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from securesystemslib.formats import encode_canonical
from securesystemslib.signer import CryptoSigner, Signer, SSlibKey
from tuf.api.metadata import Metadata, Root

from updraft.release import MemoryTrustStore, UntrustedRelease, VerifiedManifest

if TYPE_CHECKING:
    from conftest import Keys, Manifests, Served, TufRepository

DATA = Path(__file__).resolve().parent / "data"
BOTTLEROCKET_ROOT_V2_BYTES = 13_632  # Bottlerocket's 2.root.json (sha512 9039320423...)
Verify = Callable[..., VerifiedManifest]


@dataclass(frozen=True)
class ShapedRoots:
    first: bytes  # version 1
    root: bytes  # version 2: new keys, signed by version 1's root keys and its own
    root_signers: tuple[Signer, ...]  # two of version 2's three root keys: its threshold
    online: Signer  # one of version 2's snapshot/targets/timestamp keys


def _signer(pem: str) -> Signer:
    private = load_pem_private_key(pem.encode(), password=None)
    return CryptoSigner(private, SSlibKey.from_crypto(private.public_key(), scheme="rsassa-pss-sha256"))


@pytest.fixture(scope="session")
def shaped() -> ShapedRoots:
    keys = json.loads((DATA / "bottlerocket-shaped-test-only-keys.json").read_text())
    return ShapedRoots(
        first=(DATA / "bottlerocket-shaped-1.root.json").read_bytes(),
        root=(DATA / "bottlerocket-shaped-root.json").read_bytes(),
        root_signers=tuple(_signer(pem) for pem in keys["root"]),
        online=_signer(keys["online"]),
    )


@pytest.fixture
def shaped_repository(
    new_repository: Callable, shaped: ShapedRoots, manifests: Manifests
) -> tuple[TufRepository, Served]:
    """A repository whose first root is the shaped version 2, its first release published."""
    repo, server = new_repository(root=shaped.root, root_signers=shaped.root_signers, online=shaped.online)
    repo.publish_manifest(manifests.first)
    return repo, server


def test_the_shaped_root_has_the_shape_of_bottlerocket_root(shaped: ShapedRoots) -> None:
    metadata = Metadata[Root].from_bytes(shaped.root)
    root = metadata.signed

    assert abs(len(shaped.root) - BOTTLEROCKET_ROOT_V2_BYTES) <= BOTTLEROCKET_ROOT_V2_BYTES // 100
    assert root.version == 2 and root.consistent_snapshot
    assert len(root.keys) == 8
    for keyid, key in root.keys.items():
        public = load_pem_public_key(key.keyval["public"].encode())
        assert isinstance(public, RSAPublicKey) and public.key_size == 3072
        assert (key.keytype, key.scheme) == ("rsa", "rsassa-pss-sha256")
        # Key IDs as tough computes them (and refuses any other): sha256 of the key's canonical JSON.
        assert keyid == hashlib.sha256(encode_canonical(key.to_dict()).encode()).hexdigest()
    thresholds = {name: role.threshold for name, role in root.roles.items()}
    assert thresholds == {"root": 2, "snapshot": 1, "targets": 1, "timestamp": 1}
    keyids = {name: set(role.keyids) for name, role in root.roles.items()}
    assert len(keyids["root"]) == 3 and not keyids["root"] & keyids["timestamp"]
    assert keyids["snapshot"] == keyids["targets"] and len(keyids["targets"]) == 3
    assert keyids["targets"] < keyids["timestamp"] and len(keyids["timestamp"]) == 5
    # Cross-signed: by its own three root keys and by version 1's threshold.
    own = root.get_verification_result("root", metadata.signed_bytes, metadata.signatures)
    assert own.verified and len(own.signed) == 3
    previous = Metadata[Root].from_bytes(shaped.first).signed
    assert previous.get_verification_result("root", metadata.signed_bytes, metadata.signatures).verified
    assert not set(previous.keys) & set(root.keys)  # every key replaced, as in Bottlerocket's rotation
    assert len(metadata.signatures) == 6


def test_a_repository_anchored_on_the_shaped_root_is_verified(
    shaped_repository: tuple[TufRepository, Served], shaped: ShapedRoots, store: MemoryTrustStore, verify: Verify
) -> None:
    repo, server = shaped_repository

    result = verify(repo, store)

    assert result.versions.root == 2
    assert store.files["root.json"] == shaped.root
    assert server.requests[0] == ("/metadata/3.root.json", 404)


def test_the_cross_signed_rotation_from_version_1_is_followed(
    shaped_repository: tuple[TufRepository, Served], shaped: ShapedRoots, store: MemoryTrustStore, verify: Verify
) -> None:
    repo, server = shaped_repository
    repo.trusted_root = shaped.first  # anchored on version 1, as a host built before the rotation is

    result = verify(repo, store)

    assert result.versions.root == 2
    assert store.files["root.json"] == shaped.root  # stored byte for byte, cross-signatures included
    assert server.requests[:2] == [("/metadata/2.root.json", 200), ("/metadata/3.root.json", 404)]


def test_a_rotation_signed_by_the_old_threshold_and_the_new_keys_is_followed(
    shaped_repository: tuple[TufRepository, Served], keys: Keys, store: MemoryTrustStore, verify: Verify
) -> None:
    repo, _ = shaped_repository
    verify(repo, store)
    # Version 3: three new RSA root keys (threshold 2) and a new online key, signed by two of version
    # 2's root keys and by the three new ones.
    new_root = repo.rotate_root(new_keys=keys.root, threshold=2, new_online=keys.online)
    repo.publish("targets")

    result = verify(repo, store)

    assert result.versions.root == 3
    assert store.files["root.json"] == new_root
    assert result.saved[0] == "root.json"


@pytest.mark.parametrize(
    "signers",
    [
        pytest.param(lambda shaped, keys: [shaped.root_signers[0], *keys.root], id="one-old-root-key-of-two"),
        pytest.param(lambda shaped, keys: [*shaped.root_signers, keys.root[0]], id="one-new-root-key-of-two"),
    ],
)
def test_a_rotation_without_both_thresholds_is_rejected(
    shaped_repository: tuple[TufRepository, Served],
    shaped: ShapedRoots,
    keys: Keys,
    store: MemoryTrustStore,
    verify: Verify,
    signers: Callable,
) -> None:
    repo, _ = shaped_repository
    verify(repo, store)
    repo.rotate_root(new_keys=keys.root, threshold=2, new_online=keys.online, signed_by=signers(shaped, keys))
    repo.publish("targets")
    before = store.files

    with pytest.raises(UntrustedRelease) as caught:
        verify(repo, store)

    assert str(caught.value).startswith("root.json v3: signature threshold not met"), str(caught.value)
    assert store.files == before
