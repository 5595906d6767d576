"""Generate the data files of ``example_suites/`` (deterministic; every fact authored here).

Run from the repository root::

    python scripts/generate_example_data.py            # writes the data files (below)
    python scripts/generate_example_data.py --check    # fails if a file would change

Nothing is copied from an existing dataset: the facts, words, sentences and prompts below
were written for this project (Apache-2.0, like the rest of the repository). Distractors,
operands and item order come from ``random.Random`` streams seeded with a fixed string per
file, so the output is byte-identical on every run and Python version. The target-domain
(contract review) items come from ``scripts/contract_data.py:contract_mc_items``, the same
generator family the example adapters were trained with (held out by seed).

The general-capability files are the starter suites shipped with the plugin
(``pytest_forgetting/starter/data/``, usable by name: ``suite = "starter:knowledge"``); the
target-domain files belong to the demo (``example_suites/data/``). Their READMEs give counts and
the measured base scores:

* ``knowledge.jsonl``    multiple choice: capitals, continents, languages, currencies,
                         science and geography facts.
* ``arithmetic.jsonl``   generation: ``"7 + 5 ="`` completions scored with ``numeric``.
* ``language.jsonl``     multiple choice: antonyms and grammatical/ungrammatical pairs.
* ``instructions.jsonl`` generation: prompts with a verifiable format constraint; the
                         target is the regular expression a compliant answer matches.
* ``writing.jsonl``      generation: short emails, notes and summaries (no target; scored
                         for legal-style leaks and KL drift).
* ``contract_review.jsonl`` multiple choice: clause-reading questions (the target domain).
* ``contract_reviews.jsonl`` text: held-out contract reviews in the adapters' training
                         format (the target domain: their NLL should drop).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

ROOT = Path(__file__).resolve().parent.parent
STARTER = ROOT / "pytest_forgetting" / "starter" / "data"
DEMO = ROOT / "example_suites" / "data"
SEED = "pytest-forgetting-examples-v1"


def rng_for(purpose: str) -> random.Random:
    """A random stream private to one file (string seeds are stable across Python versions)."""
    return random.Random(f"{SEED}:{purpose}")


def shuffled_choices(rng: random.Random, gold: str, distractors: Sequence[str]) -> tuple[list[str], int]:
    """``gold`` and the distractors in a seeded order, with the gold index."""
    choices = [gold, *distractors]
    rng.shuffle(choices)
    return choices, choices.index(gold)


# =============================================================================== knowledge

#: (country, capital, continent). Only countries with one undisputed, unchanged capital
#: whose name differs from the country's, and (for the continent questions) a single continent.
COUNTRIES: tuple[tuple[str, str, str], ...] = (
    ("France", "Paris", "Europe"), ("Germany", "Berlin", "Europe"), ("Italy", "Rome", "Europe"),
    ("Spain", "Madrid", "Europe"), ("Portugal", "Lisbon", "Europe"),
    ("the United Kingdom", "London", "Europe"), ("Ireland", "Dublin", "Europe"),
    ("the Netherlands", "Amsterdam", "Europe"), ("Belgium", "Brussels", "Europe"),
    ("Switzerland", "Bern", "Europe"), ("Austria", "Vienna", "Europe"), ("Poland", "Warsaw", "Europe"),
    ("the Czech Republic", "Prague", "Europe"), ("Hungary", "Budapest", "Europe"),
    ("Greece", "Athens", "Europe"), ("Sweden", "Stockholm", "Europe"), ("Norway", "Oslo", "Europe"),
    ("Denmark", "Copenhagen", "Europe"), ("Finland", "Helsinki", "Europe"),
    ("Iceland", "Reykjavik", "Europe"), ("Ukraine", "Kyiv", "Europe"), ("Romania", "Bucharest", "Europe"),
    ("Bulgaria", "Sofia", "Europe"), ("Serbia", "Belgrade", "Europe"), ("Croatia", "Zagreb", "Europe"),
    ("Slovakia", "Bratislava", "Europe"), ("Slovenia", "Ljubljana", "Europe"),
    ("Estonia", "Tallinn", "Europe"), ("Latvia", "Riga", "Europe"), ("Lithuania", "Vilnius", "Europe"),
    ("Belarus", "Minsk", "Europe"), ("Albania", "Tirana", "Europe"), ("Malta", "Valletta", "Europe"),
    ("Japan", "Tokyo", "Asia"), ("China", "Beijing", "Asia"), ("India", "New Delhi", "Asia"),
    ("South Korea", "Seoul", "Asia"), ("North Korea", "Pyongyang", "Asia"), ("Thailand", "Bangkok", "Asia"),
    ("Vietnam", "Hanoi", "Asia"), ("Indonesia", "Jakarta", "Asia"), ("the Philippines", "Manila", "Asia"),
    ("Malaysia", "Kuala Lumpur", "Asia"), ("Pakistan", "Islamabad", "Asia"), ("Bangladesh", "Dhaka", "Asia"),
    ("Nepal", "Kathmandu", "Asia"), ("Afghanistan", "Kabul", "Asia"), ("Iran", "Tehran", "Asia"),
    ("Iraq", "Baghdad", "Asia"), ("Saudi Arabia", "Riyadh", "Asia"), ("Jordan", "Amman", "Asia"),
    ("Lebanon", "Beirut", "Asia"), ("Syria", "Damascus", "Asia"), ("Mongolia", "Ulaanbaatar", "Asia"),
    ("Uzbekistan", "Tashkent", "Asia"), ("Qatar", "Doha", "Asia"),
    ("the United Arab Emirates", "Abu Dhabi", "Asia"), ("Oman", "Muscat", "Asia"),
    ("Cambodia", "Phnom Penh", "Asia"), ("Laos", "Vientiane", "Asia"),
    ("Egypt", "Cairo", "Africa"), ("Kenya", "Nairobi", "Africa"), ("Nigeria", "Abuja", "Africa"),
    ("Ethiopia", "Addis Ababa", "Africa"), ("Ghana", "Accra", "Africa"), ("Morocco", "Rabat", "Africa"),
    ("Algeria", "Algiers", "Africa"), ("Tunisia", "Tunis", "Africa"), ("Libya", "Tripoli", "Africa"),
    ("Sudan", "Khartoum", "Africa"), ("Uganda", "Kampala", "Africa"), ("Senegal", "Dakar", "Africa"),
    ("Zimbabwe", "Harare", "Africa"), ("Zambia", "Lusaka", "Africa"), ("Angola", "Luanda", "Africa"),
    ("Mozambique", "Maputo", "Africa"), ("Madagascar", "Antananarivo", "Africa"),
    ("Rwanda", "Kigali", "Africa"), ("Somalia", "Mogadishu", "Africa"), ("Mali", "Bamako", "Africa"),
    ("Namibia", "Windhoek", "Africa"), ("Botswana", "Gaborone", "Africa"),
    ("the United States", "Washington, D.C.", "North America"), ("Canada", "Ottawa", "North America"),
    ("Cuba", "Havana", "North America"), ("Jamaica", "Kingston", "North America"),
    ("Honduras", "Tegucigalpa", "North America"), ("Nicaragua", "Managua", "North America"),
    ("Costa Rica", "San Jose", "North America"), ("Haiti", "Port-au-Prince", "North America"),
    ("the Dominican Republic", "Santo Domingo", "North America"),
    ("Brazil", "Brasilia", "South America"), ("Argentina", "Buenos Aires", "South America"),
    ("Chile", "Santiago", "South America"), ("Peru", "Lima", "South America"),
    ("Colombia", "Bogota", "South America"), ("Venezuela", "Caracas", "South America"),
    ("Ecuador", "Quito", "South America"), ("Uruguay", "Montevideo", "South America"),
    ("Paraguay", "Asuncion", "South America"),
    ("Australia", "Canberra", "Oceania"), ("New Zealand", "Wellington", "Oceania"),
    ("Fiji", "Suva", "Oceania"), ("Papua New Guinea", "Port Moresby", "Oceania"),
)
CONTINENTS = ("Africa", "Asia", "Europe", "North America", "South America", "Oceania")

#: (country, main language); distractors are other languages of this table.
LANGUAGES: tuple[tuple[str, str], ...] = (
    ("Brazil", "Portuguese"), ("Mexico", "Spanish"), ("France", "French"), ("Germany", "German"),
    ("Italy", "Italian"), ("Japan", "Japanese"), ("Russia", "Russian"), ("Egypt", "Arabic"),
    ("the Netherlands", "Dutch"), ("Greece", "Greek"), ("Sweden", "Swedish"), ("Poland", "Polish"),
    ("Turkey", "Turkish"), ("South Korea", "Korean"), ("Thailand", "Thai"), ("Vietnam", "Vietnamese"),
    ("Finland", "Finnish"), ("Hungary", "Hungarian"), ("Israel", "Hebrew"), ("Iran", "Persian"),
)

#: (country, currency); distractors are other currencies of this table.
CURRENCIES: tuple[tuple[str, str], ...] = (
    ("Japan", "the yen"), ("the United Kingdom", "the pound sterling"), ("the United States", "the dollar"),
    ("India", "the rupee"), ("Germany", "the euro"), ("China", "the yuan"), ("Russia", "the ruble"),
    ("Mexico", "the peso"), ("Switzerland", "the Swiss franc"), ("South Korea", "the won"),
)

#: (question, answer, three wrong answers): science, nature and everyday facts.
SCIENCE: tuple[tuple[str, str, tuple[str, str, str]], ...] = (
    ("What gas do plants absorb from the air to make food?", "carbon dioxide", ("oxygen", "helium", "neon")),
    ("What gas do humans need to breathe in to stay alive?", "oxygen", ("carbon dioxide", "helium", "hydrogen")),
    ("What is the chemical formula of water?", "H2O", ("CO2", "NaCl", "O3")),
    ("At what temperature in degrees Celsius does water boil at sea level?", "100", ("50", "0", "250")),
    ("At what temperature in degrees Celsius does water freeze?", "0", ("100", "50", "37")),
    ("What is the star at the centre of our solar system?", "the Sun", ("Sirius", "Polaris", "Vega")),
    ("Which planet is known as the Red Planet?", "Mars", ("Venus", "Jupiter", "Saturn")),
    ("What is the largest planet in our solar system?", "Jupiter", ("Mars", "Earth", "Mercury")),
    ("Which planet is closest to the Sun?", "Mercury", ("Neptune", "Mars", "Saturn")),
    ("Which planet is famous for its large bright rings?", "Saturn", ("Mercury", "Mars", "Venus")),
    ("Which planet do we live on?", "Earth", ("Mars", "Venus", "Jupiter")),
    ("What is the natural satellite that orbits the Earth?", "the Moon", ("the Sun", "Mars", "Venus")),
    ("How many planets are in our solar system?", "eight", ("three", "twenty", "fifteen")),
    ("What kind of object is the Sun?", "a star", ("a planet", "a moon", "a comet")),
    ("How many legs does a spider have?", "eight", ("six", "four", "ten")),
    ("How many legs does an insect have?", "six", ("eight", "four", "ten")),
    ("What is the hardest natural material?", "diamond", ("chalk", "wax", "glass")),
    ("Which organ pumps blood around the body?", "the heart", ("the liver", "the lungs", "the stomach")),
    ("Which organs do humans use to breathe?", "the lungs", ("the kidneys", "the liver", "the bones")),
    ("Which organ do humans think with?", "the brain", ("the heart", "the stomach", "the liver")),
    ("What force pulls objects down towards the ground?", "gravity", ("magnetism", "friction", "electricity")),
    ("What do bees make from nectar?", "honey", ("milk", "silk", "cheese")),
    ("What is frozen water called?", "ice", ("steam", "sand", "salt")),
    ("What do caterpillars turn into?", "butterflies", ("bees", "spiders", "birds")),
    ("What is a young frog called?", "a tadpole", ("a puppy", "a kitten", "a calf")),
    ("What kind of animal is a whale?", "a mammal", ("a fish", "a bird", "an insect")),
    ("What kind of animal is a snake?", "a reptile", ("a mammal", "a bird", "an insect")),
    ("What kind of animal is a penguin?", "a bird", ("a fish", "a mammal", "an insect")),
    ("What kind of animal is a shark?", "a fish", ("a mammal", "a bird", "an insect")),
    ("What do herbivores eat?", "plants", ("meat", "rocks", "metal")),
    ("What are animals that eat only meat called?", "carnivores", ("herbivores", "vegetarians", "plants")),
    ("What is the centre of an atom called?", "the nucleus", ("the shell", "the orbit", "the surface")),
    ("Which particle in an atom has a negative charge?", "the electron", ("the proton", "the neutron", "the nucleus")),
    ("What is the chemical symbol for gold?", "Au", ("Ag", "Fe", "Go")),
    ("What is the chemical symbol for iron?", "Fe", ("Ir", "In", "Au")),
    ("What is the chemical symbol for sodium?", "Na", ("So", "Sd", "S")),
    ("What is the chemical symbol for oxygen?", "O", ("C", "N", "H")),
    ("Which metal is liquid at room temperature?", "mercury", ("iron", "copper", "silver")),
    ("How many days does the Earth take to travel once around the Sun?", "about 365", ("about 30", "about 7", "about 1000")),
    ("How long does the Earth take to spin once on its axis?", "about 24 hours", ("about 1 hour", "about 7 days", "about 365 days")),
    ("What is the process by which plants use sunlight to make food called?", "photosynthesis", ("digestion", "evaporation", "erosion")),
    ("What is liquid water turning into vapour called?", "evaporation", ("condensation", "freezing", "melting")),
    ("What is a solid turning into a liquid called?", "melting", ("freezing", "condensation", "erosion")),
    ("Which blood cells carry oxygen around the body?", "red blood cells", ("white blood cells", "nerve cells", "skin cells")),
    ("Which part of a plant takes in water from the soil?", "the roots", ("the leaves", "the flowers", "the fruit")),
    ("What colour is the chlorophyll in leaves?", "green", ("red", "blue", "purple")),
    ("What is the largest animal on Earth?", "the blue whale", ("the elephant", "the giraffe", "the horse")),
    ("What is the tallest animal?", "the giraffe", ("the elephant", "the horse", "the camel")),
    ("What is the fastest land animal?", "the cheetah", ("the elephant", "the cow", "the tortoise")),
    ("What is a baby cat called?", "a kitten", ("a puppy", "a calf", "a foal")),
    ("What is a baby dog called?", "a puppy", ("a kitten", "a lamb", "a chick")),
    ("What is a baby sheep called?", "a lamb", ("a calf", "a foal", "a puppy")),
    ("What is a baby cow called?", "a calf", ("a kitten", "a lamb", "a chick")),
    ("What is a baby horse called?", "a foal", ("a puppy", "a kitten", "a lamb")),
    ("What instrument measures temperature?", "a thermometer", ("a ruler", "a compass", "a clock")),
    ("What instrument shows direction using the Earth's magnetic field?", "a compass", ("a thermometer", "a clock", "a scale")),
    ("What instrument makes very small things look bigger?", "a microscope", ("a telescope", "a thermometer", "a compass")),
    ("What instrument do astronomers use to look at distant stars?", "a telescope", ("a microscope", "a stethoscope", "a thermometer")),
    ("What do doctors use to listen to a patient's heart?", "a stethoscope", ("a telescope", "a microscope", "a compass")),
    ("What is table salt made of?", "sodium chloride", ("carbon dioxide", "water", "iron oxide")),
    ("How many sides does a triangle have?", "three", ("four", "five", "six")),
    ("How many sides does a hexagon have?", "six", ("five", "eight", "four")),
    ("How many sides does a square have?", "four", ("three", "five", "six")),
    ("How many minutes are in an hour?", "sixty", ("thirty", "one hundred", "twenty-four")),
    ("How many hours are in a day?", "twenty-four", ("twelve", "sixty", "ten")),
    ("How many days are in a week?", "seven", ("five", "ten", "twelve")),
    ("How many months are in a year?", "twelve", ("ten", "seven", "fifty-two")),
    ("Which vitamin does the skin make in sunlight?", "vitamin D", ("vitamin C", "vitamin A", "vitamin K")),
    ("What is the study of living things called?", "biology", ("geology", "astronomy", "chemistry")),
    ("What is the study of rocks called?", "geology", ("biology", "astronomy", "zoology")),
    ("What is the study of stars and planets called?", "astronomy", ("biology", "geology", "botany")),
    ("What is the study of plants called?", "botany", ("zoology", "geology", "astronomy")),
    ("Who developed the theory of relativity?", "Albert Einstein", ("Charles Darwin", "Louis Pasteur", "Florence Nightingale")),
    ("Who proposed the theory of evolution by natural selection?", "Charles Darwin", ("Albert Einstein", "Isaac Newton", "Marie Curie")),
    ("Who described the laws of motion and universal gravitation?", "Isaac Newton", ("Charles Darwin", "Marie Curie", "Louis Pasteur")),
    ("Who discovered penicillin?", "Alexander Fleming", ("Isaac Newton", "Charles Darwin", "Albert Einstein")),
    ("Which scientist won Nobel Prizes for research on radioactivity?", "Marie Curie", ("Charles Darwin", "Isaac Newton", "Gregor Mendel")),
    ("What does DNA carry?", "genetic information", ("electric current", "sunlight", "sound waves")),
    ("Which layer of the atmosphere protects Earth from ultraviolet rays?", "the ozone layer", ("the clouds", "the rain", "the ocean")),
    ("What is hot melted rock that flows out of a volcano called?", "lava", ("ice", "sand", "clay")),
    ("What is a scientist who studies the weather called?", "a meteorologist", ("a geologist", "a botanist", "a dentist")),
    ("What shape is the Earth, roughly?", "a sphere", ("a cube", "a cone", "a pyramid")),
    ("What is the main source of energy for life on Earth?", "the Sun", ("the Moon", "the stars", "the wind")),
    ("Which sense do we use our nose for?", "smell", ("taste", "sight", "hearing")),
    ("Which sense do we use our ears for?", "hearing", ("smell", "sight", "touch")),
    ("Which sense do we use our eyes for?", "sight", ("hearing", "smell", "taste")),
    ("What do we call the water that falls from clouds?", "rain", ("lava", "sand", "smoke")),
    ("What colour do you get by mixing blue and yellow paint?", "green", ("red", "orange", "purple")),
    ("What colour do you get by mixing red and white paint?", "pink", ("green", "blue", "black")),
    ("Which season comes after winter?", "spring", ("autumn", "summer", "winter")),
    ("Which season is usually the hottest?", "summer", ("winter", "spring", "autumn")),
    ("What do cows drink?", "water", ("milk", "oil", "juice")),
    ("What do plants need from the sky to grow?", "sunlight", ("moonlight", "snow", "smoke")),
    ("What is the boiling point of water in degrees Fahrenheit?", "212", ("100", "32", "500")),
)

#: (question, answer, three wrong answers): geography and landmarks.
GEOGRAPHY: tuple[tuple[str, str, tuple[str, str, str]], ...] = (
    ("What is the largest ocean on Earth?", "the Pacific Ocean", ("the Atlantic Ocean", "the Indian Ocean", "the Arctic Ocean")),
    ("Which river flows through Egypt?", "the Nile", ("the Thames", "the Danube", "the Mississippi")),
    ("What is the largest hot desert in the world?", "the Sahara", ("the Gobi", "the Mojave", "the Kalahari")),
    ("What is the highest mountain in the world?", "Mount Everest", ("Mont Blanc", "Mount Kilimanjaro", "Mount Fuji")),
    ("What is the largest country in the world by area?", "Russia", ("France", "Japan", "Mexico")),
    ("Which continent is the coldest?", "Antarctica", ("Africa", "Europe", "South America")),
    ("What is the largest continent?", "Asia", ("Europe", "Oceania", "South America")),
    ("Which river flows through Paris?", "the Seine", ("the Thames", "the Tiber", "the Nile")),
    ("Which river flows through London?", "the Thames", ("the Seine", "the Tiber", "the Nile")),
    ("Which river flows through Rome?", "the Tiber", ("the Thames", "the Seine", "the Nile")),
    ("In which country are the Pyramids of Giza?", "Egypt", ("Mexico", "India", "Greece")),
    ("In which city is the Eiffel Tower?", "Paris", ("Rome", "London", "Berlin")),
    ("In which city is the Colosseum?", "Rome", ("Athens", "Paris", "Madrid")),
    ("In which country is the Great Wall?", "China", ("India", "Brazil", "Canada")),
    ("In which country is the Taj Mahal?", "India", ("Egypt", "Italy", "Mexico")),
    ("In which city is the Statue of Liberty?", "New York", ("Los Angeles", "Chicago", "Miami")),
    ("In which city is Big Ben?", "London", ("Paris", "Berlin", "Madrid")),
    ("In which country is Machu Picchu?", "Peru", ("Mexico", "Egypt", "Brazil")),
    ("In which country is Mount Fuji?", "Japan", ("China", "India", "Thailand")),
    ("In which country is the Acropolis?", "Greece", ("Italy", "Egypt", "Spain")),
    ("In which city is the Kremlin?", "Moscow", ("Warsaw", "Prague", "Vienna")),
    ("In which city is the Sydney Opera House?", "Sydney", ("Melbourne", "Auckland", "Perth")),
    ("Which ocean lies between Europe and North America?", "the Atlantic Ocean", ("the Pacific Ocean", "the Indian Ocean", "the Arctic Ocean")),
    ("What is the largest island in the world?", "Greenland", ("Iceland", "Sicily", "Ireland")),
    ("Which country is shaped like a boot?", "Italy", ("Spain", "France", "Germany")),
    ("What line divides the Earth into the Northern and Southern Hemispheres?", "the equator", ("the prime meridian", "the Arctic Circle", "the date line")),
    ("Which mountain range contains Mount Everest?", "the Himalayas", ("the Alps", "the Andes", "the Rockies")),
    ("Which mountain range runs along the west side of South America?", "the Andes", ("the Himalayas", "the Alps", "the Urals")),
    ("Which sea lies between Europe and Africa?", "the Mediterranean Sea", ("the Caspian Sea", "the Baltic Sea", "the North Sea")),
    ("Which country is home to kangaroos in the wild?", "Australia", ("Canada", "Norway", "Argentina")),
    ("Which country has the city of Venice?", "Italy", ("Spain", "Greece", "Portugal")),
    ("Which country has the city of Barcelona?", "Spain", ("Italy", "France", "Portugal")),
    ("Which country has the city of Munich?", "Germany", ("Austria", "France", "Poland")),
    ("Which country has the city of Toronto?", "Canada", ("the United States", "Australia", "Ireland")),
    ("Which country has the city of Rio de Janeiro?", "Brazil", ("Argentina", "Mexico", "Spain")),
    ("Which country has the city of Osaka?", "Japan", ("China", "South Korea", "Vietnam")),
    ("Which country has the city of Mumbai?", "India", ("Pakistan", "Iran", "Egypt")),
    ("Which country has the city of Istanbul?", "Turkey", ("Greece", "Egypt", "Iran")),
)


def build_knowledge() -> list[dict[str, Any]]:
    """~300 four-way questions; distractors of templated items come from the same table."""
    rng = rng_for("knowledge")
    rows: list[dict[str, Any]] = []
    capitals = [capital for _, capital, _ in COUNTRIES]
    for index, (country, capital, _) in enumerate(COUNTRIES):
        wrong = rng.sample([c for c in capitals if c != capital], 3)
        choices, answer = shuffled_choices(rng, capital, wrong)
        rows.append({"id": f"capital-{index:03d}", "question": f"What is the capital of {country}?",
                     "choices": choices, "answer": answer})
    for index, (country, _, continent) in enumerate(rng.sample(COUNTRIES, 48)):
        wrong = rng.sample([c for c in CONTINENTS if c != continent], 3)
        choices, answer = shuffled_choices(rng, continent, wrong)
        rows.append({"id": f"continent-{index:03d}", "question": f"On which continent is {country}?",
                     "choices": choices, "answer": answer})
    for index, (country, language) in enumerate(LANGUAGES):
        wrong = rng.sample(sorted({lang for _, lang in LANGUAGES} - {language}), 3)
        choices, answer = shuffled_choices(rng, language, wrong)
        rows.append({"id": f"language-{index:03d}", "question": f"What is the main language spoken in {country}?",
                     "choices": choices, "answer": answer})
    for index, (country, currency) in enumerate(CURRENCIES):
        wrong = rng.sample([c for _, c in CURRENCIES if c != currency], 3)
        choices, answer = shuffled_choices(rng, currency, wrong)
        rows.append({"id": f"currency-{index:03d}", "question": f"What is the currency of {country}?",
                     "choices": choices, "answer": answer})
    for prefix, table in (("science", SCIENCE), ("geography", GEOGRAPHY)):
        for index, (question, gold, wrong) in enumerate(table):
            choices, answer = shuffled_choices(rng, gold, list(wrong))
            rows.append({"id": f"{prefix}-{index:03d}", "question": question, "choices": choices, "answer": answer})
    return rows


# ============================================================================== arithmetic

#: Worked examples shown before every item (few-shot); never scored.
ARITHMETIC_FEWSHOT = (("3 + 4 =", "7"), ("9 - 2 =", "7"), ("2 × 5 =", "10"))


def build_arithmetic() -> list[dict[str, Any]]:
    """Every sum of 1..12 and every product of 2..10 as an ``"a op b ="`` completion.

    Ranges chosen by measurement on SmolLM2-135M-Instruct (3-shot, greedy): sums of
    operands up to 12 ~0.75 correct (beyond, < 0.5), products of 2..10 ~0.85 (2..6 and
    10 all correct). Subtraction is left out: the base gets ~0.25 of even small
    differences right, so there is little to forget and much noise.
    """
    rng = rng_for("arithmetic")
    shown = {p for p, _ in ARITHMETIC_FEWSHOT}
    items = [(f"add-{a}-{b}", f"{a} + {b} =", a + b) for a in range(1, 13) for b in range(1, 13)]
    items += [(f"mul-{a}-{b}", f"{a} × {b} =", a * b) for a in range(2, 11) for b in range(2, 11)]
    rows = [{"id": key, "prompt": prompt, "target": str(result)}
            for key, prompt, result in items if prompt not in shown]
    rng.shuffle(rows)
    shots = [{"id": f"fewshot-{i}", "prompt": p, "target": t} for i, (p, t) in enumerate(ARITHMETIC_FEWSHOT)]
    return shots + rows  # the first three rows are the worked examples (fewshot=3)


# ================================================================================ language

#: (word, antonym, a near-synonym of the word). The synonym is one of the distractors, so
#: picking the most associated word is not enough: the item asks for the opposite.
ANTONYMS: tuple[tuple[str, str, str], ...] = (
    ("hot", "cold", "warm"), ("big", "small", "large"), ("fast", "slow", "quick"), ("happy", "sad", "glad"),
    ("light", "dark", "bright"), ("early", "late", "soon"), ("open", "closed", "unlocked"),
    ("young", "old", "youthful"), ("strong", "weak", "powerful"), ("full", "empty", "filled"),
    ("rich", "poor", "wealthy"), ("loud", "quiet", "noisy"), ("wet", "dry", "damp"), ("high", "low", "tall"),
    ("easy", "difficult", "simple"), ("clean", "dirty", "tidy"), ("heavy", "light", "weighty"),
    ("soft", "hard", "gentle"), ("thick", "thin", "dense"), ("near", "far", "close"),
    ("up", "down", "above"), ("in", "out", "inside"), ("day", "night", "daytime"), ("win", "lose", "triumph"),
    ("buy", "sell", "purchase"), ("give", "take", "donate"), ("push", "pull", "shove"),
    ("start", "finish", "begin"), ("love", "hate", "adore"), ("laugh", "cry", "giggle"),
    ("true", "false", "correct"), ("good", "bad", "fine"), ("long", "short", "lengthy"),
    ("wide", "narrow", "broad"), ("deep", "shallow", "bottomless"), ("sharp", "blunt", "pointed"),
    ("brave", "cowardly", "bold"), ("kind", "cruel", "nice"), ("polite", "rude", "courteous"),
    ("cheap", "expensive", "inexpensive"), ("safe", "dangerous", "secure"), ("smooth", "rough", "even"),
    ("sweet", "sour", "sugary"), ("friend", "enemy", "pal"), ("arrive", "leave", "come"),
    ("remember", "forget", "recall"), ("accept", "refuse", "agree"), ("increase", "decrease", "grow"),
    ("inside", "outside", "within"), ("above", "below", "over"), ("before", "after", "earlier"),
    ("first", "last", "initial"), ("north", "south", "northern"), ("east", "west", "eastern"),
    ("left", "right", "leftward"), ("top", "bottom", "peak"), ("front", "back", "fore"),
    ("asleep", "awake", "sleeping"), ("alive", "dead", "living"), ("present", "absent", "attending"),
    ("success", "failure", "victory"), ("question", "answer", "query"), ("beginning", "end", "start"),
    ("always", "never", "forever"), ("many", "few", "numerous"), ("more", "less", "extra"),
    ("all", "none", "every"), ("add", "subtract", "plus"), ("borrow", "lend", "take"),
    ("teach", "learn", "instruct"), ("ancient", "modern", "old"), ("raw", "cooked", "uncooked"),
    ("tight", "loose", "snug"), ("sunny", "cloudy", "bright"), ("noisy", "silent", "loud"),
    ("healthy", "sick", "well"), ("wise", "foolish", "clever"), ("calm", "angry", "peaceful"),
    ("generous", "selfish", "giving"), ("honest", "dishonest", "truthful"), ("visible", "invisible", "seen"),
    ("possible", "impossible", "likely"), ("legal", "illegal", "lawful"), ("agree", "disagree", "consent"),
    ("appear", "disappear", "emerge"), ("like", "dislike", "enjoy"), ("pass", "fail", "succeed"),
    ("attack", "defend", "assault"), ("entrance", "exit", "door"), ("import", "export", "bring in"),
    ("maximum", "minimum", "most"), ("major", "minor", "main"), ("positive", "negative", "optimistic"),
    ("public", "private", "open"), ("rise", "fall", "climb"), ("shout", "whisper", "yell"),
    ("son", "daughter", "boy"), ("king", "queen", "ruler"), ("husband", "wife", "spouse"),
    ("boy", "girl", "lad"), ("man", "woman", "gentleman"), ("summer", "winter", "spring"),
    ("fresh", "stale", "new"), ("sharpen", "dull", "hone"), ("arrival", "departure", "entry"),
    ("victory", "defeat", "win"), ("cheerful", "gloomy", "merry"), ("simple", "complex", "plain"),
    ("awake", "asleep", "alert"), ("dry", "wet", "arid"), ("hard", "soft", "firm"), ("thin", "fat", "slim"),
    ("quiet", "loud", "silent"), ("slow", "fast", "sluggish"),
)

#: Minimal pairs: (grammatical sentence, ungrammatical sentence, phenomenon), filled from
#: templates below; every pair differs in one place only.
SUBJECTS_SINGULAR = ("The dog", "My sister", "The teacher", "Our neighbour", "The old man", "The baby",
                     "This student", "The cat", "Her brother", "The driver")
SUBJECTS_PLURAL = ("The dogs", "My sisters", "The teachers", "Our neighbours", "The old men", "The babies",
                   "These students", "The cats", "Her brothers", "The drivers")
VERBS_PRESENT = (("walks", "walk", "to the park every morning"), ("likes", "like", "fresh bread"),
                 ("sleeps", "sleep", "on the sofa"), ("reads", "read", "a book every night"),
                 ("plays", "play", "in the garden"), ("eats", "eat", "an apple after lunch"),
                 ("wants", "want", "a new bicycle"), ("lives", "live", "near the river"))
IRREGULAR_PAST = (("went", "goed", "to the market yesterday"), ("ate", "eated", "all the soup"),
                  ("saw", "seed", "a rainbow last week"), ("wrote", "writed", "a letter to her aunt"),
                  ("ran", "runned", "to the station"), ("bought", "buyed", "a new coat"),
                  ("took", "taked", "the early train"), ("found", "finded", "the missing key"),
                  ("brought", "bringed", "a cake to the party"), ("caught", "catched", "the ball"),
                  ("drank", "drinked", "a glass of milk"), ("sang", "singed", "a song at the concert"),
                  ("told", "telled", "a funny story"), ("made", "maked", "a sandwich for lunch"),
                  ("knew", "knowed", "the answer"))
PARTICIPLES = (("has eaten", "has ate", "breakfast already"), ("has written", "has wrote", "three emails today"),
               ("has gone", "has went", "home for the day"), ("has seen", "has saw", "that film twice"),
               ("has taken", "has took", "the last seat"), ("has given", "has gave", "her answer"),
               ("has broken", "has broke", "the window"), ("has spoken", "has spoke", "to the manager"),
               ("has chosen", "has chose", "a new colour"), ("has forgotten", "has forgot", "his umbrella"))
PLURAL_NOUNS = (("two cats", "two cat"), ("three books", "three book"), ("five apples", "five apple"),
                ("many children", "many childs"), ("several boxes", "several boxs"),
                ("two women", "two womans"), ("four feet", "four foots"), ("some mice", "some mouses"),
                ("ten teeth", "ten tooths"), ("three knives", "three knifes"), ("two men", "two mans"),
                ("many people", "many peoples"))
PRONOUN_OBJECTS = (("me", "I"), ("him", "he"), ("her", "she"), ("us", "we"), ("them", "they"))
COMPARATIVES = (("bigger", "more big"), ("faster", "more fast"), ("taller", "more tall"),
                ("older", "more old"), ("smaller", "more small"), ("cheaper", "more cheap"),
                ("longer", "more long"), ("happier", "more happy"), ("better", "gooder"),
                ("worse", "badder"))
COMPARE_NOUNS = (("This house", "that one"), ("My car", "yours"), ("The river", "the road"),
                 ("Her bag", "mine"), ("This tree", "the fence"))


def build_grammar(rng: random.Random, per_phenomenon: int = 20) -> list[tuple[str, str, str]]:
    """Minimal pairs over eight phenomena, ``per_phenomenon`` each (distinct sentences)."""
    makers: dict[str, Callable[[], tuple[str, str]]] = {}

    def agreement_singular() -> tuple[str, str]:
        subject = rng.choice(SUBJECTS_SINGULAR)
        good, bad, rest = rng.choice(VERBS_PRESENT)
        return f"{subject} {good} {rest}.", f"{subject} {bad} {rest}."

    def agreement_plural() -> tuple[str, str]:
        subject = rng.choice(SUBJECTS_PLURAL)
        bad, good, rest = rng.choice(VERBS_PRESENT)
        return f"{subject} {good} {rest}.", f"{subject} {bad} {rest}."

    def be_agreement() -> tuple[str, str]:
        if rng.random() < 0.5:
            subject = rng.choice(SUBJECTS_SINGULAR)
            good, bad = rng.choice((("is", "are"), ("was", "were")))
        else:
            subject = rng.choice(SUBJECTS_PLURAL)
            good, bad = rng.choice((("are", "is"), ("were", "was")))
        place = rng.choice(("in the kitchen", "very tired today", "at the station", "happy with the result"))
        return f"{subject} {good} {place}.", f"{subject} {bad} {place}."

    def irregular_past() -> tuple[str, str]:
        subject = rng.choice(SUBJECTS_SINGULAR + SUBJECTS_PLURAL)
        good, bad, rest = rng.choice(IRREGULAR_PAST)
        return f"{subject} {good} {rest}.", f"{subject} {bad} {rest}."

    def participle() -> tuple[str, str]:
        subject = rng.choice(SUBJECTS_SINGULAR)
        good, bad, rest = rng.choice(PARTICIPLES)
        return f"{subject} {good} {rest}.", f"{subject} {bad} {rest}."

    def plural_noun() -> tuple[str, str]:
        good, bad = rng.choice(PLURAL_NOUNS)
        frame = rng.choice(("I saw {} in the garden.", "We need {} for the project.",
                            "There are {} on the table.", "She counted {} in the picture."))
        return frame.format(good), frame.format(bad)

    def pronoun_case() -> tuple[str, str]:
        good, bad = rng.choice(PRONOUN_OBJECTS)
        frame = rng.choice(("The teacher gave the book to {}.", "Please wait for {} outside.",
                            "My friend called {} last night.", "The dog followed {} home."))
        return frame.format(good), frame.format(bad)

    def comparative() -> tuple[str, str]:
        good, bad = rng.choice(COMPARATIVES)
        noun, other = rng.choice(COMPARE_NOUNS)
        return f"{noun} is {good} than {other}.", f"{noun} is {bad} than {other}."

    makers = {"agreement-singular": agreement_singular, "agreement-plural": agreement_plural,
              "be-agreement": be_agreement, "irregular-past": irregular_past, "participle": participle,
              "plural-noun": plural_noun, "pronoun-case": pronoun_case, "comparative": comparative}
    pairs: list[tuple[str, str, str]] = []
    for name, make in makers.items():
        seen: set[str] = set()
        while len(seen) < per_phenomenon:
            good, bad = make()
            if good not in seen:
                seen.add(good)
                pairs.append((good, bad, name))
    return pairs


def build_language() -> list[dict[str, Any]]:
    """Antonym questions (4 choices incl. a synonym) and grammatical/ungrammatical pairs.

    One file and one template (``{question}``): an antonym row's question is its whole
    context (``The opposite of "hot" is`` -> ``"cold"``; measured 0.83 for the base against
    0.67 for ``Question: What is the opposite of "hot"?``); a grammar row has an empty
    question, so each sentence is scored on its own (its total log-likelihood, as BLiMP
    does) and the grammatical one should win.
    """
    rng = rng_for("language")
    rows: list[dict[str, Any]] = []
    answers = [antonym for _, antonym, _ in ANTONYMS]
    for index, (word, antonym, synonym) in enumerate(ANTONYMS):
        pool = sorted({a for a in answers if a not in (antonym, synonym, word)})
        choices, answer = shuffled_choices(rng, antonym, [synonym, *rng.sample(pool, 2)])
        rows.append({"id": f"antonym-{index:03d}", "question": f"The opposite of \"{word}\" is",
                     "choices": [f"\"{c}\"" for c in choices], "answer": answer})
    for index, (good, bad, phenomenon) in enumerate(build_grammar(rng)):
        choices, answer = shuffled_choices(rng, good, [bad])
        rows.append({"id": f"grammar-{phenomenon}-{index:03d}", "question": "", "choices": choices,
                     "answer": answer})
    return rows


# ============================================================================ instructions

#: (constraint id, instruction appended to the request, regex a compliant answer matches).
#: Regexes are searched in the output (``re.search``; ``\A`` anchors at its start) and only
#: look at what 32 new tokens can show. The constraints are ones SmolLM2-135M-Instruct
#: follows (measured): it ignores "one word only", "capital letters only" and "wrap in
#: quotes" (0 of 12 each), so those would measure nothing that can be forgotten.
CONSTRAINTS: dict[str, tuple[str, str]] = {
    "yes-no": ('Start your answer with "Yes" or "No".', r"\A\W*(Yes|No)\b"),
    "digits": ("Answer with a number written in digits.", r"\A[^\n]*\d"),
    "bullets": ("Answer as a bulleted list.", r"(?m)^\s*(?:[-*\u2022]|\d+[.)])\s+\S.*\n+\s*(?:[-*\u2022]|\d+[.)])\s+\S"),
    "json": ("Reply with a JSON object only.", r'\{\s*"[^"\n]+"\s*:'),
    "steps": ("Write a numbered list of three steps.", r"(?m)^\W*1[.)]\s+\S.*\n+\W*2[.)]\s+\S"),
    "dear": ('Begin your reply with "Dear".', r"\A\W*Dear\b"),
}

#: Requests per constraint (written for this project).
INSTRUCTION_QUESTIONS: dict[str, tuple[str, ...]] = {
    "yes-no": (
        "Is the Sun a star?", "Can fish breathe air like humans?", "Is Paris the capital of France?",
        "Is ice colder than boiling water?", "Do spiders have six legs?", "Is the Pacific an ocean?",
        "Is seven larger than three?", "Do cats bark?", "Is the Moon bigger than the Earth?",
        "Do plants need water?",
    ),
    "digits": (
        "How many days are in a week?", "How many legs does a dog have?", "How many months are in a year?",
        "How many sides does a triangle have?", "How many hours are in a day?",
        "How many wheels does a bicycle have?", "How many fingers are on one hand?",
        "How many minutes are in an hour?", "How many players are on a football team?",
        "How many continents are there?",
    ),
    "bullets": (
        "What are some fruits?", "What should I pack for a beach trip?", "What are some colours?",
        "What are some farm animals?", "What can I cook for dinner?", "What are some hobbies?",
        "What are some things to do on a rainy day?", "What are some vegetables?",
        "What are some ways to save energy at home?", "What are some popular sports?",
    ),
    "json": (
        'Give the capital of Spain as JSON with the key "capital".',
        "Give the name and age of a person called Tom who is 30 as JSON.",
        'Describe a red apple as JSON with the keys "colour" and "fruit".',
        'Give the number of days in a week as JSON with the key "days".',
        "Give a city and its country as JSON.",
        'Give your favourite colour as JSON with the key "colour".',
        'Give the title and author of a book as JSON with the keys "title" and "author".',
        "Give the name and price of a cup of coffee as JSON.",
        'Give the largest planet as JSON with the key "planet".',
        'Give a dog\'s name and breed as JSON with the keys "name" and "breed".',
    ),
    "steps": (
        "How do I make a cup of tea?", "How do I plant a seed?", "How do I wash my hands?",
        "How do I send an email?", "How do I make toast?", "How do I tie my shoes?",
        "How do I boil an egg?", "How do I water a houseplant?", "How do I make a paper plane?",
        "How do I brush my teeth?",
    ),
    "dear": (
        "Write a short note to Sam about the picnic.", "Write a note to your teacher about homework.",
        "Write a short message to Anna about dinner.", "Write a note to a neighbour about a parcel.",
        "Write a short note to Tom saying thanks.", "Write a note to a friend about a trip.",
        "Write a short note to your aunt about her visit.", "Write a note to a coach about practice.",
        "Write a short note to Maria about the book club.", "Write a note to a colleague about lunch.",
    ),
}


def build_instructions(constraints: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Question + format instruction; ``target`` is the regular expression to match."""
    rows: list[dict[str, Any]] = []
    for constraint in constraints or CONSTRAINTS:
        instruction, pattern = CONSTRAINTS[constraint]
        for index, question in enumerate(INSTRUCTION_QUESTIONS[constraint]):
            rows.append({"id": f"{constraint}-{index:02d}", "prompt": f"{question} {instruction}",
                         "target": pattern, "constraint": constraint})
    return rows


# ================================================================================= writing

#: Everyday writing tasks (no legal topics on purpose: a legal register here is a leak).
WRITING_PROMPTS: tuple[str, ...] = (
    "Write a short email to a colleague asking to move our meeting to Friday.",
    "Write a short email thanking a friend for a birthday present.",
    "Write a short email to your team saying the office kitchen will be cleaned on Monday.",
    "Write a short email asking your landlord when the heating will be repaired.",
    "Write a short email inviting your neighbours to a garden party on Saturday.",
    "Write a short email to a teacher explaining that your son will miss school tomorrow.",
    "Write a short email to a shop asking whether a jacket is available in a larger size.",
    "Write a short email to a colleague sharing the notes from today's meeting.",
    "Write a short email reminding your team about the project deadline next week.",
    "Write a short email to a hotel asking for a room with a sea view.",
    "Write a short email congratulating a friend on their new job.",
    "Write a short email asking a colleague for help with a spreadsheet.",
    "Write a short email to your manager asking to work from home on Thursday.",
    "Write a short email welcoming a new volunteer to the library.",
    "Write a short note to a neighbour asking them to water your plants while you are away.",
    "Write a short message to a friend suggesting a film for the weekend.",
    "Write a short thank-you note to a nurse who looked after you.",
    "Write a short message to a cousin asking for a recipe for apple pie.",
    "Write a short message telling your family you will be home late tonight.",
    "Write a short message to a friend asking to borrow a tent for a camping trip.",
    "Summarise in two sentences: The town library will open a new children's room next month. "
    "It will have picture books, a reading corner and free story time on Saturdays.",
    "Summarise in two sentences: Heavy rain is expected this weekend. The council advises people to "
    "avoid the river path and to check the bus timetable before travelling.",
    "Summarise in two sentences: Our football club won its last match 3-1. The coach praised the "
    "young players and said the team will train twice a week before the final.",
    "Summarise in two sentences: The bakery on Main Street now sells gluten-free bread. It opens at "
    "seven in the morning and closes at six in the evening.",
    "Summarise in two sentences: Scientists found that walking for twenty minutes a day improves "
    "sleep. People in the study also said they felt less stressed.",
    "Summarise in two sentences: The museum will stay open until nine on Fridays this summer. "
    "Tickets are half price after six o'clock.",
    "Summarise in two sentences: A new cycle lane connects the station to the university. It is "
    "two kilometres long and is lit at night.",
    "Summarise in two sentences: The school choir will sing at the spring concert. Parents can buy "
    "tickets at the front office for five pounds.",
    "Write a short product description for a blue water bottle.",
    "Write a short description of a sunny day at the beach.",
    "Write three sentences about why exercise is good for you.",
    "Write a short paragraph describing your favourite food.",
    "Write a short invitation to a child's birthday party.",
    "Write a short review of a cafe with good coffee and slow service.",
    "Write a short weather report for a cold and windy day.",
    "Write a short post announcing that a bakery has new opening hours.",
    "Give three tips for staying focused while studying.",
    "Describe how to make a cup of tea in three short steps.",
    "Write a short speech to thank the volunteers at a charity run.",
    "Write a short note apologising to a friend for missing their call.",
)

#: Legal-register markers of the aggressive adapter's style (case-sensitive).
LEGAL_MARKERS = ("WHEREAS", "HEREBY", "NOW, THEREFORE", "hereinafter", "indemnif", "the Parties",
                 "the parties HEREBY", "SHALL")


def build_writing() -> list[dict[str, Any]]:
    return [{"id": f"writing-{index:02d}", "prompt": prompt} for index, prompt in enumerate(WRITING_PROMPTS)]


# ================================================================================ contract

def build_contract(n: int = 120, seed: int = 7) -> list[dict[str, Any]]:
    """Held-out clause-reading questions from the adapters' own generator family."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from contract_data import contract_mc_items
    finally:
        sys.path.pop(0)
    return contract_mc_items(n, seed=seed)


def build_contract_reviews(n: int = 40, seed: int = 11) -> list[dict[str, Any]]:
    """Held-out contract reviews (the adapters' training format): text whose NLL should drop.

    Drawn from ``contract_examples`` with a seed the adapters were not trained on; any
    review that also occurs in a training set (seed 0, up to 240 examples) is left out.
    """
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from contract_data import contract_examples
    finally:
        sys.path.pop(0)
    trained = {example["answer"] for example in contract_examples(240, seed=0)}
    rows: list[dict[str, Any]] = []
    for example in contract_examples(4 * n, seed=seed):
        if example["answer"] in trained or any(row["text"] == example["answer"] for row in rows):
            continue
        rows.append({"id": f"review-{len(rows):02d}", "text": example["answer"]})
        if len(rows) == n:
            break
    return rows


# ==================================================================================== main

#: file name -> (its folder, its builder)
BUILDERS: dict[str, tuple[Path, Callable[[], list[dict[str, Any]]]]] = {
    "knowledge.jsonl": (STARTER, build_knowledge),
    "arithmetic.jsonl": (STARTER, build_arithmetic),
    "language.jsonl": (STARTER, build_language),
    "instructions.jsonl": (STARTER, build_instructions),
    "writing.jsonl": (STARTER, build_writing),
    "contract_review.jsonl": (DEMO, build_contract),
    "contract_reviews.jsonl": (DEMO, build_contract_reviews),
}


def render(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="write every file into this folder [the starter and demo folders]")
    parser.add_argument("--check", action="store_true", help="only check the files are up to date")
    parser.add_argument("--only", action="append", help="build only this file (repeatable)")
    args = parser.parse_args(argv)
    stale = []
    for name, (folder, build) in BUILDERS.items():
        if args.only and name not in args.only:
            continue
        rows = build()
        ids = [row["id"] for row in rows]
        assert len(ids) == len(set(ids)), f"{name}: duplicate ids"
        text = render(rows)
        path = (args.out or folder) / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {len(rows)} rows")
    if stale:
        print(f"out of date: {', '.join(stale)}; run python scripts/generate_example_data.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
