"""A deterministic set of authored multiple-choice items for parity and speed benchmarks."""

from __future__ import annotations

import random

CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Portugal": "Lisbon",
    "Japan": "Tokyo", "China": "Beijing", "Russia": "Moscow", "Egypt": "Cairo", "Canada": "Ottawa",
    "Australia": "Canberra", "Brazil": "Brasilia", "Argentina": "Buenos Aires", "Mexico": "Mexico City",
    "India": "New Delhi", "Greece": "Athens", "Norway": "Oslo", "Sweden": "Stockholm", "Finland": "Helsinki",
    "Poland": "Warsaw", "Austria": "Vienna", "Ireland": "Dublin", "Kenya": "Nairobi", "Peru": "Lima",
    "Chile": "Santiago", "Turkey": "Ankara", "Thailand": "Bangkok", "Vietnam": "Hanoi", "Cuba": "Havana",
    "Hungary": "Budapest", "Denmark": "Copenhagen", "Belgium": "Brussels", "Netherlands": "Amsterdam",
    "Switzerland": "Bern", "Czechia": "Prague", "Iran": "Tehran", "Iraq": "Baghdad", "Nigeria": "Abuja",
    "South Korea": "Seoul", "Indonesia": "Jakarta",
}
ANTONYMS = {
    "hot": "cold", "big": "small", "up": "down", "fast": "slow", "happy": "sad", "light": "dark",
    "early": "late", "strong": "weak", "rich": "poor", "open": "closed", "full": "empty", "hard": "soft",
    "old": "young", "long": "short", "wet": "dry", "loud": "quiet", "clean": "dirty", "high": "low",
    "thick": "thin", "heavy": "light", "true": "false", "win": "lose", "buy": "sell", "push": "pull",
}


def mc_items(n: int = 300, seed: int = 0) -> list[dict]:
    """``n`` MMLU-style rows mixing capitals, antonyms and small arithmetic (4 choices each)."""
    rng = random.Random(seed)
    items: list[dict] = []
    cities = sorted(set(CAPITALS.values()))
    words = sorted(set(ANTONYMS.values()) | set(ANTONYMS))
    while len(items) < n:
        kind = len(items) % 3
        if kind == 0:
            country = rng.choice(sorted(CAPITALS))
            gold = CAPITALS[country]
            question = f"What is the capital of {country}?"
            pool = cities
        elif kind == 1:
            word = rng.choice(sorted(ANTONYMS))
            gold = ANTONYMS[word]
            question = f"What is the opposite of '{word}'?"
            pool = [w for w in words if w != word]
        else:
            a, b = rng.randint(1, 40), rng.randint(1, 40)
            gold = str(a + b)
            question = f"What is {a} + {b}?"
            pool = [str(a + b + d) for d in (-10, -2, -1, 1, 2, 10) if a + b + d > 0]
        distractors = rng.sample([p for p in pool if p != gold], 3)
        choices = distractors + [gold]
        rng.shuffle(choices)
        items.append({"id": f"b{len(items)}", "question": question, "choices": choices,
                      "answer": choices.index(gold)})
    return items
