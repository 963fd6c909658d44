"""Countdown: reach a target by combining every given number once with +, - and *.

A problem such as ``3,5,7>22:`` has several valid solutions (5*3=15 15+7=22, or 7*3=21 21+5=26 ... no), so
a policy that samples its search order can reach the answer along many paths: the setting in which pass@k at
large k measures how much of the search space a model still explores.

A completion is a search trace, one attempt per line: a chain of steps, the target restated, ``yes`` or ``no``::

    7*3=21 21+5=26 vs 22 no
    5*3=15 15+7=22 vs 22 yes

Restating the target beside the result turns "is this the target?" into comparing two adjacent numbers,
which a tiny model learns far more easily than looking back at the prompt.

The answer is the last ``yes`` line. It earns reward 1 iff every step's arithmetic is right, every step uses
numbers still available (given numbers or earlier results), all given numbers are used exactly once, and the
last result is the target. Intermediate results must be positive.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import cache, lru_cache

OPS = "+-*"
STEP = re.compile(r"^(\d+)([+\-*])(\d+)=(\d+)$")
MAX_NUMBER = 12
MAX_TARGET = 199


@dataclass(frozen=True)
class Problem:
    numbers: tuple[int, ...]
    target: int

    @property
    def prompt(self) -> str:
        return f"{','.join(map(str, self.numbers))}>{self.target}:\n"

    @property
    def reference(self) -> str:
        """What the reward needs to check an answer: the problem itself, as JSON."""
        return json.dumps({"numbers": list(self.numbers), "target": self.target})

    @classmethod
    def from_reference(cls, reference: str) -> Problem:
        data = json.loads(reference)
        return cls(tuple(data["numbers"]), int(data["target"]))


Step = tuple[int, str, int, int]  # (x, op, y, result)
Chain = tuple[Step, ...]


def apply(x: int, op: str, y: int) -> int:
    return x + y if op == "+" else x - y if op == "-" else x * y


def format_chain(chain: Chain) -> str:
    return " ".join(f"{x}{op}{y}={r}" for x, op, y, r in chain)


@lru_cache(maxsize=4096)
def chains(numbers: tuple[int, ...]) -> tuple[Chain, ...]:
    """Every way to combine all ``numbers`` into one by repeated (x op y), results kept positive.

    Commutative duplicates are kept (3+5 and 5+3 are different attempts), as a searcher would write either.
    """
    if len(numbers) == 1:
        return ((),)
    out: list[Chain] = []
    for i, x in enumerate(numbers):
        for j, y in enumerate(numbers):
            if i == j:
                continue
            rest = tuple(n for k, n in enumerate(numbers) if k not in (i, j))
            for op in OPS:
                r = apply(x, op, y)
                if r <= 0:
                    continue
                for tail in chains(tuple(sorted((*rest, r)))):
                    out.append(((x, op, y, r), *tail))
    return tuple(out)


def solutions(problem: Problem) -> list[Chain]:
    return [c for c in chains(tuple(sorted(problem.numbers))) if c[-1][3] == problem.target]


def generate_problems(
    count: int,
    num_numbers: int,
    seed: int,
    exclude: set[Problem] | None = None,
    max_number: int = MAX_NUMBER,
) -> list[Problem]:
    """Seeded problems with at least one solution, targets in [1, MAX_TARGET], no repeats (nor any in ``exclude``)."""
    rng = random.Random(seed)
    seen = set(exclude or ())
    out: list[Problem] = []
    misses = 0  # draws in a row that gave nothing new: the space of problems is running out
    while len(out) < count:
        numbers = tuple(rng.randint(1, max_number) for _ in range(num_numbers))
        chain = rng.choice(chains(tuple(sorted(numbers))))
        problem = Problem(numbers, chain[-1][3])
        if problem.target > MAX_TARGET or problem in seen:
            misses += 1
            if misses > 10_000:
                raise ValueError(
                    f"could only find {len(out)} of {count} distinct {num_numbers}-number problems with numbers "
                    f"up to {max_number}; ask for fewer"
                )
            continue
        misses = 0
        seen.add(problem)
        out.append(problem)
    return out


RARE_SHARE = 0.005


def solution_share(problem: Problem) -> float:
    """The share of all chains over the problem's numbers that solve it: what a uniform searcher hits per try."""
    every = chains(tuple(sorted(problem.numbers)))
    return sum(c[-1][3] == problem.target for c in every) / len(every)


def generate_rare_problems(
    count: int, seed: int, exclude: set[Problem] | None = None, max_share: float = RARE_SHARE
) -> list[Problem]:
    """Seeded 4-number problems whose correct chains are fewer than ``max_share`` of all chains.

    The solver chooses them: for each draw of numbers, one of the reachable targets (up to ``MAX_TARGET``) that
    few chains reach, uniformly. ``generate_problems`` picks a chain and takes its result, which favours the
    targets that many chains reach.
    """
    rng = random.Random(seed)
    seen = set(exclude or ())
    out: list[Problem] = []
    while len(out) < count:
        numbers = tuple(rng.randint(1, MAX_NUMBER) for _ in range(4))
        every = chains(tuple(sorted(numbers)))
        reached = Counter(c[-1][3] for c in every)
        rare = sorted(t for t, hits in reached.items() if t <= MAX_TARGET and hits < max_share * len(every))
        fresh = [t for t in rare if Problem(numbers, t) not in seen]
        if not fresh:
            continue
        problem = Problem(numbers, rng.choice(fresh))
        seen.add(problem)
        out.append(problem)
    return out


def make_trace(
    problem: Problem,
    rng: random.Random,
    max_failures: int = 4,
    fail_rate: float = 0.6,
    max_chars: int | None = None,
) -> str:
    """A search trace: a few dead ends in random order, then a solution.

    The number of dead ends is geometric (each further one with probability ``fail_rate``), so the base model
    learns both to give up on a chain and to try another, in an order it samples rather than a fixed one.
    ``max_chars`` fits the trace into a token budget (the tokenizer is per character): dead ends are dropped from
    the front until it fits, so the model learns to commit to an answer before the budget runs out rather than to
    search past it.
    """
    all_chains = chains(tuple(sorted(problem.numbers)))
    good = [c for c in all_chains if c[-1][3] == problem.target]
    bad = [c for c in all_chains if c[-1][3] != problem.target]
    failures = 0
    while failures < max_failures and bad and rng.random() < fail_rate:
        failures += 1
    verdict = f"vs {problem.target}"
    lines = [f"{format_chain(c)} {verdict} no" for c in rng.sample(bad, failures)]
    lines.append(f"{format_chain(rng.choice(good))} {verdict} yes")
    if max_chars is not None:
        while len(lines) > 1 and sum(len(line) + 1 for line in lines) > max_chars:
            lines.pop(0)
    return "\n".join(lines) + "\n"


def parse_answer(completion: str) -> Chain | None:
    """The steps of the last line ending in ``yes``; None when there is none or it does not parse.

    The ``vs <target>`` the trace restates is optional and not trusted: the steps alone are checked.
    """
    for line in reversed(completion.strip().splitlines()):
        words = line.split()
        if not words or words[-1] != "yes":
            continue
        words = words[:-1]
        if len(words) >= 2 and words[-2] == "vs":
            words = words[:-2]
        steps = []
        for word in words:
            m = STEP.match(word)
            if not m:
                return None
            steps.append((int(m[1]), m[2], int(m[3]), int(m[4])))
        return tuple(steps) or None
    return None


def check(problem: Problem, chain: Chain | None) -> bool:
    """Is ``chain`` a correct solution of ``problem``? (arithmetic, number use, target)."""
    if not chain:
        return False
    pool = Counter(problem.numbers)
    for x, op, y, r in chain:
        pool[x] -= 1
        pool[y] -= 1
        if pool[x] < 0 or pool[y] < 0 or apply(x, op, y) != r or r <= 0:
            return False
        pool[r] += 1
    remaining = +pool
    return remaining == Counter([problem.target])


OUTCOMES = ("correct", "false yes: reaches target", "false yes: misses target", "unparsable yes", "no answer")


def outcome(problem: Problem, completion: str) -> str:
    """Which of ``OUTCOMES`` a completion is: the failure kinds behind a reward of 0.

    "reaches target": the claimed chain ends on the target but breaks a rule (arithmetic or number use);
    "no answer": no line ends in ``yes`` (the search ran out of tokens or stopped).
    """
    if not any(line.split()[-1:] == ["yes"] for line in completion.strip().splitlines()):
        return "no answer"
    chain = parse_answer(completion)
    if chain is None:
        return "unparsable yes"
    if check(problem, chain):
        return "correct"
    return "false yes: reaches target" if chain[-1][3] == problem.target else "false yes: misses target"


class CountdownReward:
    """1 when the completion's answer solves the problem, else 0 (``agpo.rewards`` protocol)."""

    name = "countdown"

    def __call__(self, completions: Sequence[str], references: Sequence[str]) -> list[float]:
        return [
            1.0 if check(Problem.from_reference(ref), parse_answer(c)) else 0.0
            for c, ref in zip(completions, references, strict=True)
        ]


@dataclass(frozen=True)
class Splits:
    """Disjoint problem sets. ``sft``: traces for the base model; ``rl``: RL prompts; ``dev``: tuning;
    ``test_easy`` (3 numbers) and ``test_hard`` (4 numbers): held-out evaluation. ``test_rare`` (4 numbers): held
    out, each problem's correct chains under ``RARE_SHARE`` of all its chains (:func:`generate_rare_problems`), so
    that a model which samples chains near-uniformly finds them in few of many samples: where pass@k at large k has
    room to widen or shrink."""

    sft: tuple[Problem, ...]
    rl: tuple[Problem, ...]
    dev: tuple[Problem, ...]
    test_easy: tuple[Problem, ...]
    test_hard: tuple[Problem, ...]
    test_rare: tuple[Problem, ...]

    def as_dict(self) -> dict[str, list[dict]]:
        return {name: [asdict(p) for p in problems] for name, problems in self.__dict__.items()}


def make_splits(
    seed: int = 0, sft: int = 8000, rl: int = 2000, dev: int = 100, test: int = 200, hard_share: float = 0.3
) -> Splits:
    """Seeded, disjoint splits. Training splits mix 3- and 4-number problems (``hard_share`` of 4)."""
    return _splits(seed, sft, rl, dev, test, hard_share)


@cache  # drawing the splits solves every candidate (~15 s); a study asks for the same ones once per training run
def _splits(seed: int, sft: int, rl: int, dev: int, test: int, hard_share: float) -> Splits:
    held_out: set[Problem] = set()
    test_easy = generate_problems(test, 3, seed + 1)
    held_out.update(test_easy)
    test_hard = generate_problems(test, 4, seed + 2, held_out)
    held_out.update(test_hard)
    dev_set = _mixed(dev, hard_share, seed + 3, held_out)
    held_out.update(dev_set)
    rl_set = _mixed(rl, hard_share, seed + 4, held_out)
    held_out.update(rl_set)
    sft_set = _mixed(sft, hard_share, seed + 5, held_out)
    held_out.update(sft_set)
    # Drawn last, from what the others left, so that adding it changed none of them.
    test_rare = generate_rare_problems(test, seed + 6, held_out)
    return Splits(*(tuple(s) for s in (sft_set, rl_set, dev_set, test_easy, test_hard, test_rare)))


def _mixed(count: int, hard_share: float, seed: int, exclude: set[Problem]) -> list[Problem]:
    hard = round(count * hard_share)
    easy = generate_problems(count - hard, 3, seed, exclude)
    problems = easy + generate_problems(hard, 4, seed + 1000, exclude | set(easy))
    random.Random(seed).shuffle(problems)
    return problems


def sft_examples(
    problems: Sequence[Problem],
    seed: int,
    max_failures: int = 4,
    max_chars: int | None = None,
    fail_rate: float = 0.6,
) -> Iterator[dict[str, str]]:
    """Prompt/completion pairs for supervised fine-tuning of the base model (traces as :func:`make_trace`)."""
    rng = random.Random(seed)
    for p in problems:
        completion = make_trace(p, rng, max_failures=max_failures, fail_rate=fail_rate, max_chars=max_chars)
        yield {"prompt": p.prompt, "completion": completion}
