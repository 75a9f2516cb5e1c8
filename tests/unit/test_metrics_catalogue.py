"""docs/metrics.md is the catalogue of the metrics: it lists exactly those the services register (name, type
and labels), so a dashboard or alert rule written from it finds what it names."""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase
from werkplaats_shared import metrics
from werkplaats_shared.db import messaging_tables

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")

Entry = tuple[str, str, tuple[str, ...]]


def catalogued() -> set[Entry]:
    table = re.search(r"<!-- metrics:start -->\n(.*?)<!-- metrics:end -->", CATALOGUE, re.S)
    assert table, "docs/metrics.md lacks its table"
    rows = re.findall(r"^\| `([a-z_]+)` \| (\w+) \| ([a-z_, ]*) \|", table.group(1), re.M)
    return {(name, kind, tuple(label.strip() for label in labels.split(",") if label.strip()))
            for name, kind, labels in rows}


def registered(tmp: Path) -> set[Entry]:
    wrappers = {m._name: m for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)}
    found: set[Entry] = set()
    for family in REGISTRY.collect():
        if not family.name.startswith("werkplaats_"):
            continue
        name = family.name + ("_total" if family.type == "counter" else "")
        found.add((name, family.type, tuple(wrappers[family.name]._labelnames)))
    metadata = sa.MetaData()
    outbox, _, _ = messaging_tables(metadata)
    engine = sa.create_engine(f"sqlite:///{tmp}/catalogue.sqlite3")  # a file: SQLAlchemy pools it (QueuePool)
    work = sa.Table("runs", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("status", sa.String),
                    sa.Column("lease_until", sa.DateTime(timezone=True)))
    metadata.create_all(engine)
    for collector in (metrics.OutboxCollector("intake", engine, outbox), metrics.PoolCollector("intake", engine),
                      metrics.WorkCollector("matching", engine, metrics.LeasedWork(work, kinds=("run",)))):
        for family in collector.collect():
            found.add((family.name, family.type, tuple(family.samples[0].labels)))
    engine.dispose()
    # the queue depths need a broker (tests/integration/test_metrics_scraped.py reads them): their declaration
    for spec in (metrics.QUEUE_MESSAGES, metrics.DEAD_LETTER_QUEUE_MESSAGES):
        found.add((spec.name, "gauge", spec.labels))
    return found


def test_the_catalogue_lists_exactly_the_registered_metrics(tmp_path: Path) -> None:
    listed, served = catalogued(), registered(tmp_path)
    assert len(listed) == 18
    assert listed == served, f"only listed: {sorted(listed - served)}; only registered: {sorted(served - listed)}"


def test_no_metric_is_listed_twice() -> None:
    names = re.findall(r"^\| `([a-z_]+)` \|", CATALOGUE, re.M)
    assert len(names) == len(set(names))
