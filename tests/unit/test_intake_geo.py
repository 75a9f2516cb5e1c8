"""The municipality data intake validates against and puts into batch.submitted (werkplaats_shared.geo)."""

from __future__ import annotations

import csv
import io
from collections import Counter
from importlib import resources

import pytest
from werkplaats_shared import geo

# Municipalities per province on 1 January 2025 (CBS, Gemeentelijke indeling op 1 januari 2025).
PER_PROVINCE = {"Groningen": 10, "Fryslân": 18, "Drenthe": 12, "Overijssel": 25, "Flevoland": 6, "Gelderland": 51,
                "Utrecht": 26, "Noord-Holland": 44, "Zuid-Holland": 50, "Zeeland": 13, "Noord-Brabant": 56,
                "Limburg": 31}


def test_the_data_file_holds_every_current_municipality_once() -> None:
    text = resources.files("werkplaats_shared").joinpath("data/municipalities.csv").read_text("utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len({r["code"] for r in rows}) == len({r["name"] for r in rows}) == 342
    assert Counter(r["province"] for r in rows) == PER_PROVINCE
    for r in rows:
        assert 50.7 < float(r["latitude"]) < 53.6 and 3.3 < float(r["longitude"]) < 7.3, r  # the Netherlands
        assert r["centre_source"] in ("q", "m"), r
    assert set(geo.PARTS_OF_COUNTRY) == set(PER_PROVINCE)


@pytest.mark.parametrize(("code", "name", "province"), [
    ("GM0363", "Amsterdam", "Noord-Holland"), ("GM0518", "'s-Gravenhage", "Zuid-Holland"),
    ("GM1992", "Voorne aan Zee", "Zuid-Holland"), ("GM1961", "Vijfheerenlanden", "Utrecht"),
    ("GM0034", "Almere", "Flevoland"), ("GM0080", "Leeuwarden", "Fryslân"),
])
def test_lookup_by_cbs_code(code: str, name: str, province: str) -> None:
    found = geo.municipality(code)
    assert found is not None and (found.name, found.province, found.region) == (name, province, province)


@pytest.mark.parametrize("code", ["GM0003", "GM0457", "GM9999", "gm0363", ""])
def test_former_and_made_up_codes_are_unknown(code: str) -> None:
    assert geo.municipality(code) is None and not geo.is_municipality(code)


def test_distances_are_great_circle_kilometres() -> None:
    def at(code: str) -> geo.Municipality:
        found = geo.municipality(code)
        assert found is not None
        return found

    amsterdam, diemen, groningen, maastricht = at("GM0363"), at("GM0384"), at("GM0014"), at("GM0935")
    assert geo.distance_km(amsterdam, amsterdam) == 0
    assert geo.distance_km(amsterdam, groningen) == pytest.approx(geo.distance_km(groningen, amsterdam))
    assert 5 < geo.distance_km(amsterdam, diemen) < 15  # neighbours
    assert 140 < geo.distance_km(amsterdam, groningen) < 160
    assert 250 < geo.distance_km(groningen, maastricht) < 280  # about the length of the country
    # the haversine formula against a known arc: a quarter of the equator
    equator = geo.Municipality("X", "x", "Utrecht", 0.0, 0.0)
    quarter = geo.Municipality("Y", "y", "Utrecht", 0.0, 90.0)
    assert geo.distance_km(equator, quarter) == pytest.approx(geo.EARTH_RADIUS_KM * 3.141592653589793 / 2)


def test_provinces_belong_to_parts_of_the_country() -> None:
    assert geo.part_of_country("Fryslân") == "Noord-Nederland"
    assert geo.part_of_country("Limburg") == "Zuid-Nederland"
    assert set(geo.PARTS_OF_COUNTRY.values()) == {"Noord-Nederland", "Oost-Nederland", "West-Nederland",
                                                  "Zuid-Nederland"}
