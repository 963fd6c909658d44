"""The synthetic product catalogue: categories, their brands, attributes, model numbers and complements.

Everything here is fixed data (model numbers are derived from a fixed string seed), so a benchmark's content
depends only on the generator version and its seed. Brand names are invented; each category has its own list.

Complements are symmetric (a phone case complements a smartphone and the other way round). ``family`` groups
related categories: easy and medium Irrelevant ads come from another family, hard ones may come from the same.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from relevance.synthetic.attributes import KINDS, storage


@dataclass(frozen=True)
class Category:
    """A product category.

    ``noun``: the canonical singular name used in reasoning. ``query_nouns``: how shoppers name it (synonyms;
    the first is the plain one). ``ad_nouns``: how sellers name it in titles. ``path``: the ad's category field.
    ``attributes``: attribute kind -> the values this category uses. ``models``: whether products carry model
    numbers.
    """

    key: str
    noun: str
    family: str
    path: str
    query_nouns: tuple[str, ...]
    ad_nouns: tuple[str, ...]
    brands: tuple[str, ...]
    attributes: dict[str, tuple[str, ...]]
    models: bool = False
    model_numbers: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False)


def _s(*gb: int) -> tuple[str, ...]:
    return tuple(storage(g) for g in gb)


def _inch(*x: float) -> tuple[str, ...]:
    return tuple(f"{v:g} inch" for v in x)


def _unit(unit: str, *x: float | str) -> tuple[str, ...]:
    return tuple(f"{v} {unit}" for v in x)


def _size(*x: str) -> tuple[str, ...]:
    return tuple(f"size {v}" for v in x)


_COLOURS_BASIC = ("black", "white", "silver", "grey")
_COLOURS_ALL = ("black", "grey", "silver", "white", "gold", "yellow", "pink", "red", "purple", "blue", "navy", "green")
_COLOURS_BRIGHT = ("black", "white", "pink", "red", "purple", "blue", "navy", "green", "yellow")

_CATEGORIES: tuple[Category, ...] = (
    Category(
        "smartphone", "smartphone", "mobile", "Electronics > Mobile Phones > Smartphones",
        ("smartphone", "cell phone", "mobile phone", "phone"), ("Smartphone", "Unlocked Smartphone", "Mobile Phone"),
        ("Novia", "Zentek", "Kalyx", "Orbix", "Lumora"),
        {"colour": ("black", "white", "silver", "gold", "blue", "green", "purple"),
         "capacity": _s(64, 128, 256, 512, 1000), "screen size": _inch(6.1, 6.4, 6.7, 6.9)},
        models=True,
    ),
    Category(
        "phone_case", "phone case", "mobile", "Electronics > Mobile Accessories > Cases",
        ("phone case", "phone cover", "case for phone"), ("Phone Case", "Protective Case", "Slim Cover"),
        ("Shellwise", "Armorly", "Guardo", "Tuffwrap"),
        {"colour": _COLOURS_BRIGHT, "material": ("silicone", "leather", "plastic")},
    ),
    Category(
        "screen_protector", "screen protector", "mobile", "Electronics > Mobile Accessories > Screen Protectors",
        ("screen protector", "screen guard", "glass protector"), ("Screen Protector", "Screen Guard"),
        ("Clearshield", "Glasso", "Vistaguard", "Screeno"),
        {"material": ("tempered glass", "plastic"), "pack size": _unit("pack", 1, 2, 3)},
    ),
    Category(
        "phone_charger", "phone charger", "mobile", "Electronics > Mobile Accessories > Chargers",
        ("phone charger", "charger", "usb c charger", "charging adapter"), ("Fast Charger", "USB-C Wall Charger"),
        ("Voltix", "Ampora", "Chargeon", "Pluzo"),
        {"power": _unit("W", 18, 20, 25, 30, 45, 65), "colour": ("black", "white")},
    ),
    Category(
        "laptop", "laptop", "computing", "Electronics > Computers > Laptops",
        ("laptop", "notebook", "laptop computer"), ("Laptop", "Notebook", "Ultrabook"),
        ("Corvex", "Aeronote", "Bytelin", "Quantara", "Lapiro"),
        {"capacity": _s(256, 512, 1000, 2000), "screen size": _inch(13.3, 14, 15.6, 17.3), "colour": _COLOURS_BASIC},
        models=True,
    ),
    Category(
        "laptop_bag", "laptop bag", "computing", "Electronics > Computer Accessories > Laptop Bags",
        ("laptop bag", "laptop case", "notebook bag"), ("Laptop Bag", "Laptop Messenger Bag", "Laptop Sleeve"),
        ("Carrano", "Satchelo", "Packwell", "Urbanhold"),
        {"colour": ("black", "grey", "navy", "blue", "green"), "material": ("nylon", "leather", "polyester"),
         "screen size": _inch(13.3, 14, 15.6, 17.3)},
    ),
    Category(
        "computer_mouse", "computer mouse", "computing", "Electronics > Computer Accessories > Mice",
        ("mouse", "computer mouse", "laptop mouse"), ("Mouse", "Optical Mouse", "Ergonomic Mouse"),
        ("Clikka", "Mousio", "Pointra", "Glidex"),
        {"connectivity": ("wireless", "wired"), "colour": ("black", "white", "grey", "pink")},
        models=True,
    ),
    Category(
        "external_hard_drive", "external hard drive", "computing", "Electronics > Data Storage > External Drives",
        ("external hard drive", "external hdd", "portable hard drive", "external drive"),
        ("Portable External Hard Drive", "External HDD"),
        ("Drivex", "Storaxis", "Diskelo", "Bytevault"),
        {"capacity": _s(1000, 2000, 4000, 5000), "colour": ("black", "silver", "blue", "red")},
        models=True,
    ),
    Category(
        "printer", "printer", "office", "Electronics > Printers > Inkjet Printers",
        ("printer", "inkjet printer", "home printer", "all in one printer"), ("Inkjet Printer", "All-in-One Printer"),
        ("Printaro", "Inkovo", "Pagely", "Copixa"),
        {"connectivity": ("wireless", "wired"), "colour": ("black", "white")},
        models=True,
    ),
    Category(
        "ink_cartridge", "ink cartridge", "office", "Office Supplies > Printer Ink > Ink Cartridges",
        ("ink cartridge", "printer ink", "ink", "ink refill"), ("Ink Cartridge", "Original Ink Cartridge"),
        ("Inkwell", "Tonerra", "Dropix", "Cartrix"),
        {"colour": ("black", "blue", "red", "yellow"), "pack size": _unit("pack", 1, 2, 3, 4)},
        models=True,
    ),
    Category(
        "camera", "camera", "imaging", "Electronics > Cameras > Digital Cameras",
        ("camera", "digital camera", "mirrorless camera"), ("Digital Camera", "Mirrorless Camera"),
        ("Optika", "Lensor", "Shutterra", "Fotex", "Aperix"),
        {"resolution": _unit("MP", 20, 24, 33, 45, 61), "colour": ("black", "silver")},
        models=True,
    ),
    Category(
        "memory_card", "memory card", "imaging", "Electronics > Data Storage > Memory Cards",
        ("memory card", "sd card", "micro sd card", "microsd"), ("microSD Memory Card", "SDXC Memory Card"),
        ("Memora", "Flashpo", "Storix", "Cardino"),
        {"capacity": _s(32, 64, 128, 256, 512, 1000), "pack size": _unit("pack", 1, 2)},
    ),
    Category(
        "tripod", "tripod", "imaging", "Electronics > Camera Accessories > Tripods",
        ("tripod", "camera tripod", "camera stand"), ("Tripod", "Travel Tripod"),
        ("Tristand", "Steadix", "Legra", "Pivota"),
        {"material": ("aluminium", "carbon fibre"), "colour": ("black", "silver", "red")},
    ),
    Category(
        "running_shoes", "running shoe", "sport", "Sports > Footwear > Running Shoes",
        ("running shoes", "running trainers", "jogging shoes", "runners"), ("Running Shoes", "Road Running Trainers"),
        ("Stridex", "Runova", "Pacefield", "Sprintal", "Treadly"),
        {"colour": ("black", "white", "grey", "blue", "red", "pink", "green"), "gender": ("men", "women", "kids"),
         "shoe size": _size("6", "6.5", "7", "7.5", "8", "8.5", "9", "9.5", "10", "10.5", "11", "12")},
    ),
    Category(
        "athletic_socks", "pair of athletic socks", "sport", "Sports > Clothing > Socks",
        ("athletic socks", "running socks", "sports socks", "socks"), ("Athletic Socks", "Cushioned Running Socks"),
        ("Footlo", "Heelix", "Cushra", "Anklo"),
        {"colour": ("black", "white", "grey", "navy"), "pack size": _unit("pack", 3, 6, 12),
         "gender": ("men", "women", "kids"), "material": ("cotton", "wool")},
    ),
    Category(
        "tennis_racket", "tennis racket", "sport", "Sports > Tennis > Rackets",
        ("tennis racket", "tennis racquet", "racket"), ("Tennis Racket", "Graphite Tennis Racquet"),
        ("Raquetta", "Acevo", "Volleon", "Smashby"),
        {"weight": _unit("g", 255, 270, 285, 300, 315), "colour": ("black", "white", "blue", "red", "yellow")},
        models=True,
    ),
    Category(
        "tennis_balls", "can of tennis balls", "sport", "Sports > Tennis > Balls",
        ("tennis balls", "tennis ball", "tennis balls can"), ("Tennis Balls", "Championship Tennis Balls"),
        ("Bouncio", "Courtix", "Fuzzo", "Rallye"),
        {"pack size": _unit("pack", 3, 4, 12, 24), "colour": ("yellow", "white")},
    ),
    Category(
        "yoga_mat", "yoga mat", "sport", "Sports > Fitness > Yoga Mats",
        ("yoga mat", "exercise mat", "fitness mat"), ("Yoga Mat", "Non-Slip Exercise Mat"),
        ("Zenmat", "Asanio", "Flexa", "Groundly"),
        {"thickness": _unit("mm", 3, 4, 6, 8, 10), "colour": _COLOURS_BRIGHT, "material": ("pvc", "tpe", "cork")},
    ),
    Category(
        "water_bottle", "water bottle", "sport", "Sports > Accessories > Water Bottles",
        ("water bottle", "drinking bottle", "sports bottle", "bottle"), ("Water Bottle", "Insulated Water Bottle"),
        ("Hydrelo", "Sipwell", "Aquaro", "Flaskit"),
        {"volume": _unit("ml", 350, 500, 750, 1000, 1500), "colour": _COLOURS_ALL,
         "material": ("stainless steel", "plastic", "glass")},
    ),
    Category(
        "coffee_maker", "coffee maker", "kitchen", "Home > Kitchen Appliances > Coffee Makers",
        ("coffee maker", "coffee machine", "drip coffee maker"), ("Coffee Maker", "Drip Coffee Machine"),
        ("Brewmont", "Caffeo", "Percola", "Drippa"),
        {"volume": _unit("ml", 1000, 1250, 1500, 1800), "colour": ("black", "silver", "white", "red")},
        models=True,
    ),
    Category(
        "coffee_filters", "pack of coffee filters", "kitchen", "Home > Kitchen > Coffee Filters",
        ("coffee filters", "coffee filter papers", "filter paper"), ("Coffee Filters", "Cone Coffee Filter Papers"),
        ("Filtro", "Papera", "Strainly", "Kofil"),
        {"pack size": _unit("pack", 40, 100, 200), "material": ("paper", "bamboo")},
    ),
    Category(
        "blender", "blender", "kitchen", "Home > Kitchen Appliances > Blenders",
        ("blender", "smoothie blender", "countertop blender", "smoothie maker"), ("Blender", "Countertop Blender"),
        ("Blendra", "Whirlix", "Mixova", "Pureo"),
        {"power": _unit("W", 300, 600, 1000, 1200, 1500), "colour": ("black", "silver", "red", "white")},
        models=True,
    ),
    Category(
        "television", "television", "tv", "Electronics > TV & Video > Televisions",
        ("tv", "television", "smart tv", "led tv"), ("Smart TV", "LED Television"),
        ("Vistronic", "Panoview", "Screenia", "Telvox", "Pixelon"),
        {"screen size": _inch(32, 43, 50, 55, 65, 75), "display": ("1080p", "4K", "8K")},
        models=True,
    ),
    Category(
        "tv_wall_mount", "TV wall mount", "tv", "Electronics > TV Accessories > Wall Mounts",
        ("tv wall mount", "tv bracket", "wall mount for tv"), ("TV Wall Mount", "Tilting TV Bracket"),
        ("Mountix", "Bracketo", "Wallfix", "Holdra"),
        {"screen size": _inch(32, 43, 50, 55, 65, 75), "colour": ("black", "silver")},
    ),
    Category(
        "game_console", "game console", "tv", "Electronics > Video Games > Consoles",
        ("game console", "gaming console", "video game console"), ("Game Console", "Gaming Console"),
        ("Playtor", "Gamivo", "Consolix", "Joybox"),
        {"capacity": _s(512, 1000, 2000), "colour": ("black", "white")},
        models=True,
    ),
    Category(
        "game_controller", "game controller", "tv", "Electronics > Video Games > Controllers",
        ("game controller", "gamepad", "controller"), ("Game Controller", "Wireless Gamepad"),
        ("Padcraft", "Thumbex", "Gripply", "Contro"),
        {"connectivity": ("wireless", "wired"), "colour": ("black", "white", "red", "blue", "purple")},
    ),
    Category(
        "electric_toothbrush", "electric toothbrush", "care", "Health > Oral Care > Electric Toothbrushes",
        ("electric toothbrush", "electric tooth brush", "sonic toothbrush"),
        ("Electric Toothbrush", "Sonic Electric Toothbrush"),
        ("Brushio", "Dentara", "Smilex", "Oralon"),
        {"colour": ("black", "white", "pink", "blue")},
        models=True,
    ),
    Category(
        "toothbrush_heads", "pack of toothbrush heads", "care", "Health > Oral Care > Replacement Heads",
        ("toothbrush heads", "replacement brush heads", "brush heads"), ("Replacement Brush Heads", "Toothbrush Heads"),
        ("Headly", "Bristla", "Tufto", "Refilo"),
        {"pack size": _unit("pack", 2, 4, 8), "colour": ("white", "black")},
    ),
    Category(
        "t_shirt", "t-shirt", "apparel", "Clothing > Tops > T-Shirts",
        ("t shirt", "tshirt", "tee", "t-shirt"), ("T-Shirt", "Crew Neck Tee"),
        ("Teeco", "Cottona", "Threadwell", "Basicly", "Wearon"),
        {"colour": _COLOURS_ALL, "size": ("XS", "S", "M", "L", "XL", "XXL"), "material": ("cotton", "polyester"),
         "gender": ("men", "women", "kids")},
    ),
    Category(
        "desk_lamp", "desk lamp", "home", "Home > Lighting > Desk Lamps",
        ("desk lamp", "table lamp", "reading lamp"), ("LED Desk Lamp", "Adjustable Desk Lamp"),
        ("Lumeno", "Glowdesk", "Brightly", "Lampora"),
        {"colour": ("black", "white", "silver", "gold"), "material": ("metal", "wood", "plastic")},
    ),
    Category(
        "light_bulbs", "pack of light bulbs", "home", "Home > Lighting > Light Bulbs",
        ("light bulbs", "led bulbs", "light bulb"), ("LED Light Bulbs", "Light Bulbs"),
        ("Bulbex", "Wattly", "Glowbe", "Ledora"),
        {"pack size": _unit("pack", 2, 4, 6, 12), "light colour": ("warm white", "cool white", "daylight")},
    ),
)  # fmt: skip

_COMPLEMENT_EDGES: tuple[tuple[str, str], ...] = (
    ("smartphone", "phone_case"),
    ("smartphone", "screen_protector"),
    ("smartphone", "phone_charger"),
    ("smartphone", "memory_card"),
    ("laptop", "laptop_bag"),
    ("laptop", "computer_mouse"),
    ("laptop", "external_hard_drive"),
    ("printer", "ink_cartridge"),
    ("camera", "memory_card"),
    ("camera", "tripod"),
    ("running_shoes", "athletic_socks"),
    ("tennis_racket", "tennis_balls"),
    ("coffee_maker", "coffee_filters"),
    ("television", "tv_wall_mount"),
    ("television", "game_console"),
    ("game_console", "game_controller"),
    ("electric_toothbrush", "toothbrush_heads"),
    ("desk_lamp", "light_bulbs"),
)

_LETTERS = "ABCDEFGHJKLMNPRSTVXZ"


def _model_numbers(category: str, brand: str, n: int = 6) -> tuple[str, ...]:
    """A brand's model numbers in a category, e.g. ``NX-450``; fixed by the names alone."""
    rng = random.Random(f"model:{category}:{brand}")
    prefix = brand[0].upper() + rng.choice(_LETTERS)
    out: list[str] = []
    while len(out) < n:
        digits = str(rng.randint(10, 9999))
        model = f"{prefix}-{digits}"
        if model not in out:
            out.append(model)
    return tuple(out)


def _build() -> dict[str, Category]:
    cats: dict[str, Category] = {}
    for c in _CATEGORIES:
        for kind in c.attributes:
            if kind not in KINDS:
                raise ValueError(f"category {c.key!r} uses unknown attribute kind {kind!r}")
            bad = [v for v in c.attributes[kind] if v not in KINDS[kind].values]
            if bad:
                raise ValueError(f"category {c.key!r}: {kind} values {bad} are not canonical")
        models = {b: _model_numbers(c.key, b) for b in c.brands} if c.models else {}
        cats[c.key] = Category(**{**c.__dict__, "model_numbers": models})
    return cats


CATEGORIES: dict[str, Category] = _build()
COMPLEMENTS: dict[str, tuple[str, ...]] = {
    key: tuple(sorted({b for a, b in _COMPLEMENT_EDGES if a == key} | {a for a, b in _COMPLEMENT_EDGES if b == key}))
    for key in CATEGORIES
}
# Accessory -> the products it is for (the second member of each edge is the add-on), for "Case for ..." titles.
ACCESSORY_OF: dict[str, tuple[str, ...]] = {
    key: tuple(sorted({a for a, b in _COMPLEMENT_EDGES if b == key})) for key in CATEGORIES
}
BRANDS: tuple[str, ...] = tuple(b for c in CATEGORIES.values() for b in c.brands)
BRAND_CATEGORY: dict[str, str] = {b: c.key for c in CATEGORIES.values() for b in c.brands}

if len(set(BRANDS)) != len(BRANDS):
    raise ValueError("brand names must be unique across categories")
