"""Word banks for the sample-data generator: product catalogue and compositional review texts.

Why compositional: a model that sees only a handful of fixed review strings learns to match strings,
not meaning. Texts here are assembled from topic templates x synonyms x product names x intensifiers x
an optional second sentence, so the same intent ("probably my last order") appears in many surface forms
and alongside any star rating.

Why one file over 400 lines: it is data (word banks and templates), not logic.
"""

from __future__ import annotations

import random

import numpy as np

# -- catalogue --------------------------------------------------------------------------------------
# category -> (nouns, adjectives, brands, median price, feature sentences, sized?)
CATEGORIES: dict[str, dict] = {
    "fashion": {
        "nouns": [
            "T-Shirt",
            "Hoodie",
            "Jeans",
            "Dress",
            "Jacket",
            "Sweater",
            "Shirt",
            "Skirt",
            "Chinos",
            "Cardigan",
            "Coat",
            "Polo Shirt",
        ],
        "adjectives": [
            "Classic",
            "Slim-Fit",
            "Oversized",
            "Organic Cotton",
            "Linen",
            "Vintage",
            "Relaxed",
            "Essential",
            "Merino",
            "Cropped",
        ],
        "brands": ["Nordvik", "Urban Loom", "Maison Clé", "Fieldstone", "Kaia", "Bluepine"],
        "price": 38.0,
        "sized": True,
        "features": [
            "Machine washable at 30 degrees.",
            "Cut for an easy everyday fit.",
            "Made from soft, breathable fabric.",
            "Pairs well with almost anything in your wardrobe.",
        ],
    },
    "shoes": {
        "nouns": [
            "Sneakers",
            "Running Shoes",
            "Boots",
            "Sandals",
            "Loafers",
            "Hiking Boots",
            "Slippers",
            "Trainers",
            "Chelsea Boots",
            "Espadrilles",
        ],
        "adjectives": ["Lightweight", "Waterproof", "Leather", "Cushioned", "Retro", "Trail", "Suede", "All-Day"],
        "brands": ["Stridewell", "Kobo Run", "Ferro", "Trailhead", "Solemate", "Aster"],
        "price": 72.0,
        "sized": True,
        "features": [
            "Cushioned insole for long days.",
            "Grippy rubber outsole.",
            "Runs true to size.",
            "Breathable upper keeps feet cool.",
        ],
    },
    "electronics": {
        "nouns": [
            "Headphones",
            "Bluetooth Speaker",
            "Power Bank",
            "Smartwatch",
            "Webcam",
            "Keyboard",
            "Mouse",
            "USB-C Hub",
            "E-Reader",
            "Charger",
            "Earbuds",
        ],
        "adjectives": [
            "Wireless",
            "Noise-Cancelling",
            "Compact",
            "Pro",
            "Ultra-Slim",
            "Fast-Charging",
            "Ergonomic",
            "Portable",
        ],
        "brands": ["Voltra", "Sonique", "Pixelon", "Kinetic", "Auralis", "Nexa"],
        "price": 79.0,
        "sized": False,
        "features": [
            "Two-year warranty included.",
            "Battery lasts all day.",
            "Pairs in seconds over Bluetooth.",
            "USB-C cable in the box.",
        ],
    },
    "home_kitchen": {
        "nouns": [
            "Frying Pan",
            "Coffee Maker",
            "Knife Set",
            "Blender",
            "Cutting Board",
            "Kettle",
            "Towel Set",
            "Bed Sheets",
            "Desk Lamp",
            "Storage Box",
            "Dinner Plates",
        ],
        "adjectives": [
            "Non-Stick",
            "Stainless Steel",
            "Bamboo",
            "Ceramic",
            "Cast Iron",
            "Minimalist",
            "Stackable",
            "Premium",
        ],
        "brands": ["Casa Verde", "Hearthly", "Kochwerk", "Linden & Co", "Oaken", "Pureform"],
        "price": 42.0,
        "sized": False,
        "features": ["Dishwasher safe.", "Designed to last for years.", "Easy to clean.", "Fits small kitchens."],
    },
    "beauty": {
        "nouns": [
            "Face Cream",
            "Shampoo",
            "Perfume",
            "Lipstick",
            "Serum",
            "Hair Dryer",
            "Body Lotion",
            "Sunscreen",
            "Face Mask",
            "Conditioner",
        ],
        "adjectives": [
            "Hydrating",
            "Vegan",
            "Fragrance-Free",
            "Nourishing",
            "Daily",
            "Gentle",
            "Vitamin C",
            "Repairing",
        ],
        "brands": ["Lumière", "Botanica", "Dermaline", "Velvet Rose", "Aqualis", "Nuvé"],
        "price": 19.0,
        "sized": False,
        "features": [
            "Dermatologically tested.",
            "Suitable for sensitive skin.",
            "Not tested on animals.",
            "Light texture that absorbs quickly.",
        ],
    },
    "sports_outdoors": {
        "nouns": [
            "Yoga Mat",
            "Dumbbells",
            "Backpack",
            "Tent",
            "Water Bottle",
            "Cycling Helmet",
            "Running Jacket",
            "Sleeping Bag",
            "Trekking Poles",
            "Resistance Bands",
        ],
        "adjectives": [
            "Foldable",
            "Insulated",
            "Ultralight",
            "Adjustable",
            "Weatherproof",
            "Non-Slip",
            "Reflective",
            "Heavy-Duty",
        ],
        "brands": ["Summitline", "Peakform", "Wildgrove", "Kinetica", "Northridge", "Tempo"],
        "price": 46.0,
        "sized": False,
        "features": [
            "Built for the outdoors.",
            "Packs down small.",
            "Tested in all weather.",
            "Comes with a carry bag.",
        ],
    },
    "books": {
        "nouns": [
            "Novel",
            "Cookbook",
            "Biography",
            "Travel Guide",
            "Picture Book",
            "Thriller",
            "Sci-Fi Novel",
            "Graphic Novel",
            "Poetry Collection",
            "Self-Help Book",
        ],
        "adjectives": [
            "Bestselling",
            "Illustrated",
            "Paperback",
            "Hardcover",
            "Award-Winning",
            "New Edition",
            "Pocket",
            "Collector's",
        ],
        "brands": ["Penrose Press", "Inkwell", "Harbour Books", "Quill & Co", "Lanternfield", "Redleaf"],
        "price": 14.0,
        "sized": False,
        "features": ["A gripping read.", "Over 300 pages.", "Perfect as a gift.", "Recommended by critics."],
    },
    "toys_games": {
        "nouns": [
            "Board Game",
            "Puzzle",
            "Building Blocks",
            "Plush Toy",
            "RC Car",
            "Card Game",
            "Doll House",
            "Science Kit",
            "Marble Run",
            "Train Set",
        ],
        "adjectives": ["Family", "Wooden", "Educational", "Deluxe", "Mini", "Classic", "Glow-in-the-Dark", "Travel"],
        "brands": ["Playmoor", "Tinkertown", "Brightbox", "Funforge", "Little Oak", "Wondrous"],
        "price": 29.0,
        "sized": False,
        "features": [
            "For ages 6 and up.",
            "Hours of fun for the whole family.",
            "Made from safe materials.",
            "Batteries not included.",
        ],
    },
}
CATEGORY_NAMES: tuple[str, ...] = tuple(CATEGORIES)
PRODUCTS_PER_CATEGORY = 40


def build_catalogue(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A deterministic catalogue: PRODUCTS_PER_CATEGORY unique titles per category, prices, descriptions."""
    titles, nouns, categories, prices, descriptions = [], [], [], [], []
    for name, spec in CATEGORIES.items():
        combos = [(b, a, n) for b in spec["brands"] for a in spec["adjectives"] for n in spec["nouns"]]
        chosen = rng.choice(len(combos), PRODUCTS_PER_CATEGORY, replace=False)
        raw_prices = spec["price"] * rng.lognormal(0.0, 0.45, PRODUCTS_PER_CATEGORY)
        for idx, raw in zip(chosen, raw_prices, strict=True):
            brand, adj, noun = combos[int(idx)]
            titles.append(f"{brand} {adj} {noun}")
            nouns.append(noun.lower())
            categories.append(name)
            prices.append(max(2.99, np.floor(raw) + 0.99))
            feature = spec["features"][int(rng.integers(len(spec["features"])))]
            descriptions.append(f"{adj} {noun.lower()} by {brand}. {feature}")
    return {
        "title": np.array(titles, dtype=object),
        "noun": np.array(nouns, dtype=object),
        "category": np.array(categories, dtype=object),
        "price": np.array(prices, dtype=float),
        "description": np.array(descriptions, dtype=object),
    }


# -- reviews ----------------------------------------------------------------------------------------
NEGATIVE_TOPICS = ("late_delivery", "damaged", "wrong_size", "price", "poor_quality", "poor_support")
POSITIVE_TOPICS = ("fast_delivery", "great_quality", "good_value", "smooth")
TOPICS = NEGATIVE_TOPICS + POSITIVE_TOPICS
INTENTS = ("none", "leave", "recovery", "loyal", "filler")

_INTENS = ["really", "very", "extremely", "quite", "super", "incredibly", "rather", "ridiculously", "pretty", "so"]

_TEMPLATES: dict[str, list[str]] = {
    "late_delivery": [
        "The {p} arrived {d} days later than promised.",
        "Delivery took {i} long, {d} days late.",
        "Waited almost {w} weeks for my {p}.",
        "Shipping was {i} slow and the tracking never updated.",
        "My parcel showed up {d} days after the estimated date.",
        "Late delivery again, the {p} came {d} days after I needed it.",
        "The courier kept postponing, so the {p} arrived way too late.",
    ],
    "damaged": [
        "The {p} arrived damaged{dd}.",
        "Package was {i} battered and the {p} inside {was} broken.",
        "The {p} came scratched and dented.",
        "Opened the box and the {p} {was} cracked{dd}.",
        "Received a broken {p}{dd}.",
    ],
    "wrong_size": [
        "The {p} {runs} {i} {sz}, had to send {it} back.",
        "Ordered my usual size but the {p} did not fit at all.",
        "Sizing is way off, the {p} {is} {n} too {big}.",
        "Wrong size: the {p} {is} {i} {sz} compared to the size chart.",
        "Had to return the {p}, the fit was all wrong.",
    ],
    "price": [
        "The {p} {is} {i} overpriced for what you get.",
        "Prices went up again, the {p} cost more than last time.",
        "Saw the same {p} for {pct}% less on another site.",
        "Way too expensive, the {p} {is} not worth the money.",
        "Paid full price for the {p} and {it} {was} on sale a week later.",
        "Shipping fees made the {p} {i} expensive.",
    ],
    "poor_quality": [
        "The {p} fell apart after {w} weeks.",
        "Quality of the {p} {is} {i} disappointing.",
        "Cheap materials, the {p} already {looks} worn out.",
        "The {p} stopped working after a few days.",
        "Not the quality I expected, the {p} {feels} flimsy.",
    ],
    "poor_support": [
        "Customer service never replied to my emails about the {p}.",
        "Support kept me on hold for {m} minutes and solved nothing.",
        "Had to contact support {k} times and still no refund for the {p}.",
        "The support team was {i} unhelpful about my {p}.",
        "Nobody at customer service could tell me where my {p} {was}.",
    ],
    "fast_delivery": [
        "Arrived {fast}, {i} fast delivery.",
        "{Quick} shipping, the {p} {was} here in {d2} days.",
        "The {p} came {fast} and well packed.",
        "Delivery was {i} quick, ordered on Monday and had the {p} {fast}.",
    ],
    "great_quality": [
        "The {p} {is} {i} {good}.",
        "Great quality {p}, exactly as described.",
        "Love the {p}, {i} {good}.",
        "Excellent {p}, better than I expected.",
        "The {p} {feels} {i} {good} for the price.",
    ],
    "good_value": [
        "Good value for money, the {p} {was} a real bargain.",
        "Fair price, and the {p} {is} {good}.",
        "Got the {p} on sale, {i} happy with the deal.",
        "Cheaper than elsewhere and the {p} {is} {good}.",
    ],
    "smooth": [
        "Ordering was easy and the {p} {works} as expected.",
        "Does the job. The {p} {looks} just like the pictures.",
        "No complaints, the {p} {is} fine.",
        "The {p} {is} as described, nothing more to say.",
        "Smooth order, the {p} arrived on time.",
    ],
}

_LEAVE_LEAD = [
    "Probably",
    "Most likely",
    "Honestly, this is probably",
    "I think this was",
    "Pretty sure this is",
    "Sadly,",
    "To be honest, this was probably",
]
_LEAVE_CORE = [
    "my last order here",
    "the last time I order from this shop",
    "my last purchase with you",
    "the final order from me",
]
_LEAVE_REASON = [
    ", found it cheaper elsewhere",
    ", the competition is faster",
    ", too many problems lately",
    ", other shops treat customers better",
    "",
    " since prices keep going up",
    "",
]
_LEAVE_OTHER = [
    "Not sure I will order from this shop again.",
    "I've started buying from a competitor instead.",
    "Will be taking my business elsewhere.",
    "Thinking about closing my account.",
    "Found the same things cheaper on another site, so probably not coming back.",
    "Honestly I'm losing patience with this store.",
    "Cancelled my newsletter subscription, I'm done.",
    "Going to shop somewhere else from now on.",
]
_SUPPORT = ["Support", "Customer service", "The team", "The service team", "Their hotline"]
_FIXED = ["fixed it", "sorted it out", "sent a replacement", "refunded me", "solved the problem"]
_QUICKLY = ["quickly", "within a day", "without any fuss", "right away", "in no time"]
_RECOVERY_TAIL = [
    "will order again",
    "still my favourite shop",
    "I'll definitely be back",
    "no hard feelings",
    "so I'm staying",
    "happy to keep ordering here",
]
_RECOVERY_OTHER = [
    "One-off problem I guess, still my go-to shop for {c}.",
    "Things happen, the refund came through within two days so no hard feelings.",
    "Not a big deal, I'll keep ordering here.",
    "First issue in years of ordering, so I'm not worried.",
]
_RECOVERY_MILD = [
    "Still my favourite shop overall.",
    "Still, I'll keep ordering here.",
    "Otherwise happy, will order again.",
    "Not a dealbreaker, I'll be back.",
    "Everything else was fine, so I'm staying.",
]
_LOYAL = [
    "Will buy again.",
    "Already ordered a second one.",
    "My go-to shop for {c}.",
    "Highly recommend.",
    "Keep it up!",
    "Will definitely order again.",
    "Ten out of ten, coming back for sure.",
    "Recommended it to my friends.",
    "Best shop for {c} by far.",
]
_FILLER = [
    "Packaging could be better.",
    "Colour is slightly different from the photo.",
    "Bought it as a gift.",
    "Second time ordering this.",
    "Instructions were a bit confusing.",
    "Would like more colour options.",
    "Box was bigger than needed.",
    "",
]
_DAMAGE_DETAIL = [
    "",
    ", the box was crushed",
    " with a cracked corner",
    ", parts were missing",
    " and leaking",
    ", clearly dropped in transit",
]
_FAST = ["the next day", "in two days", "earlier than expected", "a day early", "within 48 hours"]
_QUICK = ["Super quick", "Lightning fast", "Very fast", "Speedy", "Quick"]
_GOOD = ["well made", "good quality", "sturdy", "comfortable", "beautiful", "solid", "nicely finished", "great"]
_CATEGORY_WORDS = {
    "fashion": "clothes",
    "shoes": "shoes",
    "electronics": "gadgets",
    "home_kitchen": "home stuff",
    "beauty": "beauty products",
    "sports_outdoors": "sports gear",
    "books": "books",
    "toys_games": "toys",
}


_SINGULAR = {"is": "is", "was": "was", "runs": "runs", "it": "it", "looks": "looks", "feels": "feels", "works": "works"}
_PLURAL = {"is": "are", "was": "were", "runs": "run", "it": "them", "looks": "look", "feels": "feel", "works": "work"}


def _is_plural(noun: str) -> bool:
    return noun.endswith("s") and not noun.endswith("ss")


def _fill(template: str, r: random.Random, product: str, category: str, plural: bool = False) -> str:
    return template.format(
        p=product,
        i=r.choice(_INTENS),
        d=r.randint(3, 14),
        d2=r.randint(1, 2),
        w=r.randint(2, 5),
        m=r.choice([20, 30, 45, 60, 90]),
        k=r.choice(["three", "four", "five", "several"]),
        n=r.choice(["one size", "two sizes", "a full size", "half a size"]),
        **(_PLURAL if plural else _SINGULAR),
        sz=r.choice(["small", "large", "narrow", "short", "tight"]),
        big=r.choice(["small", "big"]),
        pct=r.choice([10, 15, 20, 25, 30, 40]),
        dd=r.choice(_DAMAGE_DETAIL),
        fast=r.choice(_FAST),
        Quick=r.choice(_QUICK),
        good=r.choice(_GOOD),
        c=_CATEGORY_WORDS.get(category, "everything"),
    )


def _intent_sentence(intent: str, r: random.Random, category: str, topic: str) -> str:
    if intent == "leave":
        if r.random() < 0.55:
            return f"{r.choice(_LEAVE_LEAD)} {r.choice(_LEAVE_CORE)}{r.choice(_LEAVE_REASON)}."
        return r.choice(_LEAVE_OTHER)
    if intent == "recovery":
        if topic in ("price", "poor_quality"):
            return r.choice(_RECOVERY_MILD)
        if r.random() < 0.6:
            return f"{r.choice(_SUPPORT)} {r.choice(_FIXED)} {r.choice(_QUICKLY)}, {r.choice(_RECOVERY_TAIL)}."
        return _fill(r.choice(_RECOVERY_OTHER), r, "", category)
    if intent == "loyal":
        return _fill(r.choice(_LOYAL), r, "", category)
    if intent == "filler":
        return r.choice(_FILLER)
    return ""


def compose_reviews(
    seed: int, topics: np.ndarray, intents: np.ndarray, nouns: np.ndarray, titles: np.ndarray, categories: np.ndarray
) -> list[str]:
    """One review text per row from its topic, intent and product; deterministic for a seed."""
    r = random.Random(seed)
    planted = random.Random(seed ^ 0x5EED)
    texts = []
    for topic, intent, noun, title, category in zip(topics, intents, nouns, titles, categories, strict=True):
        product = title if r.random() < 0.25 else noun
        first = _fill(r.choice(_TEMPLATES[topic]), r, product, category, _is_plural(noun))
        if r.random() < 0.15:  # occasional hedge or emphasis in front
            first = f"{r.choice(['Well,', 'Ok so', 'Honestly,', 'So,', 'To be fair,'])} {first[0].lower()}{first[1:]}"
        second = _intent_sentence(intent, r, category, topic)
        text = f"{first} {second}".strip()
        if r.random() < 0.05:
            text = text.lower()
        if planted.random() < PLANTED_CONTACT_SHARE:  # own stream: the other texts stay as they were
            text = f"{_planted_contact(planted)} {text}"
        texts.append(text)
    return texts


# A few reviews carry contact details, as real ones do; the platform must mask them (pipelines.features.privacy).
PLANTED_CONTACT_SHARE = 0.02
_FIRST = ["anna", "ben", "chloe", "dmitri", "eva", "farid", "grace", "hugo"]
_LAST = ["miller", "okafor", "schmidt", "tanaka", "rossi", "novak"]
_STREETS = ["Baker Street", "Elm Road", "Maple Avenue", "Station Lane", "Hauptstraße"]


def _planted_contact(r: random.Random) -> str:
    name = f"{r.choice(_FIRST)}.{r.choice(_LAST)}{r.randint(1, 99)}"
    kind = r.randrange(4)
    if kind == 0:
        return f"Email me at {name}@example.com about this."
    if kind == 1:
        return f"Call me on +44 20 {r.randint(1000, 9999)} {r.randint(1000, 9999)}."
    if kind == 2:
        street = r.choice(_STREETS)
        number = r.randint(1, 250)
        return f"Deliver to {street} {number} next time." if street == "Hauptstraße" else f"Sent to {number} {street}."
    return f"Refund to card {r.randint(4000, 4999)} {r.randint(1000, 9999)} {r.randint(1000, 9999)} {r.randint(1000, 9999)}."
