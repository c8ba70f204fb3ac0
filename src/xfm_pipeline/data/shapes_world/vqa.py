"""VQA questions about scenes, with ten simulated human answers each.

Question types: ``colour``, ``shape``, ``count``, ``existence``, ``relative_position``. For every
question the type is chosen first, then, among the scene's candidates of that type, the (form, answer)
pair chosen least often so far (ties broken at random), then a question with that pair. A form is a
template family (``Question.form``: "is there a red circle?" and "are there any circles?" are two forms
of existence), so the answers are balanced per type AND per form. Balancing per type alone let the form
give the answer away: absent colour-shape pairs outnumber absent shapes, so "is there a <colour>
<shape>?" was mostly "no" and "are there any <shapes>?" mostly "yes", and a lookup of the question form
answered 72% of existence questions against a 56% type prior.

The ten answers imitate VQA annotators: mostly the truth, sometimes a synonym (``gray``), a number
word (``two``), punctuation or an article (``yes.``, ``a circle``), rarely a wrong answer. The official
VQA normalisation therefore matters when scoring.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass

from xfm_pipeline.data.shapes_world.language import (
    NUMBER_WORDS,
    RELATION_PHRASES,
    RELATIONS,
    plural,
    unique_attribute_expression,
)
from xfm_pipeline.data.shapes_world.scenes import COLOURS, SHAPES, Scene, relation

QUESTION_TYPES = ("colour", "shape", "count", "existence", "relative_position")
ANSWER_TYPES = {"colour": "other", "shape": "other", "count": "number", "existence": "yes/no", "relative_position": "yes/no"}
NUM_ANSWERS = 10
MAX_COUNT = 3  # count questions ask about 0..MAX_COUNT objects
MAX_WRONG = 2  # wrong annotators per question: the true answer always keeps a clear majority

# Alternative answers annotators give for a canonical answer, with their probability.
_SYNONYMS = {
    "grey": (("gray", 0.45),),
    "circle": (("round", 0.04), ("a circle", 0.04), ("circles", 0.02)),
    "square": (("box", 0.03), ("a square", 0.04), ("rectangle", 0.03)),
    "triangle": (("a triangle", 0.04), ("triangles", 0.02)),
    "diamond": (("rhombus", 0.04), ("a diamond", 0.03)),
    "cross": (("plus", 0.05), ("plus sign", 0.02), ("a cross", 0.03)),
    "star": (("a star", 0.04), ("stars", 0.02)),
    "yes": (("yes.", 0.04), ("yeah", 0.02), ("yep", 0.01)),
    "no": (("no.", 0.04), ("nope", 0.02), ("no!", 0.01)),
}
_WRONG_CHOICES = {
    "colour": tuple(COLOURS),
    "shape": SHAPES,
    "count": tuple(str(i) for i in range(MAX_COUNT + 1)),
    "existence": ("yes", "no"),
    "relative_position": ("yes", "no"),
}


@dataclass(frozen=True)
class Question:
    """A candidate question with its canonical answer."""

    question_type: str
    form: str  # the template family within the type ("colour_shape" / "any_shape" for existence ...)
    question: str
    answer: str  # canonical answer ("red", "circle", "2", "yes")


def candidate_questions(scene: Scene) -> dict[str, list[Question]]:
    """Every question of each type that has a well-defined answer for ``scene``."""
    out: dict[str, list[Question]] = {t: [] for t in QUESTION_TYPES}
    objs = scene.objects
    for obj in objs:
        # colour: the object must be identifiable without its colour
        same_shape = [o for o in objs if o.shape == obj.shape]
        if len(same_shape) == 1:
            for tmpl in ("what colour is the {}?", "what color is the {}?", "which colour does the {} have?"):
                out["colour"].append(Question("colour", "shape", tmpl.format(obj.shape), obj.colour))
        elif sum(o.size == obj.size for o in same_shape) == 1:
            for tmpl in ("what colour is the {} {}?", "what color is the {} {}?"):
                out["colour"].append(Question("colour", "size_shape", tmpl.format(obj.size, obj.shape), obj.colour))
        # shape: identifiable without its shape
        same_colour = [o for o in objs if o.colour == obj.colour]
        if len(same_colour) == 1:
            for tmpl in ("what shape is the {} object?", "what is the shape of the {} thing?", "which shape is {}?"):
                out["shape"].append(Question("shape", "colour", tmpl.format(obj.colour), obj.shape))
        elif sum(o.size == obj.size for o in same_colour) == 1:
            question = f"what shape is the {obj.size} {obj.colour} object?"
            out["shape"].append(Question("shape", "size_colour", question, obj.shape))
    for shape in SHAPES:
        n = sum(o.shape == shape for o in objs)
        if n <= MAX_COUNT:
            out["count"].append(Question("count", "shape", f"how many {plural(shape)} are there?", str(n)))
            out["count"].append(Question("count", "shape", f"how many {plural(shape)} are in the picture?", str(n)))
    for colour in COLOURS:
        n = sum(o.colour == colour for o in objs)
        if n <= MAX_COUNT:
            out["count"].append(Question("count", "colour", f"how many {colour} shapes are there?", str(n)))
            out["count"].append(Question("count", "colour", f"how many {colour} objects can you see?", str(n)))
        for shape in SHAPES:
            present = any(o.colour == colour and o.shape == shape for o in objs)
            out["existence"].append(Question("existence", "colour_shape", f"is there a {colour} {shape}?", "yes" if present else "no"))
    for shape in SHAPES:
        present = any(o.shape == shape for o in objs)
        question = f"are there any {plural(shape)}?"
        out["existence"].append(Question("existence", "any_shape", question, "yes" if present else "no"))
    described = [(o, unique_attribute_expression(o, scene)) for o in objs]
    described = [(o, d) for o, d in described if d is not None]
    for a, a_text in described:
        for b, b_text in described:
            if a is b:
                continue
            rel = relation(a, b, scene.size)
            for name in RELATIONS:
                if rel[name] is None:
                    continue
                verb = RELATION_PHRASES[name][0]
                question = f"is {a_text} {verb} {b_text}?"
                answer = "yes" if rel[name] else "no"
                out["relative_position"].append(Question("relative_position", name, question, answer))
    return out


def human_answers(answer: str, question_type: str, rng: random.Random, wrong_rate: float) -> list[str]:
    """Ten annotator answers for a question whose true answer is ``answer``.

    Each annotator is wrong with probability ``wrong_rate`` (at most ``MAX_WRONG`` of the ten), else gives
    the answer or one of its variants (synonym, number word, punctuation, article).
    """
    out = []
    wrong = 0
    for _ in range(NUM_ANSWERS):
        if rng.random() < wrong_rate and wrong < MAX_WRONG:
            wrong += 1
            out.append(rng.choice([a for a in _WRONG_CHOICES[question_type] if a != answer]))
            continue
        r = rng.random()
        given = answer
        if question_type == "count" and r < 0.12:
            given = NUMBER_WORDS[int(answer)]
        else:
            for synonym, p in _SYNONYMS.get(answer, ()):
                if r < p:
                    given = synonym
                    break
                r -= p
        out.append(given)
    return out


class AnswerBalancer:
    """Chooses questions so that, per question type and form, every answer is given about equally often."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.counts: dict[str, Counter] = defaultdict(Counter)  # type -> (form, answer) -> times chosen

    def pick(self, candidates: list[Question], exclude: set[str]) -> Question | None:
        """A candidate whose (form, answer) pair is least used so far for its type (ties at random).

        ``candidates`` are of one question type; None if all are excluded.
        """
        pool = [q for q in candidates if q.question not in exclude]
        if not pool:
            return None
        counts = self.counts[pool[0].question_type]
        by_answer: dict[tuple[str, str], list[Question]] = defaultdict(list)
        for q in pool:
            by_answer[q.form, q.answer].append(q)
        least = min(counts[pair] for pair in by_answer)
        answer = self.rng.choice(sorted(pair for pair in by_answer if counts[pair] == least))
        counts[answer] += 1
        return self.rng.choice(by_answer[answer])


def questions_for_split(scenes: list[Scene], per_image: int, wrong_rate: float, rng: random.Random) -> list[dict]:
    """VQA records (docs/data_formats.md) for the scenes of one split, ``per_image`` questions each."""
    balancer = AnswerBalancer(rng)
    records = []
    for scene in scenes:
        candidates = candidate_questions(scene)
        types = [t for t in QUESTION_TYPES if candidates[t]]
        rng.shuffle(types)
        asked: set[str] = set()
        k = 0
        for qtype in types * per_image:  # a different type for each question while types last
            if k == per_image:
                break
            q = balancer.pick(candidates[qtype], asked)
            if q is None:
                continue
            asked.add(q.question)
            records.append(
                {
                    "question_id": scene.image_id * 100 + k,
                    "image": scene.path,
                    "question": q.question,
                    "answer": human_answers(q.answer, qtype, rng, wrong_rate),
                    "answer_type": ANSWER_TYPES[qtype],
                    "question_type": qtype,
                    "dataset": "vqa",
                }
            )
            k += 1
    return records
