"""Scheduling's notice sender in its own process, for the crash-between-hand-off-and-record test: sends the
pending notices once (WERKPLAATS_DATABASE_URL, WERKPLAATS_SMTP_PORT, WERKPLAATS_SECRET_KEY) and exits."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scheduling.adapters.links import ResponseLinks
from scheduling.adapters.mailer import SmtpMailer
from scheduling.service_layer import services
from werkplaats_shared.config import Settings
from werkplaats_shared.db import make_engine, make_session_factory

settings = Settings.from_env("scheduling")
engine = make_engine(settings.database_url)
services.send_pending(make_session_factory(engine), SmtpMailer.from_settings(settings),
                      ResponseLinks(settings.secret_key, settings.public_url))
engine.dispose()
