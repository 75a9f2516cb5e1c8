"""The personal-data access log (append-only; see werkplaats_shared.audit), on intake's one metadata."""

from __future__ import annotations

from werkplaats_shared.audit import access_log_table

from .orm import Base

access_log = access_log_table(Base.metadata)
