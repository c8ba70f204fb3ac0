"""GLUE-format TSVs for all eight tasks, built from descriptions of random shape scenes.

Each task keeps its real column layout (:data:`xfm_pipeline.data.formats.glue.GLUE_TASKS`) and its kind
of decision, about shapes instead of news or reviews:

* CoLA: acceptable sentences vs corrupted ones (word swaps, agreement errors, dropped or doubled words).
* SST-2: sentiment of opinions about shapes (negation and "but" clauses flip or decide the polarity).
* MRPC / QQP: paraphrase pairs (reordered, converse relation, other wording) vs one changed fact.
* STS-B: 0-5 similarity = 5 x the share of (size, colour, shape) slots two object lists agree on.
* MNLI: premise lists some of a scene's shapes (non-exhaustively); hypotheses are entailed, contradicted
  or undetermined. Mismatched dev/test use other genres (premise styles).
* QNLI: does the sentence answer the question? RTE: is the hypothesis entailed (2-way)?
"""

from __future__ import annotations

import random
from collections.abc import Callable

from xfm_pipeline.data.formats.glue import COLA_COLUMNS, GLUE_TASKS
from xfm_pipeline.data.shapes_world.language import (
    CONVERSE,
    RELATION_PHRASES,
    RELATIONS,
    article,
    join_list,
    number_word,
    phrase,
    plural,
)
from xfm_pipeline.data.shapes_world.scenes import COLOURS, SHAPES, SIZES, SceneObject, relation, sample_objects

Row = dict[str, str]
_IMAGE = 96  # geometry of the text-only scenes (only relations are used)


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


def _sentence(text: str) -> str:
    return _cap(text) + "."


def _distinct_objects(rng: random.Random, lo: int, hi: int) -> tuple[SceneObject, ...]:
    """Objects with distinct (colour, shape), so ``the red circle`` is always unambiguous."""
    while True:
        objs = sample_objects(rng, rng.randint(lo, hi), _IMAGE)
        if len({(o.colour, o.shape) for o in objs}) == len(objs):
            return objs


def _fact(rng: random.Random, objs: tuple[SceneObject, ...]) -> tuple[SceneObject, str, SceneObject] | None:
    pairs = [(a, n, b) for a in objs for b in objs if a is not b for n in RELATIONS if relation(a, b, _IMAGE)[n]]
    return rng.choice(pairs) if pairs else None


def _other(rng: random.Random, values, current):
    return rng.choice([v for v in values if v != current])


def _mutate(rng: random.Random, obj: SceneObject) -> SceneObject:
    attr = rng.choice(("colour", "shape", "size"))
    values = {"colour": tuple(COLOURS), "shape": SHAPES, "size": SIZES}[attr]
    return SceneObject(**{**obj.__dict__, attr: _other(rng, values, getattr(obj, attr))})


# ---------------------------------------------------------------------------------------------- CoLA


def _cola_good(rng: random.Random) -> list[str]:
    objs = _distinct_objects(rng, 2, 3)
    a, b = objs[0], objs[1]
    n = rng.randint(2, 5)
    templates = [
        f"the {phrase(a)} is {rng.choice(RELATION_PHRASES[rng.choice(RELATIONS)])} the {phrase(b)}",
        f"there is {article(phrase(a, size=False))} next to the {phrase(b)}",
        f"there are {number_word(n)} {rng.choice(tuple(COLOURS))} {plural(rng.choice(SHAPES))} in the picture",
        f"{article(phrase(a))} and {article(phrase(b))} are drawn on the page",
        f"the {phrase(a, size=False)} is bigger than the {phrase(b, size=False)}",
        f"every {a.shape} in this picture is {a.colour}",
        f"somebody has drawn {article(phrase(a))} above {article(phrase(b))}",
    ]
    return rng.choice(templates).split()


def _cola_bad(words: list[str], rng: random.Random) -> list[str]:
    out = list(words)
    kind = rng.choice(("swap", "agreement", "double", "drop", "shuffle"))
    if kind == "agreement" and any(w in ("is", "are", "has") for w in out):
        i = next(i for i, w in enumerate(out) if w in ("is", "are", "has"))
        out[i] = {"is": "are", "are": "is", "has": "have"}[out[i]]
    elif kind == "double":
        i = rng.randrange(len(out))
        out.insert(i, out[i])
    elif kind == "drop":
        verbs = [i for i, w in enumerate(out) if w in ("is", "are", "has", "drawn", "there")]
        del out[rng.choice(verbs) if verbs else rng.randrange(len(out))]
    elif kind == "shuffle":
        while out == words:
            rng.shuffle(out)
    if out == words:  # swap two adjacent different words
        i = rng.choice([i for i in range(len(out) - 1) if out[i] != out[i + 1]])
        out[i], out[i + 1] = out[i + 1], out[i]
    return out


def _cola(rng: random.Random, i: int, split: str) -> Row:
    good = rng.random() < 0.5
    words = _cola_good(rng)
    if not good:
        words = _cola_bad(words, rng)
    return {
        "source": rng.choice(("sw01", "sw02", "sw03")),
        "label": "1" if good else "0",
        "original_mark": "" if good else "*",
        "sentence": _sentence(" ".join(words)),
        "index": str(i),
    }


# ---------------------------------------------------------------------------------------------- SST-2

_POSITIVE = ("lovely", "beautiful", "charming", "delightful", "pleasant", "elegant", "cheerful")
_NEGATIVE = ("ugly", "dull", "boring", "awful", "clumsy", "gloomy", "messy")


def _sst2(rng: random.Random, i: int, split: str) -> Row:
    a, b = _distinct_objects(rng, 2, 2)
    positive = rng.random() < 0.5
    good, bad = rng.choice(_POSITIVE), rng.choice(_NEGATIVE)
    kind = rng.randrange(5)
    if kind == 0:
        text = f"the {phrase(a)} looks {good if positive else bad}"
    elif kind == 1:
        text = f"what {article(good if positive else bad)} picture of {article(phrase(a))} and {article(phrase(b))}"
    elif kind == 2:  # negation flips the adjective
        text = f"the {phrase(a, size=False)} does not look {bad if positive else good} at all"
    elif kind == 3:  # the clause after "but" decides
        first, second = (bad, good) if positive else (good, bad)
        text = f"the {phrase(a)} is {first} , but the {phrase(b)} is {second}"
    else:
        verb = rng.choice(("love", "like", "enjoy")) if positive else rng.choice(("hate", "dislike", "can't stand"))
        text = f"i {verb} how the {phrase(a, size=False)} sits {rng.choice(RELATION_PHRASES[rng.choice(RELATIONS)])} the {phrase(b, size=False)}"
    return {"sentence": text + " ", "label": "1" if positive else "0", "index": str(i)}


# ------------------------------------------------------------------------------------------ MRPC, QQP


def _fact_sentence(a: SceneObject, rel: str, b: SceneObject, rng: random.Random, style: int, sizes: bool) -> str:
    pa, pb = phrase(a, size=sizes), phrase(b, size=sizes)
    verb = rng.choice(RELATION_PHRASES[rel])
    conv = rng.choice(RELATION_PHRASES[CONVERSE[rel]])
    return [
        f"{article(pa)} is {verb} {article(pb)}",
        f"{article(pb)} is {conv} {article(pa)}",
        f"there is {article(pa)} {verb} {article(pb)}",
        f"{verb} {article(pb)} there is {article(pa)}",
        f"the picture shows {article(pa)} placed {verb} {article(pb)}",
    ][style]


def _changed_fact(rng: random.Random, a: SceneObject, rel: str, b: SceneObject) -> tuple[SceneObject, str, SceneObject]:
    kind = rng.randrange(3)
    if kind == 0:
        return _mutate(rng, a), rel, b
    if kind == 1:
        return a, rel, _mutate(rng, b)
    return a, CONVERSE[rel], b  # same objects, opposite relation


def _objects_fact(rng: random.Random) -> tuple[SceneObject, str, SceneObject]:
    while True:
        fact = _fact(rng, _distinct_objects(rng, 2, 3))
        if fact:
            return fact


def _mrpc(rng: random.Random, i: int, split: str) -> Row:
    a, rel, b = _objects_fact(rng)
    sizes = rng.random() < 0.5
    s1_style, s2_style = rng.sample(range(5), 2)
    same = rng.random() < 0.5
    a2, rel2, b2 = (a, rel, b) if same else _changed_fact(rng, a, rel, b)
    return {
        "Quality": "1" if same else "0",
        "#1 ID": str(rng.randint(10000, 3999999)),
        "#2 ID": str(rng.randint(10000, 3999999)),
        "#1 String": _sentence(_fact_sentence(a, rel, b, rng, s1_style, sizes)),
        "#2 String": _sentence(_fact_sentence(a2, rel2, b2, rng, s2_style, sizes)),
        "index": str(i),
    }


def _question_family(rng: random.Random, a: SceneObject, rel: str, b: SceneObject) -> list[str]:
    pa, pb = phrase(a, size=False), phrase(b, size=False)
    verb = RELATION_PHRASES[rel][0]
    kind = rng.randrange(3)
    if kind == 0:
        return [
            f"is there {article(pa)} {verb} the {pb}?",
            f"does the picture show {article(pa)} {verb} the {pb}?",
            f"can you see {article(pa)} {verb} the {pb}?",
        ]
    if kind == 1:
        return [
            f"what colour is the {a.shape} {verb} the {pb}?",
            f"which colour does the {a.shape} {verb} the {pb} have?",
            f"what is the colour of the {a.shape} {verb} the {pb}?",
        ]
    return [
        f"how many {plural(a.shape)} are {verb} the {pb}?",
        f"what is the number of {plural(a.shape)} {verb} the {pb}?",
        f"how many {plural(a.shape)} can be seen {verb} the {pb}?",
    ]


def _qqp(rng: random.Random, i: int, split: str) -> Row:
    a, rel, b = _objects_fact(rng)
    duplicate = rng.random() < 0.5
    state = rng.getstate()
    family = _question_family(rng, a, rel, b)
    q1, q2 = rng.sample(family, 2)
    if not duplicate:
        changed = family
        while changed == family:  # e.g. a size change is invisible in these questions: change again
            a2, rel2, b2 = _changed_fact(rng, a, rel, b)
            replay = random.Random()
            replay.setstate(state)  # same question family, changed content
            changed = _question_family(replay, a2, rel2, b2)
        q2 = rng.choice(changed)
    return {
        "id": str(i),
        "qid1": str(2 * i + 1),
        "qid2": str(2 * i + 2),
        "question1": _cap(q1),
        "question2": _cap(q2),
        "is_duplicate": "1" if duplicate else "0",
    }


# --------------------------------------------------------------------------------------------- STS-B


def _list_sentence(objs: list[SceneObject], rng: random.Random) -> str:
    items = join_list([article(phrase(o)) for o in objs])
    return _sentence(rng.choice((f"{items}", f"there is {items}", f"the picture shows {items}", f"{items} are drawn")))


def _stsb(rng: random.Random, i: int, split: str) -> Row:
    objs = list(_distinct_objects(rng, 1, 3))
    other = list(objs)
    if rng.random() < 0.15:
        other = list(_distinct_objects(rng, len(objs), len(objs)))
    else:
        for _ in range(rng.randint(0, 3 * len(objs))):
            k = rng.randrange(len(other))
            other[k] = _mutate(rng, other[k])
    slots = 3 * len(objs)
    same = sum((x.size == y.size) + (x.colour == y.colour) + (x.shape == y.shape) for x, y in zip(objs, other, strict=True))
    shuffled = list(other)
    rng.shuffle(shuffled)
    return {
        "index": str(i),
        "genre": "main-captions",
        "filename": "MSRvid",
        "year": "2012test",
        "old_index": f"{i:04d}",
        "source1": "none",
        "source2": "none",
        "sentence1": _list_sentence(objs, rng),
        "sentence2": _list_sentence(shuffled, rng),
        "score": f"{5.0 * same / slots:.3f}",
    }


# --------------------------------------------------------------------------------------- MNLI, RTE


_NLI = ("entailment", "neutral", "contradiction")


def _nli_pair(rng: random.Random, label: str, genre: str) -> tuple[str, str]:
    """(premise, hypothesis) with the given 3-way label; premises never claim to list every shape."""
    objs = _distinct_objects(rng, 2, 4)
    with_size = [rng.random() < 0.5 for _ in objs]
    items = [article(phrase(o, size=s)) for o, s in zip(objs, with_size, strict=True)]
    fact = _fact(rng, objs) if rng.random() < 0.6 else None
    listing = join_list(items)
    premise = {
        "scene": f"Among the shapes in the picture are {listing}.",
        "caption": f"A picture showing {listing}, among other things.",
        "inventory": f"Inventory of the drawing: {listing}; the list may be incomplete.",
        "letter": f"Dear friend, I drew {listing} and maybe a few more shapes.",
    }[genre]
    if fact:
        a, rel, b = fact
        premise += f" The {phrase(a, size=False)} is {RELATION_PHRASES[rel][0]} the {phrase(b, size=False)}."
    k = rng.randrange(len(objs))
    o = objs[k]
    n = len(objs)
    options: list[str] = []
    if label == "entailment":
        options = [
            f"there is {article(o.colour)} shape",
            f"there is {article(o.shape)}",
            f"there is {article(phrase(o, size=False))}",
            f"there are at least {number_word(rng.randint(1, n))} shapes",
        ]
        if fact:
            options.append(f"the {phrase(b, size=False)} is {RELATION_PHRASES[CONVERSE[rel]][0]} the {phrase(a, size=False)}")
    elif label == "contradiction":
        options = [
            f"there is no {o.shape}",
            f"there are no {o.colour} shapes",
            f"there are fewer than {number_word(rng.randint(1, n))} shapes",
        ]
        if fact:
            options.append(f"the {phrase(a, size=False)} is {RELATION_PHRASES[CONVERSE[rel]][0]} the {phrase(b, size=False)}")
        if with_size[k]:
            options.append(f"the {phrase(o, size=False)} is {_other(rng, SIZES, o.size)}")
    else:
        used = {(x.colour, x.shape) for x in objs}
        colour, shape = rng.choice([(c, s) for c in COLOURS for s in SHAPES if (c, s) not in used])
        options = [f"there is also {article(colour)} {shape}", f"there are more than {number_word(n)} shapes"]
        if not with_size[k]:
            options.append(f"the {phrase(o, size=False)} is {o.size}")
        if not fact and n >= 2:
            x, y = rng.sample(list(objs), 2)
            options.append(f"the {phrase(x, size=False)} is {RELATION_PHRASES[rng.choice(RELATIONS)][0]} the {phrase(y, size=False)}")
    return premise, _sentence(rng.choice(options))


def _binary_parse(tokens: list[str]) -> str:
    return tokens[0] if len(tokens) == 1 else f"( {tokens[0]} {_binary_parse(tokens[1:])} )"


def _tokens(sentence: str) -> list[str]:
    return sentence.replace(".", " .").replace(",", " ,").replace(";", " ;").split()


def _mnli(rng: random.Random, i: int, split: str) -> Row:
    mismatched = split.endswith("mismatched")
    genre = rng.choice(("inventory", "letter") if mismatched else ("scene", "caption"))
    gold = rng.choice(_NLI)
    premise, hypothesis = _nli_pair(rng, gold, genre)
    labels = [gold] + [gold if rng.random() < 0.8 else _other(rng, _NLI, gold) for _ in range(4)]
    if labels.count(gold) < 3:
        labels[1] = labels[2] = gold
    p_tok, h_tok = _tokens(premise), _tokens(hypothesis)
    prompt = 10000 + i
    row = {
        "index": str(i),
        "promptID": str(prompt),
        "pairID": f"{prompt}{gold[0]}",
        "genre": genre,
        "sentence1_binary_parse": _binary_parse(p_tok),
        "sentence2_binary_parse": _binary_parse(h_tok),
        "sentence1_parse": "(ROOT (S " + " ".join(f"(X {t})" for t in p_tok) + "))",
        "sentence2_parse": "(ROOT (S " + " ".join(f"(X {t})" for t in h_tok) + "))",
        "sentence1": premise,
        "sentence2": hypothesis,
        "gold_label": gold,
    }
    row.update({f"label{k + 1}": label for k, label in enumerate(labels)})
    return row


def _rte(rng: random.Random, i: int, split: str) -> Row:
    gold = "entailment" if rng.random() < 0.5 else rng.choice(("neutral", "contradiction"))  # 2-way balanced
    premise, hypothesis = _nli_pair(rng, gold, rng.choice(("scene", "caption", "inventory", "letter")))
    return {
        "index": str(i),
        "sentence1": premise,
        "sentence2": hypothesis,
        "label": "entailment" if gold == "entailment" else "not_entailment",
    }


# ---------------------------------------------------------------------------------------------- QNLI


def _qnli(rng: random.Random, i: int, split: str) -> Row:
    objs = _distinct_objects(rng, 2, 4)
    shapes = [o.shape for o in objs]
    o = rng.choice(objs)
    others = [x for x in objs if x is not o]
    answers = rng.random() < 0.5
    kind = rng.randrange(3)
    unique_shape = shapes.count(o.shape) == 1
    name = o.shape if unique_shape else phrase(o, size=False)
    if kind == 0 and unique_shape:
        question = f"what colour is the {o.shape}?"
        right = f"the {o.shape} in the picture is painted {o.colour}"
        wrong = rng.choice([f"the {o.shape} in the picture is {o.size}"] + [f"the {x.shape} in the picture is painted {x.colour}" for x in others])
    elif kind == 1:
        question = f"how big is the {name}?"
        right = f"the {name} is drawn quite {o.size}"
        wrong = rng.choice([f"the {phrase(x, size=False)} is drawn quite {x.size}" for x in others])
    else:
        x = rng.choice(others)
        rel = next((n for n in RELATIONS if relation(o, x, _IMAGE)[n]), None)
        question = f"where is the {name}?"
        right = f"the {name} is {RELATION_PHRASES[rel][0]} the {phrase(x, size=False)}" if rel else f"the {name} is next to the {phrase(x, size=False)}"
        wrong_options = [f"the {name} is painted {o.colour}", f"the {name} is drawn quite {o.size}"]
        if len(others) >= 2:
            y, z = rng.sample(others, 2)
            yz = next((n for n in RELATIONS if relation(y, z, _IMAGE)[n]), None)
            if yz:
                wrong_options.append(f"the {phrase(y, size=False)} is {RELATION_PHRASES[yz][0]} the {phrase(z, size=False)}")
        wrong = rng.choice(wrong_options)
    return {
        "index": str(i),
        "question": _cap(question),
        "sentence": _sentence(right if answers else wrong),
        "label": "entailment" if answers else "not_entailment",
    }


MAKERS: dict[str, Callable[[random.Random, int, str], Row]] = {
    "CoLA": _cola,
    "SST-2": _sst2,
    "MRPC": _mrpc,
    "QQP": _qqp,
    "STS-B": _stsb,
    "MNLI": _mnli,
    "QNLI": _qnli,
    "RTE": _rte,
}


def glue_tsv(task: str, split: str, n: int, rng: random.Random) -> str:
    """The text of ``<task>/<split>.tsv`` with ``n`` examples, in the real GLUE column layout."""
    spec = GLUE_TASKS[task]
    header = spec.header(split)
    columns = COLA_COLUMNS if header is None else header
    lines = [] if header is None else ["\t".join(header)]
    make = MAKERS[task]
    for i in range(n):
        row = make(rng, i, split)
        if "index" not in row:
            row["index"] = str(i)
        cells = [row[c] for c in columns]
        assert not any("\t" in c or "\n" in c for c in cells), cells
        lines.append("\t".join(cells))
    return "\n".join(lines) + "\n"
