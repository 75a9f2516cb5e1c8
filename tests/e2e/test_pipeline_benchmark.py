"""The pipeline benchmark's tiny mode completes, and its figures agree with what the services did: every
notice expected is one mail in the SMTP sink's Maildir, and every match published is walked once."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from benchmarks import pipeline

STAGES = ("organisations", "keys known", "workspace", "firms", "institutions", "capacity", "assignments", "teams",
          "batches", "runs", "notices")


def test_a_tiny_round_goes_from_the_first_organisation_to_the_last_mail(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = pipeline.main(["--teams", "200", "--clients", "4", "--data-dir", str(tmp_path), "--time-limit", "60",
                          "--timeout", "120"])
    out = capsys.readouterr().out
    assert code == 0, out
    table = {line.split()[0] if not line.startswith("keys known") else "keys known": line
             for line in out.splitlines() if re.match(r"^[a-z ]{3,14} +[0-9.]+ +[0-9,]+ ", line)}
    assert set(STAGES) <= set(table), out
    figures = re.search(r"matches published ([0-9,]+); notices expected ([0-9,]+), mails delivered ([0-9,]+)", out)
    assert figures is not None, out
    published, expected, delivered = (int(x.replace(",", "")) for x in figures.groups())
    mails = len(os.listdir(tmp_path / "mail" / "new"))  # read here, not from the benchmark
    assert published > 0 and expected > 0
    assert mails == expected == delivered
    walked = re.search(r"walking GET /matches: all ([0-9,]+)", out)
    assert walked is not None and int(walked.group(1).replace(",", "")) == published
    served = re.search(r"served share through the services: ([0-9.]+)% \(([0-9,]+) of ([0-9,]+)", out)
    assert served is not None and int(served.group(3).replace(",", "")) == 100
    assert int(served.group(2)) <= published  # an assignment served has at least one match
    assert "in-process national solve of the same instance" in out
