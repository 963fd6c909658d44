"""Chinese surface text for the synthetic benchmark: JD-style queries, titles and reasoning over the same facts.

The benchmark's world (categories, brands, model numbers, attribute values, the label rules) is one; this module
writes it the way Chinese e-commerce search reads: queries without spaces between words or with a Latin brand
and a Chinese noun (``novia手机 128g``), units as shoppers type them (``128g``, ``6.1寸``, ``2400万像素``, ``41码``),
promotional filler (``正品``, ``包邮``, ``2024新款``), and typos of Chinese input: a homophone typed for a
character (``充电器`` -> ``冲电器``). Titles stack brand, model, noun and specs JD-fashion (``Novia NX-450 智能手机
128GB 黑色``). Brands stay in Latin letters, as imported brands do on JD. The labels come from the facts by the
same rules as the English benchmark, so the two languages are the same task.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from relevance.parsing import format_label_line
from relevance.synthetic import placement
from relevance.synthetic.attributes import KINDS
from relevance.synthetic.catalogue import ACCESSORY_OF, CATEGORIES
from relevance.synthetic.rules import violations

# key -> (noun in reasoning, query nouns, ad nouns, category path)
_CATS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], str]] = {
    "smartphone": ("手机", ("手机", "智能手机", "5g手机"), ("智能手机", "5G手机", "全网通手机"), "手机通讯 > 手机"),
    "phone_case": (
        "手机壳",
        ("手机壳", "手机套", "保护壳"),
        ("手机壳", "防摔保护壳", "超薄手机套"),
        "手机配件 > 手机壳",
    ),
    "screen_protector": ("手机膜", ("手机膜", "钢化膜", "贴膜"), ("手机钢化膜", "高清贴膜"), "手机配件 > 贴膜"),
    "phone_charger": ("充电器", ("充电器", "充电头", "快充头"), ("快充充电器", "USB-C充电头"), "手机配件 > 充电器"),
    "laptop": (
        "笔记本电脑",
        ("笔记本电脑", "笔记本", "轻薄本"),
        ("笔记本电脑", "轻薄笔记本", "商务笔记本"),
        "电脑办公 > 笔记本",
    ),
    "laptop_bag": (
        "电脑包",
        ("电脑包", "笔记本包", "电脑内胆包"),
        ("电脑包", "商务电脑背包", "笔记本内胆包"),
        "电脑配件 > 电脑包",
    ),
    "computer_mouse": (
        "鼠标",
        ("鼠标", "电脑鼠标", "办公鼠标"),
        ("鼠标", "光电鼠标", "人体工学鼠标"),
        "电脑配件 > 鼠标",
    ),
    "external_hard_drive": (
        "移动硬盘",
        ("移动硬盘", "外置硬盘", "硬盘"),
        ("移动硬盘", "便携移动硬盘"),
        "存储设备 > 移动硬盘",
    ),
    "printer": (
        "打印机",
        ("打印机", "喷墨打印机", "家用打印机"),
        ("喷墨打印机", "打印复印一体机"),
        "办公设备 > 打印机",
    ),
    "ink_cartridge": ("墨盒", ("墨盒", "打印机墨盒", "墨水"), ("原装墨盒", "打印机墨盒"), "办公耗材 > 墨盒"),
    "camera": ("相机", ("相机", "数码相机", "微单相机"), ("数码相机", "微单相机"), "数码影像 > 相机"),
    "memory_card": ("存储卡", ("存储卡", "内存卡", "tf卡"), ("TF存储卡", "SD内存卡"), "存储设备 > 存储卡"),
    "tripod": ("三脚架", ("三脚架", "相机支架", "脚架"), ("三脚架", "便携旅行三脚架"), "摄影配件 > 三脚架"),
    "running_shoes": ("跑步鞋", ("跑步鞋", "跑鞋", "运动鞋"), ("跑步鞋", "缓震跑鞋"), "运动户外 > 跑步鞋"),
    "athletic_socks": ("运动袜", ("运动袜", "跑步袜", "袜子"), ("运动袜", "加厚毛巾底跑步袜"), "运动户外 > 运动袜"),
    "tennis_racket": ("网球拍", ("网球拍", "网拍", "球拍"), ("网球拍", "碳素网球拍"), "运动户外 > 网球拍"),
    "tennis_balls": ("网球", ("网球", "网球罐装", "训练网球"), ("网球", "比赛用网球"), "运动户外 > 网球"),
    "yoga_mat": ("瑜伽垫", ("瑜伽垫", "健身垫", "防滑垫"), ("瑜伽垫", "防滑健身垫"), "运动户外 > 瑜伽垫"),
    "water_bottle": ("水杯", ("水杯", "运动水壶", "保温杯"), ("运动水杯", "保温水壶"), "运动户外 > 水杯"),
    "coffee_maker": ("咖啡机", ("咖啡机", "美式咖啡机", "滴漏咖啡机"), ("咖啡机", "滴漏式咖啡机"), "厨房电器 > 咖啡机"),
    "coffee_filters": (
        "咖啡滤纸",
        ("咖啡滤纸", "滤纸", "咖啡过滤纸"),
        ("咖啡滤纸", "锥形咖啡滤纸"),
        "厨房用品 > 咖啡滤纸",
    ),
    "blender": ("料理机", ("料理机", "破壁机", "榨汁机"), ("料理机", "多功能破壁机"), "厨房电器 > 料理机"),
    "television": ("电视", ("电视", "电视机", "智能电视"), ("智能电视", "液晶电视"), "家用电器 > 电视"),
    "tv_wall_mount": (
        "电视挂架",
        ("电视挂架", "电视支架", "壁挂架"),
        ("电视挂架", "可调角度电视支架"),
        "家电配件 > 电视挂架",
    ),
    "game_console": ("游戏机", ("游戏机", "游戏主机", "电视游戏机"), ("游戏主机", "家用游戏机"), "电玩 > 游戏机"),
    "game_controller": ("游戏手柄", ("游戏手柄", "手柄", "游戏控制器"), ("游戏手柄", "无线游戏手柄"), "电玩 > 手柄"),
    "electric_toothbrush": (
        "电动牙刷",
        ("电动牙刷", "声波牙刷", "牙刷"),
        ("电动牙刷", "声波电动牙刷"),
        "个护健康 > 电动牙刷",
    ),
    "toothbrush_heads": ("牙刷头", ("牙刷头", "替换刷头", "刷头"), ("替换刷头", "电动牙刷头"), "个护健康 > 牙刷头"),
    "t_shirt": ("T恤", ("t恤", "短袖", "体恤"), ("T恤", "圆领短袖T恤"), "服饰 > T恤"),
    "desk_lamp": ("台灯", ("台灯", "护眼台灯", "阅读灯"), ("LED台灯", "护眼台灯"), "家居 > 台灯"),
    "light_bulbs": ("灯泡", ("灯泡", "led灯泡", "节能灯"), ("LED灯泡", "节能灯泡"), "家居 > 灯泡"),
}
_COLOURS = {
    "black": ("黑色", "曜石黑", "磨砂黑"),
    "grey": ("灰色", "深空灰"),
    "silver": ("银色", "星光银"),
    "white": ("白色", "珍珠白"),
    "gold": ("金色", "香槟金"),
    "yellow": ("黄色", "柠檬黄"),
    "pink": ("粉色", "樱花粉"),
    "red": ("红色", "中国红"),
    "purple": ("紫色", "薰衣草紫"),
    "blue": ("蓝色", "天空蓝"),
    "navy": ("藏青色", "藏蓝"),
    "green": ("绿色", "森林绿"),
}
_MATERIALS = {
    "cotton": "纯棉",
    "polyester": "涤纶",
    "leather": "真皮",
    "silicone": "硅胶",
    "plastic": "塑料",
    "nylon": "尼龙",
    "aluminium": "铝合金",
    "carbon fibre": "碳纤维",
    "stainless steel": "不锈钢",
    "glass": "玻璃",
    "tempered glass": "钢化玻璃",
    "wool": "羊毛",
    "cork": "软木",
    "pvc": "PVC",
    "tpe": "TPE",
    "metal": "金属",
    "wood": "实木",
    "paper": "纸质",
    "bamboo": "竹纤维",
}
_GENDERS = {"men": ("男款", "男士", "男"), "women": ("女款", "女士", "女"), "kids": ("儿童", "童款", "儿童款")}
_CONNECT = {"wireless": ("无线", "蓝牙无线"), "wired": ("有线", "USB有线")}
_DISPLAY = {"1080p": ("全高清", "1080P"), "4K": ("4K", "4K超高清"), "8K": ("8K", "8K超高清")}
_LIGHT = {"warm white": ("暖白光", "2700K"), "cool white": ("冷白光", "4000K"), "daylight": ("日光色", "6500K")}
_CLOTHING = {
    "XS": ("XS码", "XS"),
    "S": ("S码", "小码"),
    "M": ("M码", "中码"),
    "L": ("L码", "大码"),
    "XL": ("XL码", "加大码"),
    "XXL": ("XXL码", "2XL"),
}
# US shoe sizes as Chinese (EU) sizes, as JD lists them.
_SHOE_EU = {
    "6": "38.5",
    "6.5": "39",
    "7": "40",
    "7.5": "40.5",
    "8": "41",
    "8.5": "42",
    "9": "42.5",
    "9.5": "43",
    "10": "44",
    "10.5": "44.5",
    "11": "45",
    "12": "46",
}
_AD_KEYS = {
    "colour": ("颜色", "机身颜色"),
    "capacity": ("存储容量", "容量"),
    "screen size": ("屏幕尺寸", "尺寸"),
    "volume": ("容量",),
    "power": ("功率", "输出功率"),
    "pack size": ("规格", "数量"),
    "thickness": ("厚度",),
    "weight": ("重量", "拍面重量"),
    "resolution": ("像素", "有效像素"),
    "shoe size": ("尺码",),
    "size": ("尺码",),
    "material": ("材质",),
    "gender": ("适用人群",),
    "connectivity": ("连接方式",),
    "display": ("分辨率",),
    "light colour": ("光源颜色", "色温"),
}
_KIND_NAMES = {
    "colour": "颜色",
    "capacity": "容量",
    "screen size": "屏幕尺寸",
    "volume": "容量",
    "power": "功率",
    "pack size": "数量",
    "thickness": "厚度",
    "weight": "重量",
    "resolution": "像素",
    "shoe size": "尺码",
    "size": "尺码",
    "material": "材质",
    "gender": "适用人群",
    "connectivity": "连接方式",
    "display": "分辨率",
    "light colour": "光色",
}
_FILLER_BEFORE = ("正品", "新款", "2024新款", "官方", "旗舰店", "爆款", "热卖")
_FILLER_AFTER = ("包邮", "正品", "特价", "官方旗舰店", "送礼", "官方正品", "现货")
_BLURBS = (
    "正品保障，全国联保。",
    "支持七天无理由退货。",
    "品质之选，值得信赖。",
    "顺丰包邮，当日发货。",
    "大促价，限时抢购。",
)
# Characters shoppers mistype for a homophone (pinyin input picks the wrong candidate).
_HOMOPHONES = {
    "充": "冲",
    "电": "店",
    "器": "气",
    "机": "几",
    "鼠": "属",
    "标": "表",
    "盘": "判",
    "壳": "克",
    "鞋": "写",
    "袜": "瓦",
    "球": "求",
    "拍": "排",
    "垫": "电",
    "杯": "背",
    "壶": "湖",
    "视": "试",
    "灯": "登",
    "膜": "模",
    "墨": "默",
    "盒": "和",
    "卡": "咔",
    "架": "驾",
    "包": "宝",
    "刷": "耍",
    "相": "像",
    "硬": "应",
    "纸": "只",
    "恤": "须",
    "笔": "比",
}


def _num(x: float) -> str:
    return f"{x:g}"


def _lead(value: str) -> str:
    return value.split()[0]


def _storage_gb(value: str) -> int:
    n, unit = value.split()
    return int(n) * (1000 if unit == "TB" else 1)


def query_forms(kind: str, value: str) -> list[str]:
    """How a Chinese shopper types ``value`` (canonical) in a query; the first is the plain form."""
    if kind == "colour":
        return [_COLOURS[value][0], _COLOURS[value][0].removesuffix("色") or _COLOURS[value][0]]
    if kind == "capacity":
        gb = _storage_gb(value)
        if gb >= 1000:
            return [f"{gb // 1000}t", f"{gb // 1000}tb", f"{gb}g"]
        return [f"{gb}g", f"{gb}gb", f"{gb}G"]
    if kind == "screen size":
        n = _lead(value)
        return [f"{n}寸", f"{n}英寸", f"{n}吋"]
    if kind == "volume":
        ml = int(_lead(value))
        forms = [f"{ml}ml", f"{ml}毫升"]
        return forms + ([f"{_num(ml / 1000)}l", f"{_num(ml / 1000)}升"] if ml >= 1000 else [])
    if kind == "power":
        w = _lead(value)
        return [f"{w}w", f"{w}瓦"]
    if kind == "pack size":
        n = _lead(value)
        return [f"{n}个装", f"{n}只装", f"{n}件装"]
    if kind == "thickness":
        return [f"{_lead(value)}mm", f"{_lead(value)}毫米"]
    if kind == "weight":
        return [f"{_lead(value)}g", f"{_lead(value)}克"]
    if kind == "resolution":
        mp = int(_lead(value))
        return [f"{mp * 100}万像素", f"{mp}mp"]
    if kind == "shoe size":
        eu = _SHOE_EU[value.split()[1]]
        return [f"{eu}码", f"{eu}"]
    if kind == "size":
        return list(_CLOTHING[value])
    if kind == "material":
        return [_MATERIALS[value]]
    if kind == "gender":
        return list(_GENDERS[value])
    if kind == "connectivity":
        return list(_CONNECT[value])
    if kind == "display":
        return [f.lower() for f in _DISPLAY[value]]
    if kind == "light colour":
        return [_LIGHT[value][0], _LIGHT[value][1].lower()]
    raise KeyError(kind)


def ad_forms(kind: str, value: str) -> list[str]:
    """How a seller writes ``value`` in a title or the attributes; the first is the plain form."""
    if kind == "colour":
        return list(_COLOURS[value])
    if kind == "capacity":
        gb = _storage_gb(value)
        return [f"{gb // 1000}TB", f"{gb}GB"] if gb >= 1000 else [f"{gb}GB", f"{gb}G"]
    if kind == "screen size":
        return [f"{_lead(value)}英寸", f"{_lead(value)}寸"]
    if kind == "volume":
        ml = int(_lead(value))
        return [f"{ml}ml"] + ([f"{_num(ml / 1000)}L"] if ml >= 1000 else [f"{ml}毫升"])
    if kind == "power":
        return [f"{_lead(value)}W", f"{_lead(value)}瓦"]
    if kind == "pack size":
        return [f"{_lead(value)}只装", f"{_lead(value)}个/盒"]
    if kind == "thickness":
        return [f"{_lead(value)}mm", f"{_lead(value)}毫米加厚"]
    if kind == "weight":
        return [f"{_lead(value)}g", f"{_lead(value)}克"]
    if kind == "resolution":
        mp = int(_lead(value))
        return [f"{mp * 100}万像素", f"{mp}MP"]
    if kind == "shoe size":
        return [f"{_SHOE_EU[value.split()[1]]}码", f"EUR {_SHOE_EU[value.split()[1]]}"]
    if kind in ("size", "gender", "connectivity", "display", "light colour"):
        table = {
            "size": _CLOTHING,
            "gender": _GENDERS,
            "connectivity": _CONNECT,
            "display": _DISPLAY,
            "light colour": _LIGHT,
        }[kind]
        return list(table[value])
    if kind == "material":
        return [_MATERIALS[value], f"{_MATERIALS[value]}材质"]
    raise KeyError(kind)


def _typo(rng: random.Random, text: str) -> str:
    """One character typed as its homophone, where the text has one that shoppers mistype; else unchanged."""
    spots = [i for i, ch in enumerate(text) if ch in _HOMOPHONES]
    if not spots:
        return text
    i = rng.choice(spots)
    return text[:i] + _HOMOPHONES[text[i]] + text[i + 1 :]


def query_text(
    rng: random.Random, tier: str, key: str, brand: str | None, model: str | None, attrs: Mapping[str, str]
) -> tuple[str, dict[str, str]]:
    """A JD-style query for the constraints, and the form each attribute took in it."""
    forms: dict[str, str] = {}
    for kind, value in attrs.items():
        options = query_forms(kind, value)
        forms[kind] = options[0] if tier == "easy" else rng.choice(options[:2] if tier == "medium" else options)
    nouns = _CATS[key][1]
    noun = nouns[0] if tier == "easy" else rng.choice(nouns)
    if tier == "hard" and rng.random() < 0.6:
        noun = _typo(rng, noun)
    brand_text = brand.lower() if brand and (tier != "easy" or rng.random() < 0.5) else brand
    model_text = None
    if model:
        prefix, digits = model.split("-")
        model_text = rng.choice([model.lower(), f"{prefix.lower()}{digits}", f"{prefix}{digits}"])
    head = [x for x in (brand_text, model_text) if x]
    before = [forms[k] for k in attrs if k in ("gender", "material", "connectivity", "colour")]
    after = [forms[k] for k in attrs if k not in ("gender", "material", "connectivity", "colour")]
    # Chinese queries run words together; a space where the shopper paused (after a Latin brand, before specs).
    glue = "" if tier == "easy" or rng.random() < 0.6 else " "
    core = "".join(before) + noun
    parts = [*head, core, *after]
    if tier == "medium" and rng.random() < 0.4:
        parts.insert(0, rng.choice(_FILLER_BEFORE))
    if tier == "hard":
        if rng.random() < 0.35:
            parts.insert(0, rng.choice(_FILLER_BEFORE))
        if rng.random() < 0.3:
            parts.append(rng.choice(_FILLER_AFTER))
        if rng.random() < 0.3 and len(parts) > 1:
            rng.shuffle(parts)
    text = parts[0]
    for part in parts[1:]:
        latin = part[:1].isascii() and text[-1:].isascii()  # two Latin words always need a space
        text += " " if latin or (rng.random() < 0.5 and (part[:1].isascii() or text[-1:].isascii())) else glue
        text += part
    return text, forms


def render_ad(
    rng: random.Random, q: Any, facts: Mapping[str, Any], decisive: list[str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The ad JD-fashion: title ``brand model [gender]noun specs``, attributes and a short description; and the
    form each attribute took in it. Hard ads put the deciding detail only in the attributes or the description."""
    key = facts["category"]
    tier = q.tier
    same = key == q.category.key
    ad_nouns = _CATS[key][2]
    noun = ad_nouns[0] if tier == "easy" else rng.choice(ad_nouns)
    specs: list[str] = []
    attributes: dict[str, str] = {}
    desc: list[str] = []
    shown: dict[str, str] = {}
    prefix = ""
    if facts["model"] and tier != "easy" and rng.random() < 0.3:
        attributes["型号"] = facts["model"]
    for kind, value in facts["attributes"].items():
        options = ad_forms(kind, value)
        constrained = same and kind in q.attributes
        form = options[0] if tier == "easy" else rng.choice(options)
        place = placement.place(rng, tier, constrained, decisive, kind)
        if place == "none":
            continue
        shown[kind] = form
        if place == "title":
            if kind in ("gender", "material", "connectivity"):
                prefix += form
            else:
                specs.append(form)
        elif place == "attrs":
            attributes[rng.choice(_AD_KEYS[kind])] = form
        else:
            desc.append(f"{_KIND_NAMES[kind]}：{form}。")
    head = [facts["brand"], *([facts["model"]] if facts["model"] else [])]
    title = " ".join(head) + " " + prefix + noun
    if q.category.key in ACCESSORY_OF[key] and (tier == "hard" or (tier == "medium" and rng.random() < 0.5)):
        # An accessory whose title names the queried product: only the category tells it apart.
        target = " ".join(x for x in (q.brand, q.model) if x) or _CATS[q.category.key][0]
        title = f"适用于{target}的 " + title
    if specs:
        title += " " + " ".join(specs)
    description = "".join([f"{facts['brand']}{noun}。", *desc, rng.choice(_BLURBS)])
    ad: dict[str, Any] = {"title": title, "description": description}
    if tier != "hard" or rng.random() < 0.7:
        ad["brand"] = facts["brand"]
    ad["category"] = _CATS[key][3]
    if attributes:
        ad["attributes"] = attributes
    return ad, shown


def _value(kind: str, value: str) -> str:
    return ad_forms(kind, value)[0]


def reasoning(q: Any, facts: Mapping[str, Any], label: str) -> str:
    """The gold trace in Chinese: what the query wants, each check, the verdict, then ``Label: <label>``."""
    qkey, akey = q.category.key, facts["category"]
    wants = [_CATS[qkey][0]]
    if q.brand:
        wants.append(f"品牌{q.brand}")
    if q.model:
        wants.append(f"型号{q.model}")
    wants.extend(f"{_KIND_NAMES[k]}{_value(k, v)}" for k, v in q.attributes.items())
    lines = [f"搜索词要：{'，'.join(wants)}。"]
    if akey == qkey:
        lines.append(f"商品：{facts['brand']}的{_CATS[akey][0]}，同类商品。")
        checks = []
        for key, name in (("brand", "品牌"), ("model", "型号")):
            want = getattr(q, key)
            if want is None:
                continue
            have = facts[key]
            checks.append(f"{name}{want}：符合。" if have == want else f"{name}：商品为{have}，搜索词要{want}：不符。")
        for kind, want in q.attributes.items():
            have = facts["attributes"][kind]
            name = _KIND_NAMES[kind]
            if have == want:
                checks.append(f"{name}{_value(kind, want)}：符合。")
            else:
                checks.append(f"{name}：商品为{_value(kind, have)}，搜索词要{_value(kind, want)}：不符。")
        lines.append("".join(checks) if checks else "没有其他要求。")
        failed = violations(q.constraints(), dict(facts))
        lines.append("全部符合。" if not failed else f"同类商品，但有{len(failed)}项要求不符。")
    else:
        lines.append(f"商品：{facts['brand']}的{_CATS[akey][0]}，不同类商品。")
        relation = "配套使用" if label == "Complement" else "没有配套关系"
        lines.append(f"{_CATS[akey][0]}与{_CATS[qkey][0]}{relation}。")
    lines.append(format_label_line(label))
    return "\n".join(lines)


def filler(rng: random.Random, text: str) -> str:
    """The same query with promotional words around it: a new text when the clean ones are used up."""
    return f"{rng.choice(_FILLER_BEFORE)}{text}{rng.choice(_FILLER_AFTER)}"


def _check() -> None:
    missing = set(CATEGORIES) - set(_CATS)
    if missing:
        raise ValueError(f"no Chinese names for categories {sorted(missing)}")
    for kind, spec in KINDS.items():
        for value in spec.values:
            query_forms(kind, value)
            ad_forms(kind, value)


_check()
