"""The digest of an SSM document's content, the same at synth (the stack fixes it in the functions'
environment) and at run time (the SSM adapter checks the document against it before it sends one).

The content is canonical JSON: keys sorted, no whitespace, UTF-8. A YAML document and its JSON form, and any
re-upload that changes only layout or key order, have the same digest; any change of a value does not."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def canonical(content: Mapping[str, Any]) -> bytes:
    """The one byte form of a document's content that is hashed."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


def document_digest(content: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the content's canonical JSON."""
    return hashlib.sha256(canonical(content)).hexdigest()
