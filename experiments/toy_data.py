"""
Writes the project's own small multilingual NER dataset (two toy languages, "es" and "nl"), so
that the configs and ``make demo`` run offline on any machine.

The toy languages are generated from templates with ambiguous names (the same word is a LOC after
"in"/"en" and an ORG before a verb such as "announced"), multi-word entities and random filler, so
that context matters and a stronger teacher measurably beats a weaker student. CoNLL-2002 layout:
``word tag`` per line (IOB2), blank line between sentences.

    python -m experiments.toy_data --output training_configs/sample_data [--seed 7] [--train 300 --dev 100 --unlabeled 300 --noise 0.05]
"""
import argparse
import os
import random
from typing import List, Tuple

LEXICON = {
    "es": {
        "first": ["Juan", "María", "Carlos", "Lucía", "Pedro", "Ana", "Jorge", "Elena", "Luis", "Sofía", "Diego", "Marta"],
        "last": ["García", "del Río", "López", "Martínez", "Sánchez", "Pérez", "Gómez", "Ruiz", "Díaz", "Moreno", "Romero"],
        "place": ["Madrid", "Sevilla", "Valencia", "Bilbao", "Granada", "Toledo", "Murcia", "Cádiz", "Vigo", "Lugo"],
        "org_head": ["Banco", "Grupo", "Instituto", "Consejo", "Real"],
        "org_tail": ["Santander", "Nacional", "Europeo", "Ibérico", "Central"],
        "misc": ["Mundial", "Copa", "Eurocopa", "Liga", "Tour"],
        "in": "en", "and": "y", "the": "el", "of": "de", "said": "dijo", "visited": "visitó",
        "announced": "anunció", "won": "ganó", "met": "conoció", "yesterday": "ayer", "that": "que",
        "fillers": ["la", "una", "nueva", "gran", "reunión", "semana", "ciudad", "empresa", "ayer", "hoy", "mañana", "pronto"],
    },
    "nl": {
        "first": ["Jan", "Anna", "Pieter", "Sanne", "Koen", "Lotte", "Bram", "Eva", "Daan", "Femke", "Joost", "Iris"],
        "last": ["Jansen", "de Vries", "Peeters", "Bakker", "Visser", "Smit", "Mertens", "Dekker", "Claes", "Maes"],
        "place": ["Gent", "Utrecht", "Leuven", "Delft", "Brugge", "Haarlem", "Antwerpen", "Breda", "Mechelen", "Zwolle"],
        "org_head": ["Bank", "Groep", "Instituut", "Raad", "Koninklijke"],
        "org_tail": ["Brabant", "Nationaal", "Europa", "Noord", "Centraal"],
        "misc": ["Wereldbeker", "Beker", "EK", "Eredivisie", "Ronde"],
        "in": "in", "and": "en", "the": "de", "of": "van", "said": "zei", "visited": "bezocht",
        "announced": "meldde", "won": "won", "met": "ontmoette", "yesterday": "gisteren", "that": "dat",
        "fillers": ["het", "een", "nieuwe", "grote", "vergadering", "week", "stad", "bedrijf", "vandaag", "morgen", "snel", "later"],
    },
}

SYLLABLES = ["ba", "ce", "di", "lo", "mu", "ra", "te", "vi", "zo", "ne", "ka", "pe", "ri", "sa", "go", "fa"]
PLACE_SUFFIX = {"es": ["illa", "ejo", "ana", "ares"], "nl": ["dam", "burg", "hoven", "sel"]}

Tagged = List[Tuple[str, str]]


def _invented(rng, suffix: str = "") -> str:
    """A capitalised word never seen in the lexicon: names in dev must be read from characters."""
    return ("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 2))) + suffix).capitalize()


def _entity(words: List[str], kind: str) -> Tagged:
    return [(w, ("B-" if i == 0 else "I-") + kind) for i, w in enumerate(words)]


def _place_name(lang, lex, rng) -> str:
    return rng.choice(lex["place"]) if rng.random() < 0.6 else _invented(rng, rng.choice(PLACE_SUFFIX[lang]))


def _person(lang, lex, rng) -> Tagged:
    words = [rng.choice(lex["first"]) if rng.random() < 0.8 else _invented(rng)]
    if rng.random() < 0.7:
        words += rng.choice(lex["last"]).split() if rng.random() < 0.6 else [_invented(rng, "ez" if lang == "es" else "s")]
    return _entity(words, "PER")


def _org(lang, lex, rng) -> Tagged:
    if rng.random() < 0.4:  # an ambiguous place name used as an organisation (a club, a city council)
        return _entity([_place_name(lang, lex, rng)], "ORG")
    tail = rng.choice(lex["org_tail"]) if rng.random() < 0.6 else _invented(rng)
    return _entity([rng.choice(lex["org_head"]), tail], "ORG")


def _filler(lex, rng, count) -> Tagged:
    return [(rng.choice(lex["fillers"]), "O") for _ in range(count)]


def sentence(lang: str, rng: random.Random, noise: float = 0.0) -> Tagged:
    """One sentence; with probability ``noise`` each entity's type is replaced at random (annotation noise)."""
    lex = LEXICON[lang]
    o = lambda word: [(lex[word], "O")]  # noqa: E731
    place = lambda: _entity([_place_name(lang, lex, rng)], "LOC")  # noqa: E731
    words = _template(lang, lex, rng, o, place)
    if noise:
        noisy = []
        kind = ""
        for word, tag in words:
            if tag.startswith("B-"):
                kind = rng.choice(["PER", "LOC", "ORG", "MISC"]) if rng.random() < noise else tag[2:]
            noisy.append((word, tag if tag == "O" else tag[:2] + kind))
        words = noisy
    return words + [(".", "O")]


def _template(lang, lex, rng, o, place) -> Tagged:
    template = rng.randrange(6)
    if template == 0:
        words = _person(lang, lex, rng) + o("visited") + place() + _filler(lex, rng, rng.randint(0, 2))
    elif template == 1:
        words = _org(lang, lex, rng) + o("announced") + o("that") + _person(lang, lex, rng) + o("visited") + place()
    elif template == 2:
        words = o("yesterday") + o("in") + place() + _person(lang, lex, rng) + o("met") + _person(lang, lex, rng)
    elif template == 3:
        words = _org(lang, lex, rng) + o("won") + o("the") + _entity([rng.choice(lex["misc"])], "MISC") + o("in") + place()
    elif template == 4:
        words = _filler(lex, rng, rng.randint(1, 3)) + o("of") + _org(lang, lex, rng) + o("said") + o("that") + _filler(lex, rng, 2)
    else:
        words = _person(lang, lex, rng) + o("and") + _person(lang, lex, rng) + o("said") + o("in") + place()
    return words


def write(path: str, sentences: List[Tagged]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        for tagged in sentences:
            for word, tag in tagged:
                handle.write(f"{word} {tag}\n")
            handle.write("\n")
    os.replace(tmp, path)


def generate(output: str, seed: int = 7, train: int = 300, dev: int = 100, unlabeled: int = 300, noise: float = 0.05) -> None:
    """Training sentences carry ``noise`` (annotation noise); dev sentences are clean."""
    os.makedirs(output, exist_ok=True)
    for offset, lang in enumerate(sorted(LEXICON)):
        rng = random.Random(seed * 1000 + offset)
        write(os.path.join(output, f"toy_ner_{lang}.train"), [sentence(lang, rng, noise) for _ in range(train)])
        write(os.path.join(output, f"toy_ner_{lang}.dev"), [sentence(lang, rng) for _ in range(dev)])
        path = os.path.join(output, f"toy_unlabeled_{lang}.txt")
        with open(path + ".tmp", "w", encoding="utf-8") as handle:
            for _ in range(unlabeled):
                handle.write(" ".join(w for w, _ in sentence(lang, rng)) + "\n")
        os.replace(path + ".tmp", path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--train", type=int, default=300)
    parser.add_argument("--dev", type=int, default=100)
    parser.add_argument("--unlabeled", type=int, default=300)
    parser.add_argument("--noise", type=float, default=0.05, help="annotation noise of the training sentences")
    args = parser.parse_args()
    generate(args.output, args.seed, args.train, args.dev, args.unlabeled, args.noise)
    print(f"wrote the toy NER dataset (seed {args.seed}) to {args.output}")


if __name__ == "__main__":
    main()
