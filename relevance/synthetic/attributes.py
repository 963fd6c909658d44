"""Attribute kinds of the synthetic catalogue: canonical values and the surface forms they take.

Every attribute value has one canonical text (``"1 TB"``, ``"black"``, ``"4 pack"``), which is what the rules
compare and what the gold reasoning states, and several surface forms: the ways a shopper types it in a query
(``1tb``, ``1 tb``, ``1000gb``) and the ways a seller writes it in an ad (``1 TB``, ``1000 GB``). Equal canonical
values written differently are the unit-variant cases of the hard tier; neighbouring values in ``values``
order are the near misses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class AttrKind:
    """One kind of attribute.

    ``key``: the canonical key (facts, constraints, reasoning). ``ad_keys``: how sellers name it in an ad's
    attributes. ``values``: canonical values in an order where neighbours are near misses. ``query_forms`` and
    ``ad_forms``: surface forms of a canonical value, the first being the plain one. ``suffix``: the query puts it
    after the product noun (``running shoes for men``, ``socks pack of 6``).
    """

    key: str
    ad_keys: tuple[str, ...]
    values: tuple[str, ...]
    query_forms: Callable[[str], list[str]]
    ad_forms: Callable[[str], list[str]]
    suffix: bool = False

    def near(self, value: str, allowed: tuple[str, ...]) -> list[str]:
        """Values of ``allowed`` adjacent to ``value`` in this kind's order (the subtle mismatches)."""
        order = [v for v in self.values if v in allowed]
        i = order.index(value)
        return [order[j] for j in (i - 1, i + 1) if 0 <= j < len(order)]


def _num(x: float) -> str:
    return f"{x:g}"


def _lead(value: str) -> float:
    return float(value.split()[0])


# Storage capacity, canonical "128 GB" or "2 TB" (1 TB = 1000 GB, as drives are sold).
def storage(gb: int) -> str:
    return f"{gb // 1000} TB" if gb >= 1000 and gb % 1000 == 0 else f"{gb} GB"


def _storage_gb(value: str) -> int:
    n, unit = value.split()
    return int(n) * (1000 if unit == "TB" else 1)


def _storage_q(value: str) -> list[str]:
    gb = _storage_gb(value)
    if gb >= 1000:
        t = gb // 1000
        return [f"{t}tb", f"{t} tb", f"{gb}gb", f"{gb} gb"]
    return [f"{gb}gb", f"{gb} gb", f"{gb}g"]


def _storage_a(value: str) -> list[str]:
    gb = _storage_gb(value)
    if gb >= 1000:
        return [f"{gb // 1000} TB", f"{gb // 1000}TB", f"{gb} GB"]
    return [f"{gb} GB", f"{gb}GB"]


def _inch_q(value: str) -> list[str]:
    n = _num(_lead(value))
    return [f"{n} inch", f"{n}in", f'{n}"', f"{n} inches"]


def _inch_a(value: str) -> list[str]:
    n = _num(_lead(value))
    return [f'{n}"', f"{n}-inch", f"{n} in"]


def _ml_q(value: str) -> list[str]:
    ml = int(_lead(value))
    litres = _num(ml / 1000)
    return [f"{ml}ml", f"{ml} ml", f"{litres}l", f"{litres} litre"]


def _ml_a(value: str) -> list[str]:
    ml = int(_lead(value))
    return [f"{ml} ml", f"{_num(ml / 1000)} L", f"{ml}ml"]


def _watt_q(value: str) -> list[str]:
    w = int(_lead(value))
    out = [f"{w}w", f"{w} watt", f"{w} w"]
    if w >= 1000:
        out.append(f"{_num(w / 1000)}kw")
    return out


def _watt_a(value: str) -> list[str]:
    w = int(_lead(value))
    out = [f"{w} W", f"{w}W", f"{w} Watts"]
    if w >= 1000:
        out.append(f"{_num(w / 1000)} kW")
    return out


def _pack_q(value: str) -> list[str]:
    n = int(_lead(value))
    return [f"{n} pack", f"pack of {n}", f"{n}-pack", f"{n} pcs", f"set of {n}"]


def _pack_a(value: str) -> list[str]:
    n = int(_lead(value))
    return [f"Pack of {n}", f"{n}-Pack", f"{n} Count", f"{n} pcs"]


def _mm_q(value: str) -> list[str]:
    mm = int(_lead(value))
    return [f"{mm}mm", f"{mm} mm", f"{_num(mm / 10)}cm", f"{_num(mm / 10)} cm"]


def _mm_a(value: str) -> list[str]:
    mm = int(_lead(value))
    return [f"{mm} mm", f"{mm}mm", f"{_num(mm / 10)} cm"]


def _gram_q(value: str) -> list[str]:
    g = int(_lead(value))
    return [f"{g}g", f"{g} g", f"{g / 28.35:.1f} oz"]


def _gram_a(value: str) -> list[str]:
    g = int(_lead(value))
    return [f"{g} g", f"{g}g", f"{g / 28.35:.1f} oz"]


def _mp_q(value: str) -> list[str]:
    n = int(_lead(value))
    return [f"{n}mp", f"{n} mp", f"{n} megapixel"]


def _mp_a(value: str) -> list[str]:
    n = int(_lead(value))
    return [f"{n} MP", f"{n}MP", f"{n}.0 megapixels"]


def _shoe_q(value: str) -> list[str]:
    n = value.split()[1]
    return [f"size {n}", f"sz {n}", f"{n} size"]


def _shoe_a(value: str) -> list[str]:
    n = value.split()[1]
    return [f"Size {n}", n, f"UK {n}"]


_CLOTHING_WORDS = {
    "XS": ["xs", "extra small", "size xs"],
    "S": ["size s", "small", "size small"],
    "M": ["size m", "medium", "size medium"],
    "L": ["size l", "large", "size large"],
    "XL": ["xl", "extra large", "size xl"],
    "XXL": ["xxl", "2xl", "size xxl"],
}
_CLOTHING_AD = {
    "XS": ["XS", "Extra Small"],
    "S": ["S", "Small"],
    "M": ["M", "Medium"],
    "L": ["L", "Large"],
    "XL": ["XL", "Extra Large"],
    "XXL": ["XXL", "2XL"],
}


def _words(table: dict[str, list[str]]) -> Callable[[str], list[str]]:
    return lambda value: list(table[value])


_COLOUR_Q = {
    "black": ["black"],
    "grey": ["grey", "gray"],
    "silver": ["silver"],
    "white": ["white"],
    "gold": ["gold"],
    "yellow": ["yellow"],
    "pink": ["pink"],
    "red": ["red"],
    "purple": ["purple"],
    "blue": ["blue"],
    "navy": ["navy"],
    "green": ["green"],
}
_COLOUR_A = {
    "black": ["Black", "Jet Black", "Matte Black"],
    "grey": ["Grey", "Gray", "Space Grey"],
    "silver": ["Silver", "Metallic Silver"],
    "white": ["White", "Pure White"],
    "gold": ["Gold", "Champagne Gold"],
    "yellow": ["Yellow", "Lemon Yellow"],
    "pink": ["Pink", "Blush Pink"],
    "red": ["Red", "Crimson Red"],
    "purple": ["Purple", "Lavender Purple"],
    "blue": ["Blue", "Sky Blue"],
    "navy": ["Navy", "Dark Navy"],
    "green": ["Green", "Forest Green"],
}
_MATERIAL_Q = {
    "cotton": ["cotton"],
    "polyester": ["polyester", "poly"],
    "leather": ["leather"],
    "silicone": ["silicone"],
    "plastic": ["plastic"],
    "nylon": ["nylon"],
    "aluminium": ["aluminium", "aluminum"],
    "carbon fibre": ["carbon fibre", "carbon fiber"],
    "stainless steel": ["stainless steel", "steel"],
    "glass": ["glass"],
    "tempered glass": ["tempered glass"],
    "wool": ["wool", "merino"],
    "cork": ["cork"],
    "pvc": ["pvc"],
    "tpe": ["tpe"],
    "metal": ["metal"],
    "wood": ["wood", "wooden"],
    "paper": ["paper"],
    "bamboo": ["bamboo"],
}


def _title_words(table: dict[str, list[str]]) -> Callable[[str], list[str]]:
    return lambda value: [w.title() if len(w) > 3 else w.upper() for w in table[value]]


_GENDER_Q = {
    "men": ["for men", "mens", "men's"],
    "women": ["for women", "womens", "women's", "ladies"],
    "kids": ["for kids", "kids", "childrens"],
}
_GENDER_A = {"men": ["Men's", "Men"], "women": ["Women's", "Women"], "kids": ["Kids'", "Children's"]}
_CONNECT_Q = {"wireless": ["wireless", "cordless"], "wired": ["wired", "corded", "usb wired"]}
_CONNECT_A = {"wireless": ["Wireless", "2.4 GHz Wireless"], "wired": ["Wired", "USB Wired"]}
_DISPLAY_Q = {"1080p": ["1080p", "full hd", "fhd"], "4K": ["4k", "uhd", "4k uhd"], "8K": ["8k", "8k uhd"]}
_DISPLAY_A = {"1080p": ["Full HD 1080p", "1080p"], "4K": ["4K UHD", "Ultra HD 4K"], "8K": ["8K", "8K Ultra HD"]}
_LIGHT_Q = {
    "warm white": ["warm white", "2700k"],
    "cool white": ["cool white", "4000k"],
    "daylight": ["daylight", "6500k"],
}
_LIGHT_A = {
    "warm white": ["Warm White 2700K", "2700K"],
    "cool white": ["Cool White 4000K", "4000K"],
    "daylight": ["Daylight 6500K", "6500K"],
}


KINDS: dict[str, AttrKind] = {
    k.key: k
    for k in (
        AttrKind(
            "colour",
            ("Colour", "Color"),
            tuple(_COLOUR_Q),
            _words(_COLOUR_Q),
            _words(_COLOUR_A),
        ),
        AttrKind(
            "capacity",
            ("Capacity", "Storage", "Storage Capacity"),
            tuple(storage(g) for g in (32, 64, 128, 256, 512, 1000, 2000, 4000, 5000)),
            _storage_q,
            _storage_a,
        ),
        AttrKind(
            "screen size",
            ("Screen Size", "Display Size", "Fits Screen"),
            tuple(f"{_num(x)} inch" for x in (6.1, 6.4, 6.7, 6.9, 13.3, 14, 15.6, 17.3, 32, 43, 50, 55, 65, 75)),
            _inch_q,
            _inch_a,
        ),
        AttrKind(
            "volume",
            ("Volume", "Capacity"),
            tuple(f"{v} ml" for v in (350, 500, 750, 1000, 1250, 1500, 1800)),
            _ml_q,
            _ml_a,
        ),
        AttrKind(
            "power",
            ("Power", "Wattage"),
            tuple(f"{w} W" for w in (18, 20, 25, 30, 45, 65, 300, 600, 1000, 1200, 1500)),
            _watt_q,
            _watt_a,
        ),
        AttrKind(
            "pack size",
            ("Pack Size", "Quantity", "Count"),
            tuple(f"{n} pack" for n in (1, 2, 3, 4, 6, 8, 12, 24, 40, 100, 200)),
            _pack_q,
            _pack_a,
            suffix=True,
        ),
        AttrKind("thickness", ("Thickness",), tuple(f"{n} mm" for n in (3, 4, 6, 8, 10)), _mm_q, _mm_a),
        AttrKind(
            "weight",
            ("Weight", "Unstrung Weight"),
            tuple(f"{g} g" for g in (255, 270, 285, 300, 315)),
            _gram_q,
            _gram_a,
        ),
        AttrKind(
            "resolution",
            ("Resolution", "Sensor Resolution"),
            tuple(f"{n} MP" for n in (20, 24, 33, 45, 61)),
            _mp_q,
            _mp_a,
        ),
        AttrKind(
            "shoe size",
            ("Size", "Shoe Size"),
            tuple(f"size {n}" for n in ("6", "6.5", "7", "7.5", "8", "8.5", "9", "9.5", "10", "10.5", "11", "12")),
            _shoe_q,
            _shoe_a,
            suffix=True,
        ),
        AttrKind("size", ("Size",), tuple(_CLOTHING_WORDS), _words(_CLOTHING_WORDS), _words(_CLOTHING_AD), suffix=True),
        AttrKind("material", ("Material",), tuple(_MATERIAL_Q), _words(_MATERIAL_Q), _title_words(_MATERIAL_Q)),
        AttrKind(
            "gender", ("Gender", "Department"), tuple(_GENDER_Q), _words(_GENDER_Q), _words(_GENDER_A), suffix=True
        ),
        AttrKind(
            "connectivity", ("Connectivity", "Connection"), tuple(_CONNECT_Q), _words(_CONNECT_Q), _words(_CONNECT_A)
        ),
        AttrKind("display", ("Display", "Resolution"), tuple(_DISPLAY_Q), _words(_DISPLAY_Q), _words(_DISPLAY_A)),
        AttrKind(
            "light colour", ("Light Colour", "Colour Temperature"), tuple(_LIGHT_Q), _words(_LIGHT_Q), _words(_LIGHT_A)
        ),
    )
}
