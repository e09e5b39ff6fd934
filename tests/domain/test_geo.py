"""Distances, geofences and offline reverse geocoding."""

from __future__ import annotations

import base64
import gzip
import json
import math
import random
import sys
import threading
import time
from array import array

import pytest

from domain.geo import (
    DEFAULT_RESOLVER,
    EARTH_RADIUS_M,
    Geofence,
    Place,
    PlaceResolver,
    _GridIndex,
    haversine_m,
    resolve_place,
    validate_coordinates,
)

TIANANMEN = (39.9087, 116.3975)
PEOPLES_SQUARE = (31.2304, 121.4737)
M_PER_DEG_LAT = math.pi * EARTH_RADIUS_M / 180


def north(lat: float, lon: float, metres: float) -> tuple[float, float]:
    """The point metres due north."""
    return lat + metres / M_PER_DEG_LAT, lon


def east(lat: float, lon: float, metres: float) -> tuple[float, float]:
    """The point metres due east (small distances)."""
    return lat, lon + metres / (M_PER_DEG_LAT * math.cos(math.radians(lat)))


# --- coordinates and distances -------------------------------------------------------------


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(90.5, 0), (-91, 0), (0, 180.01), (0, -181), (math.nan, 0), (0, math.inf), (-math.inf, 0)],
)
def test_out_of_range_coordinates_are_rejected(lat: float, lon: float) -> None:
    with pytest.raises(ValueError):
        validate_coordinates(lat, lon)
    with pytest.raises(ValueError):
        resolve_place(lat, lon)
    with pytest.raises(ValueError):
        Geofence(lat, lon, 100)


@pytest.mark.parametrize(("lat", "lon"), [(90, 180), (-90, -180), (0, 0), TIANANMEN])
def test_edge_coordinates_are_accepted(lat: float, lon: float) -> None:
    validate_coordinates(lat, lon)


def test_haversine_beijing_shanghai() -> None:
    d = haversine_m(*TIANANMEN, *PEOPLES_SQUARE)
    assert d == pytest.approx(1_067_000, rel=0.01)
    assert haversine_m(*PEOPLES_SQUARE, *TIANANMEN) == pytest.approx(d)


def test_haversine_basics() -> None:
    assert haversine_m(*TIANANMEN, *TIANANMEN) == 0
    assert haversine_m(0, 0, 0, 180) == pytest.approx(math.pi * EARTH_RADIUS_M)
    assert haversine_m(0, 179.5, 0, -179.5) == pytest.approx(M_PER_DEG_LAT, rel=1e-9)
    assert haversine_m(*north(*TIANANMEN, 400), *TIANANMEN) == pytest.approx(400, rel=1e-6)


# --- geofence ------------------------------------------------------------------------------


@pytest.mark.parametrize("move", [north, east])
def test_geofence_boundary(move: object) -> None:
    fence = Geofence(*TIANANMEN, radius_m=500)
    assert callable(move)
    assert fence.contains(*TIANANMEN)
    assert fence.contains(*move(*TIANANMEN, 400))
    assert not fence.contains(*move(*TIANANMEN, 600))
    assert fence.contains(*move(*TIANANMEN, -400))
    assert not fence.contains(*move(*TIANANMEN, -600))
    assert fence.distance_m(*move(*TIANANMEN, 600)) == pytest.approx(600, rel=1e-3)


@pytest.mark.parametrize("radius", [0, -5, math.nan, math.inf])
def test_geofence_needs_a_positive_radius(radius: float) -> None:
    with pytest.raises(ValueError):
        Geofence(*TIANANMEN, radius_m=radius)


def test_geofence_rejects_bad_points() -> None:
    with pytest.raises(ValueError):
        Geofence(*TIANANMEN, radius_m=500).contains(100, 0)


# --- reverse geocoding with the shipped data ------------------------------------------------


@pytest.mark.parametrize(
    ("point", "zh", "en"),
    [
        (TIANANMEN, ("CN", "中国", "北京市", "北京市"), ("CN", "China", "Beijing", "Beijing")),
        (
            (22.5431, 114.0579),
            ("CN", "中国", "广东省", "深圳市"),
            ("CN", "China", "Guangdong", "Shenzhen"),
        ),
        (
            PEOPLES_SQUARE,
            ("CN", "中国", "上海市", "上海市"),
            ("CN", "China", "Shanghai", "Shanghai"),
        ),
        (
            (30.5728, 104.0668),
            ("CN", "中国", "四川省", "成都市"),
            ("CN", "China", "Sichuan", "Chengdu"),
        ),
        (
            (43.8256, 87.6168),
            ("CN", "中国", "新疆维吾尔自治区", "乌鲁木齐市"),
            ("CN", "China", "Xinjiang", "Urumqi"),
        ),
        (
            (29.6500, 91.1300),
            ("CN", "中国", "西藏自治区", "拉萨市"),
            ("CN", "China", "Xizang", "Lhasa"),
        ),
        (
            (45.7600, 126.6300),
            ("CN", "中国", "黑龙江省", "哈尔滨市"),
            ("CN", "China", "Heilongjiang", "Harbin"),
        ),
        (
            (23.0207, 113.7518),
            ("CN", "中国", "广东省", "东莞市"),
            ("CN", "China", "Guangdong", "Dongguan"),
        ),
        (
            (22.2793, 114.1628),
            ("HK", "中国香港", "香港特别行政区", "香港"),
            ("HK", "Hong Kong, China", "Hong Kong SAR", "Hong Kong"),
        ),
        (
            (22.1987, 113.5439),
            ("MO", "中国澳门", "澳门特别行政区", "澳门"),
            ("MO", "Macao, China", "Macao SAR", "Macao"),
        ),
        (
            (51.5074, -0.1278),
            ("GB", "英国", "England", "London"),
            ("GB", "United Kingdom", "England", "London"),
        ),
        ((35.6762, 139.6503), ("JP", "日本", "Tokyo", None), ("JP", "Japan", "Tokyo", None)),
        (
            (40.7128, -74.0060),
            ("US", "美国", "New York", "New York City"),
            ("US", "United States", "New York", "New York City"),
        ),
    ],
)
def test_resolve_place(
    point: tuple[float, float],
    zh: tuple[str, str, str, str | None],
    en: tuple[str, str, str, str | None],
) -> None:
    for lang, want in (("zh", zh), ("en", en)):
        place = resolve_place(*point, lang=lang)
        assert place is not None
        got = (place.country_code, place.country, place.province, place.city)
        if want[3] is None:  # only the country and province are stable there
            assert got[:3] == want[:3], lang
        else:
            assert got == want, lang


def test_districts_are_named_too() -> None:
    assert resolve_place(39.9593, 116.2983) == Place("CN", "中国", "北京市", "北京市", "海淀区")
    en = resolve_place(39.9593, 116.2983, "en")
    assert en == Place("CN", "China", "Beijing", "Beijing", "Haidian District")
    hk = resolve_place(22.3700, 114.1130)
    assert hk is not None and hk.district == "荃湾区"


def test_language_tags() -> None:
    assert resolve_place(*TIANANMEN) == resolve_place(*TIANANMEN, lang="zh-Hans-CN")
    assert resolve_place(*TIANANMEN, lang="ZH_tw") == resolve_place(*TIANANMEN, lang="zh")
    assert resolve_place(*TIANANMEN, lang="ru") == resolve_place(*TIANANMEN, lang="en")


def test_county_level_city_under_a_province() -> None:
    place = resolve_place(30.3620, 113.4540)  # 仙桃, governed by Hubei directly
    assert place is not None
    assert (place.province, place.city, place.district) == ("湖北省", "仙桃市", "")


def test_coastal_sea_gets_the_nearest_country() -> None:
    place = resolve_place(35.8, 120.8)  # the Yellow Sea, some 60 km off Qingdao
    assert place is not None
    assert (place.country_code, place.province, place.city) == ("CN", "山东省", "青岛市")


@pytest.mark.parametrize(
    ("lat", "lon"), [(0.0, -140.0), (-40.0, -120.0), (-80.0, 0.0), (90.0, 0.0), (-90.0, 180.0)]
)
def test_far_from_anything_is_none(lat: float, lon: float) -> None:
    assert resolve_place(lat, lon) is None


def test_dateline_is_searched_on_both_sides() -> None:
    fiji = resolve_place(-16.8, 179.99)
    assert fiji is not None and fiji.country_code == "FJ"
    chukotka = resolve_place(65.7, -179.9)
    assert chukotka is not None and chukotka.country_code == "RU"


def test_lookups_are_fast_after_loading() -> None:
    DEFAULT_RESOLVER.load()
    rng = random.Random(7)
    points = [(rng.uniform(18, 50), rng.uniform(75, 130)) for _ in range(500)]
    start = time.perf_counter()
    for lat, lon in points:
        resolve_place(lat, lon)
    per_lookup = (time.perf_counter() - start) / len(points)
    assert per_lookup < 0.005  # typically ~0.03 ms; the bound only catches a broken index


# --- the index and the loader, on small made-up data ---------------------------------------


def _cell_key(lat_e4: int, lon_e4: int, cell_e4: int = 2500) -> int:
    rows, cols = 1_800_000 // cell_e4, 3_600_000 // cell_e4
    return (
        min(rows - 1, (lat_e4 + 900_000) // cell_e4) * cols
        + ((lon_e4 + 1_800_000) // cell_e4) % cols
    )


def _sorted_points(points: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return sorted(points, key=lambda p: _cell_key(*p))


def test_grid_index_matches_brute_force() -> None:
    rng = random.Random(1)
    raw = [
        (rng.randint(-900_000, 900_000), rng.randint(-1_800_000, 1_799_999)) for _ in range(300)
    ]
    # Crowd the date line and the poles, where the grid wraps and cells shrink.
    raw += [(rng.randint(-600_000, 600_000), rng.choice((-1, 1)) * 1_799_000) for _ in range(50)]
    raw += [(rng.choice((-1, 1)) * rng.randint(880_000, 900_000), 0) for _ in range(20)]
    pts = _sorted_points(raw)
    index = _GridIndex(array("i", [p[0] for p in pts]), array("i", [p[1] for p in pts]), 2500)
    for _ in range(400):
        lat, lon = rng.uniform(-90, 90), rng.uniform(-180, 180)
        dists = [haversine_m(lat, lon, p[0] / 1e4, p[1] / 1e4) for p in pts]
        want = min(dists)
        got = index.nearest(lat, lon, 2_000_000)
        if want > 2_000_000:
            assert got is None
        else:
            assert got is not None
            assert got[1] == pytest.approx(want, abs=1e-3)
            assert dists[got[0]] == pytest.approx(want, abs=1e-3)


def test_grid_index_needs_sorted_points() -> None:
    pts = _sorted_points([(0, 0), (500_000, 500_000)])[::-1]
    with pytest.raises(ValueError, match="sorted"):
        _GridIndex(array("i", [p[0] for p in pts]), array("i", [p[1] for p in pts]), 2500)


def _pack(typecode: str, values: list[int]) -> str:
    arr = array(typecode, values)
    if sys.byteorder == "big":
        arr.byteswap()
    return base64.b64encode(arr.tobytes()).decode("ascii")


def _tiny_table(fmt: int = 2) -> bytes:
    """Two countries and one Chinese county, in the layout build_places.py writes."""
    world = _sorted_points([(399_000, 1_164_000), (515_000, -1_300)])
    cc = [0 if p[0] == 399_000 else 1 for p in world]
    city = ["" if c == 0 else "London" for c in cc]
    data = {
        "format": fmt,
        "cell_e4": 2500,
        "countries": {"CN": ["中国", "China"], "GB": ["英国", "United Kingdom"]},
        "admin1": ["", "England"],
        "admin1_zh": {},
        "world": {
            "lat": _pack("i", [p[0] for p in world]),
            "lon": _pack("i", [p[1] for p in world]),
            "cc_codes": ["CN", "GB"],
            "cc": _pack("H", cc),
            "admin1": _pack("I", [0 if c == 0 else 1 for c in cc]),
            "city": "".join(city),
            "city_end": _pack("I", [len("".join(city[: i + 1])) for i in range(len(city))]),
        },
        "cn": {
            "names": {
                "110000": ["北京市", "Beijing"],
                "110100": ["北京市", "Beijing"],
                "110101": ["东城区", "Dongcheng District"],
            },
            "code": ["110101"],
            "lat": _pack("i", [399_000]),
            "lon": _pack("i", [1_164_000]),
        },
    }
    return gzip.compress(json.dumps(data).encode())


def test_resolver_on_a_tiny_table() -> None:
    resolver = PlaceResolver(_tiny_table(), max_distance_km=100)
    assert resolver.resolve(39.95, 116.45) == Place("CN", "中国", "北京市", "北京市", "东城区")
    assert resolver.resolve(51.5, -0.1, "en") == Place("GB", "United Kingdom", "England", "London")
    assert resolver.resolve(45.0, 50.0) is None  # beyond 100 km of both


def test_resolver_loads_once_and_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    resolver = PlaceResolver(_tiny_table())
    calls: list[int] = []
    build = resolver._build

    def counting(data: dict[str, object]) -> None:
        calls.append(1)
        time.sleep(0.01)
        build(data)

    monkeypatch.setattr(resolver, "_build", counting)
    assert calls == []  # nothing is read before the first look-up
    threads = [threading.Thread(target=resolver.resolve, args=(39.9, 116.4)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    resolver.resolve(51.5, -0.1)
    assert calls == [1]


def test_resolver_rejects_another_format() -> None:
    with pytest.raises(ValueError, match="format"):
        PlaceResolver(_tiny_table(fmt=1)).load()
