"""Claim-check for large batch snapshots (``batch.submitted`` v3 with ``snapshot_ref``).

A batch snapshot larger than ``WERKPLAATS_SNAPSHOT_INLINE_BYTES`` does not travel over the broker: intake stores
it (a row keyed by batch and message id, in the same transaction as the outbox row) and the message names it by
id, SHA-256 and size. Matching fetches it from intake at ``GET /batch-snapshots/{id}?expires=..&signature=..``:
the request is signed by matching with a key derived from the shared ``WERKPLAATS_SECRET_KEY`` and expires after
``REQUEST_LIFETIME`` (so a message that waited in a queue for days still fetches: the signature is made at fetch
time, not when the message was sent). Intake answers only a valid, unexpired signature for that very snapshot.

A fetch that fails for the infrastructure's reasons (intake unreachable, 5xx, a timeout, a truncated body) raises
``SnapshotUnavailable``, a ``ConnectionError``: the consumer treats it as transient (transient.py) and keeps the
message without using up its retry budget. A snapshot intake does not have (404), a refused signature (403) or a
body whose hash does not match raise ``SnapshotRefused``: retried within the budget, then dead-lettered.

An erasure rewrites a stored snapshot (the erased person's free-text skills leave it, as they leave every other
copy), so its digest changes while a message naming the old one may still wait in a queue. Intake serves the
snapshot with its digest (``X-Snapshot-SHA256``) and the digests it had before (``X-Snapshot-Replaces``): a body
whose digest is the one served, for a message that names one it replaces, is that snapshot as erased.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

REQUEST_LIFETIME_SECONDS = 60
FETCH_TIMEOUT_SECONDS = 60.0
PATH = "/batch-snapshots/"
# Measured (benchmarks/batch_submit.py): a snapshot is about 1 kB per assignment with its two teams: 2.1 MB for
# 2,000 assignments and 4,000 teams, 52 MB for a national 50,000 and 100,000. Above 1 MB (about 1,000
# assignments) the message goes by reference: a broker message stays small whatever the round.
DEFAULT_INLINE_BYTES = 1_000_000


DIGEST_HEADER = "X-Snapshot-SHA256"
REPLACES_HEADER = "X-Snapshot-Replaces"


def rewritten_headers(sha256: str, replaces: list[str]) -> dict[str, str]:
    """The headers intake serves a stored snapshot with: its digest and, once an erasure rewrote it, the earlier
    digests (comma-separated, oldest first)."""
    return {DIGEST_HEADER: sha256, **({REPLACES_HEADER: ",".join(replaces)} if replaces else {})}


class SnapshotUnavailable(ConnectionError):
    """Intake could not hand the snapshot over just now (transient: the message waits and is tried again)."""


class SnapshotRefused(Exception):
    """Intake refused the fetch or served a body that is not the snapshot named (not transient)."""


def encode(payload: dict[str, Any]) -> bytes:
    """The snapshot as stored, served and hashed: compact JSON with sorted keys."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _key(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), b"werkplaats:batch-snapshots", hashlib.sha256).digest()


def signature(secret_key: str, snapshot_id: str, expires: int) -> str:
    return hmac.new(_key(secret_key), f"{snapshot_id}\n{expires}".encode(), hashlib.sha256).hexdigest()


def signature_valid(secret_key: str, snapshot_id: str, expires: str, given: str, now: float | None = None) -> bool:
    """True for a signature of this snapshot that has not expired and expires no later than one lifetime ahead."""
    if not secret_key or not expires.isdigit() or len(expires) > 12:
        return False
    moment = time.time() if now is None else now
    if not moment <= int(expires) <= moment + REQUEST_LIFETIME_SECONDS + 5:
        return False
    return hmac.compare_digest(signature(secret_key, snapshot_id, int(expires)), given)


def signed_url(base_url: str, secret_key: str, snapshot_id: str, now: float | None = None) -> str:
    expires = int(time.time() if now is None else now) + REQUEST_LIFETIME_SECONDS
    query = urllib.parse.urlencode({"expires": expires, "signature": signature(secret_key, snapshot_id, expires)})
    return f"{base_url.rstrip('/')}{PATH}{urllib.parse.quote(snapshot_id, safe='')}?{query}"


def fetch(base_url: str, secret_key: str, reference: dict[str, Any],
          timeout: float = FETCH_TIMEOUT_SECONDS) -> dict[str, Any]:
    """The snapshot ``reference`` names, fetched from intake at ``base_url`` and checked against its hash."""
    if not secret_key:
        raise SnapshotRefused("this process has no WERKPLAATS_SECRET_KEY to sign the fetch of a batch snapshot")
    url = signed_url(base_url, secret_key, reference["snapshot_id"])
    sha256, size = str(reference["sha256"]), int(reference["size_bytes"])
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - an http(s) URL we build
            served, length = response.headers.get(DIGEST_HEADER), response.headers.get("Content-Length")
            if (served is not None and served != sha256 and length is not None and length.isdigit()
                    and sha256 in (response.headers.get(REPLACES_HEADER) or "").split(",")):
                sha256, size = served, int(length)  # rewritten by an erasure since the message was sent
            body: bytes = response.read(size + 1)
            whole = length is not None and length.isdigit() and len(body) == int(length)
    except urllib.error.HTTPError as exc:
        if exc.code >= 500 or exc.code == 429:
            raise SnapshotUnavailable(f"intake answered {exc.code} for batch snapshot {reference['snapshot_id']}") \
                from None
        raise SnapshotRefused(f"intake answered {exc.code} for batch snapshot {reference['snapshot_id']}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise SnapshotUnavailable(f"batch snapshot {reference['snapshot_id']}: intake not reachable "
                                  f"({type(exc).__name__})") from None
    if len(body) < size and not whole:  # a shorter body served whole is another body, not one cut short
        raise SnapshotUnavailable(f"batch snapshot {reference['snapshot_id']}: the body was cut short")
    if len(body) != size or not hmac.compare_digest(digest(body), sha256):
        raise SnapshotRefused(f"batch snapshot {reference['snapshot_id']}: its SHA-256 or size is not the one "
                              "the message names")
    payload = json.loads(body)
    if not isinstance(payload, dict):
        raise SnapshotRefused(f"batch snapshot {reference['snapshot_id']} is not a JSON object")
    return payload
