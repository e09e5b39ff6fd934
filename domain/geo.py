"""Where a check-in was sent from: distances, geofences and offline reverse geocoding."""

# Reverse geocoding is nearest-neighbour over shipped points (no network, no polygons):
# GeoNames places with 1000+ inhabitants decide the country (and name places abroad), and for
# China the seats of the county-level divisions decide province, prefecture-level city and
# district. Near a border between two divisions the nearer seat wins, so a point there can be
# named after its neighbour. A point farther than MAX_DISTANCE_KM from every known place (open
# ocean, Antarctica, the emptiest deserts) resolves to None; a point at sea nearer than that
# gets the nearest country's place. Data: domain/data/places.json.gz, built by
# domain/data/build_places.py (GeoNames, CC BY 4.0; see domain/data/README.md).

from __future__ import annotations

import base64
import gzip
import json
import math
import sys
import threading
from array import array
from bisect import bisect_left
from dataclasses import dataclass
from importlib import resources
from typing import Any

EARTH_RADIUS_M = 6_371_008.8
MAX_DISTANCE_KM = 300.0
DATA_FORMAT = 2

_FIRST_RADIUS_M = 10_000.0

# Hong Kong, Macao and Taiwan: (province, city) in Chinese and in English.
_REGIONS = {
    "HK": (("香港特别行政区", "香港"), ("Hong Kong SAR", "Hong Kong")),
    "MO": (("澳门特别行政区", "澳门"), ("Macao SAR", "Macao")),
    "TW": (("台湾省", ""), ("Taiwan", "")),
}


def validate_coordinates(lat: float, lon: float) -> None:
    """Rejects what no GPS can send, so bad input fails loudly instead of geocoding nonsense."""
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise ValueError(f"coordinates must be finite numbers, got ({lat}, {lon})")
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"latitude must be within [-90, 90], got {lat}")
    if not -180.0 <= lon <= 180.0:
        raise ValueError(f"longitude must be within [-180, 180], got {lon}")


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres on a spherical Earth (error < 0.5 %, fine for fences)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))


@dataclass(frozen=True)
class Geofence:
    """A circle a check-in must be sent from; the boundary itself counts as inside."""

    lat: float
    lon: float
    radius_m: float

    def __post_init__(self) -> None:
        validate_coordinates(self.lat, self.lon)
        if not (math.isfinite(self.radius_m) and self.radius_m > 0):
            raise ValueError(f"radius_m must be a positive number, got {self.radius_m}")

    def distance_m(self, lat: float, lon: float) -> float:
        """How far a point is from the centre, for telling a user how far off they were."""
        validate_coordinates(lat, lon)
        return haversine_m(self.lat, self.lon, lat, lon)

    def contains(self, lat: float, lon: float) -> bool:
        """Whether a point is within the radius of the centre."""
        return self.distance_m(lat, lon) <= self.radius_m


@dataclass(frozen=True)
class Place:
    """Names of where a point lies, in one language; empty strings where unknown."""

    country_code: str
    country: str
    province: str
    city: str
    district: str = ""


class _GridIndex:
    """Nearest point on the sphere; points come sorted by grid cell, so a cell is a slice."""

    def __init__(self, lat_e4: array[int], lon_e4: array[int], cell_e4: int) -> None:
        rows, cols = 1_800_000 // cell_e4, 3_600_000 // cell_e4
        if rows * cell_e4 != 1_800_000 or cols * cell_e4 != 3_600_000:
            raise ValueError(f"grid cell of {cell_e4} does not tile the sphere")
        self._cell_deg = cell_e4 / 1e4
        self._rows, self._cols = rows, cols
        scale = math.pi / 180e4
        self._lat = array("d", [v * scale for v in lat_e4])
        self._lon = array("d", [v * scale for v in lon_e4])
        self._cos = array("d", [math.cos(v) for v in self._lat])
        # keys[i] is a non-empty cell, its points are starts[i]:starts[i + 1].
        self._keys: array[int] = array("q")
        self._starts: array[int] = array("l")
        last = -1
        for i, (lat, lon) in enumerate(zip(lat_e4, lon_e4, strict=True)):
            row = min(rows - 1, max(0, (lat + 900_000) // cell_e4))
            key = row * cols + ((lon + 1_800_000) // cell_e4) % cols
            if key != last:
                if key < last:
                    raise ValueError("places data is not sorted by grid cell")
                self._keys.append(key)
                self._starts.append(i)
                last = key
        self._starts.append(len(lat_e4))

    def nearest(self, lat: float, lon: float, max_m: float) -> tuple[int, float] | None:
        """Index of and distance to the nearest point within max_m metres, else None."""
        radius = min(_FIRST_RADIUS_M, max_m)
        while True:
            found = self._best_in_box(lat, lon, radius)
            if found is not None and found[1] <= radius:
                return found
            if radius >= max_m:
                return None
            radius = min(radius * 4, max_m)

    def _best_in_box(self, lat: float, lon: float, radius_m: float) -> tuple[int, float] | None:
        """Nearest point in the cells covering every point within radius_m (and some beyond)."""
        cell, rows, cols = self._cell_deg, self._rows, self._cols
        ang = radius_m / EARTH_RADIUS_M
        ang_deg = math.degrees(ang)
        lat_lo, lat_hi = lat - ang_deg, lat + ang_deg
        # Column spans within [0, cols); a span crossing ±180° is split in two.
        spans = [(0, cols - 1)]
        cos_lat = math.cos(math.radians(lat))
        if lat_lo > -90 and lat_hi < 90 and math.sin(ang) < cos_lat:
            dlon = math.degrees(math.asin(math.sin(ang) / cos_lat))
            first = math.floor((lon - dlon + 180) / cell)
            last = math.floor((lon + dlon + 180) / cell)
            if last - first + 1 < cols:
                first, last = first % cols, last % cols
                spans = [(first, last)] if first <= last else [(first, cols - 1), (0, last)]
        p1, l1, c1 = math.radians(lat), math.radians(lon), cos_lat
        best_k, best_a = -1, 2.0
        lat_r, lon_r, cos_r, keys, starts = (
            self._lat,
            self._lon,
            self._cos,
            self._keys,
            self._starts,
        )
        n_keys, sin = len(keys), math.sin
        row_lo = max(0, math.floor((lat_lo + 90) / cell))
        row_hi = min(rows - 1, math.floor((lat_hi + 90) / cell))
        for row in range(row_lo, row_hi + 1):
            for first, last in spans:
                hi_key = row * cols + last
                i = bisect_left(keys, row * cols + first)
                while i < n_keys and keys[i] <= hi_key:
                    for k in range(starts[i], starts[i + 1]):
                        sp = sin((lat_r[k] - p1) / 2)
                        sl = sin((lon_r[k] - l1) / 2)
                        a = sp * sp + c1 * cos_r[k] * sl * sl
                        if a < best_a:
                            best_k, best_a = k, a
                    i += 1
        if best_k < 0:
            return None
        return best_k, 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, best_a)))


def _unpack(typecode: str, text: str) -> array[int]:
    """A little-endian integer array from the base64 text the generator wrote."""
    arr = array(typecode, base64.b64decode(text))
    if sys.byteorder == "big":  # pragma: no cover - no big-endian CI
        arr.byteswap()
    return arr


class PlaceResolver:
    """Offline reverse geocoder; loads its table on first use (a few tenths of a second), once."""

    def __init__(self, raw: bytes | None = None, max_distance_km: float = MAX_DISTANCE_KM) -> None:
        self._raw = raw
        self._max_m = max_distance_km * 1000
        self._lock = threading.Lock()
        self._loaded = False

    def load(self) -> None:
        """Reads and indexes the table now, e.g. in a thread at start-up, not in a handler."""
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            raw = self._raw
            if raw is None:
                raw = resources.files("domain").joinpath("data/places.json.gz").read_bytes()
            self._build(json.loads(gzip.decompress(raw)))
            self._raw = None
            self._loaded = True

    def _build(self, data: dict[str, Any]) -> None:
        if data.get("format") != DATA_FORMAT:
            raise ValueError(f"places data format {data.get('format')!r}, want {DATA_FORMAT}")
        world, cn, cell_e4 = data["world"], data["cn"], int(data["cell_e4"])
        self._countries: dict[str, list[str]] = data["countries"]
        self._admin1: list[str] = data["admin1"]
        self._admin1_zh: dict[str, str] = data["admin1_zh"]
        self._cc_codes: list[str] = world["cc_codes"]
        self._w_cc = _unpack("H", world["cc"])
        self._w_admin1 = _unpack("I", world["admin1"])
        self._w_city: str = world["city"]
        self._w_city_end = _unpack("I", world["city_end"])
        self._world_index = _GridIndex(
            _unpack("i", world["lat"]), _unpack("i", world["lon"]), cell_e4
        )
        self._cn_names: dict[str, list[str]] = cn["names"]
        self._cn_codes: list[str] = cn["code"]
        self._cn_index = _GridIndex(_unpack("i", cn["lat"]), _unpack("i", cn["lon"]), cell_e4)

    def resolve(self, lat: float, lon: float, lang: str = "zh") -> Place | None:
        """The place a point lies in, named in Chinese for lang "zh*" and in English otherwise."""
        validate_coordinates(lat, lon)
        self.load()
        zh = lang.lower().startswith("zh")
        hit = self._world_index.nearest(lat, lon, self._max_m)
        if hit is None:
            return None
        k = hit[0]
        cc = self._cc_codes[self._w_cc[k]]
        country = self._countries.get(cc, [cc, cc])[0 if zh else 1]  # name pairs: [zh, en]
        if cc == "CN":
            return self._chinese(lat, lon, country, zh)
        admin1 = self._admin1[self._w_admin1[k]]
        city = self._w_city[self._w_city_end[k - 1] if k else 0 : self._w_city_end[k]]
        region = _REGIONS.get(cc)
        if region is None:
            return Place(cc, country, admin1, city)
        province, region_city = region[0 if zh else 1]
        if cc == "TW":
            return Place(cc, country, province, city)
        district = self._admin1_zh.get(admin1, admin1) if zh else admin1
        return Place(cc, country, province, region_city, district)

    def _chinese(self, lat: float, lon: float, country: str, zh: bool) -> Place:
        """Province, prefecture-level city and district from the nearest division seat."""
        hit = self._cn_index.nearest(lat, lon, math.pi * EARTH_RADIUS_M)
        if hit is None:  # pragma: no cover - the index is never empty
            return Place("CN", country, "", "")
        code = self._cn_codes[hit[0]]
        lang = 0 if zh else 1  # name pairs: [zh, en]

        def name(c: str) -> str:
            entry = self._cn_names.get(c)
            return entry[lang] if entry else ""

        province = name(code[:2] + "0000")
        if code.endswith("00"):  # a prefecture without districts, such as 东莞市
            return Place("CN", country, province, name(code))
        prefecture = name(code[:4] + "00")
        if not prefecture:  # a county-level city under the province, such as 仙桃市
            return Place("CN", country, province, name(code))
        return Place("CN", country, province, prefecture, name(code))


DEFAULT_RESOLVER = PlaceResolver()


def resolve_place(lat: float, lon: float, lang: str = "zh") -> Place | None:
    """Names of the place at a point via the shared resolver; None far out at sea."""
    return DEFAULT_RESOLVER.resolve(lat, lon, lang)
