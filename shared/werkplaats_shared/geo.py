"""Dutch municipalities (CBS codes, names, provinces, centres) and distances between them.

The data file ``data/municipalities.csv`` is read once, on first use; its sources are in
``data/README.md``.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

EARTH_RADIUS_KM = 6371.0088  # mean radius (IUGG)

# CBS "landsdelen": the four parts of the country each province belongs to.
PARTS_OF_COUNTRY: dict[str, str] = {
    "Groningen": "Noord-Nederland", "Fryslân": "Noord-Nederland", "Drenthe": "Noord-Nederland",
    "Overijssel": "Oost-Nederland", "Flevoland": "Oost-Nederland", "Gelderland": "Oost-Nederland",
    "Utrecht": "West-Nederland", "Noord-Holland": "West-Nederland", "Zuid-Holland": "West-Nederland",
    "Zeeland": "West-Nederland", "Noord-Brabant": "Zuid-Nederland", "Limburg": "Zuid-Nederland",
}


@dataclass(frozen=True)
class Municipality:
    code: str  # CBS code, e.g. GM0363
    name: str
    province: str
    latitude: float
    longitude: float

    @property
    def region(self) -> str:
        """The region matching reports and fairness floors use: the province."""
        return self.province


@lru_cache(maxsize=1)
def municipalities() -> dict[str, Municipality]:
    text = resources.files("werkplaats_shared").joinpath("data/municipalities.csv").read_text("utf-8")
    return {row["code"]: Municipality(row["code"], row["name"], row["province"], float(row["latitude"]),
                                      float(row["longitude"]))
            for row in csv.DictReader(io.StringIO(text))}


def municipality(code: str) -> Municipality | None:
    """The municipality with this CBS code, or None when there is none (any more)."""
    return municipalities().get(code)


def is_municipality(code: str) -> bool:
    return code in municipalities()


def part_of_country(province: str) -> str:
    return PARTS_OF_COUNTRY[province]


def distance_km(a: Municipality, b: Municipality) -> float:
    """Great-circle (haversine) distance between the two municipalities' centres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a.latitude, a.longitude, b.latitude, b.longitude))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))
