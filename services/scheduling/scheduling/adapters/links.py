"""Signed, expiring accept/decline links (itsdangerous). The token is the credential: it names one
match in one notice and is signed with WERKPLAATS_SECRET_KEY."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import Any, Callable

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from ..domain.responses import LINK_VALIDITY, LinkExpired, LinkInvalid, LinkTarget

SALT = "werkplaats.scheduling.match-response.v1"
RESPONSES_PATH = "/responses/"


class _ClockedSigner(TimestampSigner):
    def __init__(self, *args: Any, clock: Callable[[], float] = time.time, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock())


class ResponseLinks:
    def __init__(self, secret_key: str, base_url: str, clock: Callable[[], float] = time.time) -> None:
        if len(secret_key) < 32:
            raise ValueError("WERKPLAATS_SECRET_KEY must be set to at least 32 characters")
        self.base_url = base_url.rstrip("/")
        self._clock = clock
        self._serializer = URLSafeTimedSerializer(secret_key, salt=SALT, signer=_ClockedSigner,
                                                  signer_kwargs={"clock": clock, "digest_method": hashlib.sha256})

    def issue(self, notice_id: str, match_id: str) -> str:
        return str(self._serializer.dumps([notice_id, match_id]))

    def url(self, token: str) -> str:
        return f"{self.base_url}{RESPONSES_PATH}{token}"

    def expires_at(self) -> datetime:
        """When a link issued now stops working."""
        return datetime.fromtimestamp(int(self._clock()), UTC) + LINK_VALIDITY

    def expires_at_of(self, token: str) -> datetime:
        """When a valid link stops working."""
        _, issued = self._serializer.loads(token, return_timestamp=True)
        expires: datetime = issued.astimezone(UTC) + LINK_VALIDITY
        return expires

    def read(self, token: str) -> LinkTarget:
        try:
            data = self._serializer.loads(token, max_age=int(LINK_VALIDITY.total_seconds()))
        except SignatureExpired as exc:
            expired = _target(exc.payload, self._serializer)
            raise LinkExpired(expired.notice_id, expired.match_id) from None
        except BadSignature:
            raise LinkInvalid("link not valid") from None
        return _target(data)


def _target(data: Any, serializer: URLSafeTimedSerializer | None = None) -> LinkTarget:
    if serializer is not None:  # SignatureExpired carries the still-encoded payload
        try:
            data = serializer.load_payload(data)
        except BadSignature:
            raise LinkInvalid("link not valid") from None
    if (not isinstance(data, list) or len(data) != 2
            or not all(isinstance(x, str) and 0 < len(x) <= 64 for x in data)):
        raise LinkInvalid("link not valid")
    return LinkTarget(notice_id=data[0], match_id=data[1])
