"""The bundled sample: deterministic, synthetic ultrachat-shaped conversations written by us, in the hub layout.

``generate_split`` is pure (seed in, rows out); ``write_hub_sample`` lays the rows out exactly like the hub repo
(``README.md`` with ``configs:`` -> ``data_files`` and ``dataset_info``, ``data/<split>-00000-of-00001.parquet``)
so the real ``datasets.load_dataset(folder)`` reads it offline. Regenerate with ``python -m tools data sample``.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

from tools.core.files import atomic_write_text, atomic_writer

SAMPLE_SPLITS: dict[str, int] = {"train_sft": 200, "test_sft": 50, "train_gen": 50, "test_gen": 50}

# topic -> (subjects, tips). Tips are full sentences an assistant might give about any subject of the topic.
TOPICS: dict[str, tuple[list[str], list[str]]] = {
    "cooking": (
        [
            "a weeknight vegetable curry",
            "sourdough bread",
            "a simple tomato sauce",
            "roast chicken",
            "a lentil soup",
            "homemade pizza dough",
            "a stir-fry with tofu",
            "banana bread",
        ],
        [
            "Prepare and measure every ingredient before you turn on the heat, so nothing burns while you chop.",
            "Season in layers: a little salt early and a final taste-and-adjust at the end.",
            "Use a heavy pan, because it holds heat evenly and browns food without scorching it.",
            "Let the dish rest for a few minutes before serving so the flavours settle.",
            "Toast whole spices in a dry pan for thirty seconds to wake up their aroma.",
            "Keep a little acid, such as lemon juice or vinegar, to brighten a flat-tasting dish.",
            "Write down what you changed each time, so a good result is easy to repeat.",
        ],
    ),
    "travel": (
        [
            "a three-day trip to Lisbon",
            "a rail journey across Switzerland",
            "a budget weekend in Kyoto",
            "a family holiday in Cornwall",
            "a hiking trip in Patagonia",
            "a first visit to Mexico City",
        ],
        [
            "Book the first and last night's accommodation in advance and leave the middle flexible.",
            "Check whether a regional transport pass is cheaper than single tickets for your route.",
            "Pack layers rather than bulky items, because the weather can change quickly.",
            "Keep digital and paper copies of your passport and bookings in separate places.",
            "Plan one unhurried afternoon with nothing scheduled; it is often the best part of a trip.",
            "Learn a handful of local phrases, such as greetings and thank you, before you go.",
        ],
    ),
    "programming": (
        [
            "a Python script that renames photos by date",
            "unit tests for a small REST API",
            "a SQL query that finds duplicate customers",
            "a command-line tool in Go",
            "a React component for a search box",
            "a Bash script that backs up a folder",
        ],
        [
            "Start with the smallest version that works end to end, then improve it step by step.",
            "Write a test for the tricky edge case before you fix it, so it stays fixed.",
            "Keep input parsing separate from the core logic; both become easier to test.",
            "Log what the program decided and why, not only that it ran.",
            "Prefer clear names over comments that explain unclear names.",
            "Run a linter in your editor so small mistakes are caught while you type.",
        ],
    ),
    "gardening": (
        [
            "tomatoes on a balcony",
            "a small herb garden",
            "a wildflower patch for bees",
            "raised vegetable beds",
            "indoor succulents",
            "a compost heap",
        ],
        [
            "Most vegetables want at least six hours of direct sun a day.",
            "Water deeply and less often, so roots grow down instead of staying near the surface.",
            "Mulch around plants to keep moisture in and weeds down.",
            "Check the underside of leaves once a week; pests are easier to handle early.",
            "Good drainage matters more than fertiliser for plants kept in containers.",
            "Keep a simple notebook of what you planted and when it flowered or fruited.",
        ],
    ),
    "personal finance": (
        [
            "a first monthly budget",
            "an emergency fund",
            "paying off a credit card",
            "saving for a house deposit",
            "understanding index funds",
            "splitting bills with flatmates",
        ],
        [
            "Track every expense for one month before deciding where to cut back.",
            "Automate a transfer to savings on payday so saving happens before spending.",
            "Pay off the debt with the highest interest rate first while paying the minimum on the rest.",
            "Keep three to six months of essential costs in an easy-access account.",
            "Low fees compound just like returns, so compare costs before choosing a fund.",
            "Review subscriptions every few months and cancel the ones you no longer use.",
        ],
    ),
    "fitness": (
        [
            "a beginner running plan",
            "strength training at home",
            "improving flexibility",
            "training for a 10 km race",
            "staying active at a desk job",
            "a short morning workout",
        ],
        [
            "Increase weekly distance or load by no more than about ten percent.",
            "Warm up for five to ten minutes before any hard effort.",
            "Sleep and rest days are part of training, not a break from it.",
            "Good form with lighter weights beats poor form with heavy ones.",
            "Set a routine you can keep for months rather than one you can keep for a week.",
            "Stand up and move for a few minutes every hour if you sit for work.",
        ],
    ),
    "history": (
        [
            "the printing press",
            "the Silk Road",
            "the building of the Roman aqueducts",
            "the Industrial Revolution in Britain",
            "the Apollo programme",
            "the invention of the telegraph",
        ],
        [
            "Primary sources, such as letters and records from the time, show how people saw events then.",
            "Causes are usually several: economic, technological and political pressures together.",
            "Changes that look sudden in a textbook often took decades on the ground.",
            "Comparing two regions at the same time reveals what was unusual about each.",
            "Maps and timelines make the sequence of events far easier to follow.",
            "Historians still debate the details, so look for where the sources disagree.",
        ],
    ),
    "music": (
        [
            "learning the guitar as an adult",
            "writing a first song",
            "reading sheet music",
            "practising piano scales",
            "recording music at home",
            "understanding chord progressions",
        ],
        [
            "Short daily practice beats one long session a week.",
            "Play slowly enough to be accurate, then raise the tempo a little at a time.",
            "Record yourself; you will hear things you miss while playing.",
            "Learn songs you love, because motivation carries you through the hard parts.",
            "A metronome is the quickest way to a steady sense of rhythm.",
            "Break a difficult passage into two-bar pieces and join them once each is clean.",
        ],
    ),
    "astronomy": (
        [
            "seeing Saturn's rings",
            "choosing a first telescope",
            "photographing the Milky Way",
            "finding the Andromeda galaxy",
            "watching a meteor shower",
            "understanding moon phases",
        ],
        [
            "Give your eyes twenty minutes in the dark to adapt before judging what you can see.",
            "A pair of binoculars is an excellent and inexpensive first instrument.",
            "Check the moon phase: a full moon washes out faint objects.",
            "A free planetarium app helps you find where to point.",
            "Get away from city lights if you can; even a short drive makes a difference.",
            "Dress warmly, because standing still at night is colder than you expect.",
        ],
    ),
    "writing": (
        [
            "a cover letter",
            "a short story opening",
            "a clear project update email",
            "a wedding speech",
            "a blog post about a hobby",
            "a product description",
        ],
        [
            "Write the first draft quickly and do the polishing in a separate pass.",
            "Put the most important point in the first two sentences.",
            "Read the text aloud; awkward sentences become obvious.",
            "Cut words that do not change the meaning.",
            "Write for one specific reader and imagine their questions.",
            "Concrete details are more convincing than general claims.",
        ],
    ),
}

CONTEXTS = [
    "I'm a complete beginner",
    "I only have about an hour",
    "I'm on a tight budget",
    "it's for a friend",
    "I tried once and it went badly",
    "I want to do it properly this time",
    "I have young kids at home",
    "I live in a small flat",
    "I'd like to start this weekend",
    "my partner is more experienced than me",
]

OPENERS = [
    "Can you help me get started with {subject}? {context}.",
    "What should I know before trying {subject}? {context}.",
    "{context}. How do I approach {subject}?",
    "Could you give me a step-by-step plan for {subject}? {context}.",
    "I'm curious about {subject}. {context} - where do I begin?",
    "Write a short guide to {subject} for me. {context}.",
]

# follow-up question -> how the assistant answers it ({tip}, {tips3}, {subject}, {weeks} are filled in)
FOLLOW_UPS: list[tuple[str, str]] = [
    (
        "What is the most common mistake people make with this?",
        "The most common mistake is rushing the basics. {tip} Once that habit is in place, the rest gets easier.",
    ),
    (
        "How long does it usually take before I see results?",
        "It varies, but most people notice real progress within {weeks} weeks of regular effort. {tip}",
    ),
    ("Could you summarise that in three short points?", "Of course:\n\n{tips3}"),
    (
        "Is there anything I should buy or prepare first?",
        "Very little. {tip} Beyond that, start with what you already have and add things only when you miss them.",
    ),
    (
        "What would you do differently if {context_lower}?",
        "In that case I would keep the plan smaller and focus on one habit: {tip}",
    ),
    (
        "Can you give me a concrete example?",
        "Sure. Suppose you are working on {subject} this week. {tip} Then look back at what worked and repeat it.",
    ),
]

ANSWER_OPENERS = [
    "Good question. Here is how I would approach {subject}.",
    "Happy to help with {subject}. A few things make the biggest difference.",
    "{subject_cap} is very doable, even if {context_lower}.",
    "Let's keep it practical.",
]

CLOSINGS = [
    "If you tell me more about your situation, I can adjust the plan.",
    "Take it one step at a time and it will come together.",
    "Enjoy the process; the first attempt is mostly about learning.",
    "",
]


def _lower_first(text: str) -> str:
    return text if text.startswith(("I ", "I'")) else text[:1].lower() + text[1:]


def _answer(rng: random.Random, tips: list[str], subject: str, context: str, n_tips: int) -> str:
    opener = rng.choice(ANSWER_OPENERS).format(
        subject=subject, subject_cap=subject[:1].upper() + subject[1:], context_lower=_lower_first(context)
    )
    chosen = rng.sample(tips, n_tips)
    body = "\n".join(f"{i}. {tip}" for i, tip in enumerate(chosen, 1))
    closing = rng.choice(CLOSINGS)
    return f"{opener}\n\n{body}" + (f"\n\n{closing}" if closing else "")


def conversation(rng: random.Random) -> dict[str, Any]:
    """One plausible multi-turn user/assistant conversation (1 to 4 exchanges), ending with the assistant."""
    topic = rng.choice(sorted(TOPICS))
    subjects, tips = TOPICS[topic]
    subject, context = rng.choice(subjects), rng.choice(CONTEXTS)
    prompt = rng.choice(OPENERS).format(subject=subject, context=context)
    prompt = prompt[:1].upper() + prompt[1:]
    messages = [
        {"content": prompt, "role": "user"},
        {"content": _answer(rng, tips, subject, context, rng.randint(2, 4)), "role": "assistant"},
    ]
    follow_ups = rng.sample(FOLLOW_UPS, rng.choice([0, 1, 1, 2, 2, 3]))
    for question, answer in follow_ups:
        tips3 = "\n".join(f"- {tip}" for tip in rng.sample(tips, 3))
        reply = answer.format(tip=rng.choice(tips), tips3=tips3, subject=subject, weeks=rng.randint(2, 8))
        messages.append({"content": question.format(context_lower=_lower_first(context)), "role": "user"})
        messages.append({"content": reply, "role": "assistant"})
    return {"prompt": prompt, "prompt_id": hashlib.sha256(prompt.encode("utf-8")).hexdigest(), "messages": messages}


def generate_split(split: str, rows: int, seed: int = 0, taken: set[str] | None = None) -> list[dict[str, Any]]:
    """``rows`` conversations for ``split``; prompt_ids (sha256 of the prompt) unique across ``taken``."""
    rng = random.Random(f"ultrachat-sample:{seed}:{split}")
    taken = set() if taken is None else taken
    out: list[dict[str, Any]] = []
    attempts = 0
    while len(out) < rows:
        attempts += 1
        if attempts > rows * 50:
            raise RuntimeError(f"cannot generate {rows} distinct prompts for {split}")
        row = conversation(rng)
        if row["prompt_id"] in taken:
            continue
        taken.add(row["prompt_id"])
        out.append(row)
    return out


def hub_readme(counts: dict[str, int], nbytes: dict[str, int]) -> str:
    """The dataset card header the hub uses: ``configs`` -> ``data_files`` plus ``dataset_info``."""
    lines = ["---", "license: mit", "language:", "- en", "configs:", "- config_name: default", "  data_files:"]
    for split in counts:
        lines += [f"  - split: {split}", f"    path: data/{split}-*"]
    lines += [
        "dataset_info:",
        "  features:",
        "  - name: prompt",
        "    dtype: string",
        "  - name: prompt_id",
        "    dtype: string",
        "  - name: messages",
        "    list:",
        "    - name: content",
        "      dtype: string",
        "    - name: role",
        "      dtype: string",
        "  splits:",
    ]
    for split, count in counts.items():
        lines += [f"  - name: {split}", f"    num_bytes: {nbytes[split]}", f"    num_examples: {count}"]
    lines += [
        "---",
        "",
        "# ultrachat_200k-shaped sample",
        "",
        "Synthetic conversations generated by `tools/data/sample.py` (deterministic; regenerate with",
        "`python -m tools data sample`). Same layout and columns as `HuggingFaceH4/ultrachat_200k`:",
        "`prompt`, `prompt_id` (sha256 of the prompt), `messages` (list of `{content, role}`).",
        "",
    ]
    return "\n".join(lines)


def write_hub_sample(out: Path, seed: int = 0, counts: dict[str, int] | None = None) -> None:
    """Write the hub-layout sample folder (README.md + data/<split>-00000-of-00001.parquet)."""
    import pyarrow as pa
    import pyarrow.parquet as pq


    counts = dict(SAMPLE_SPLITS if counts is None else counts)
    taken: set[str] = set()
    nbytes: dict[str, int] = {}
    schema = pa.schema(
        [
            ("prompt", pa.string()),
            ("prompt_id", pa.string()),
            ("messages", pa.list_(pa.struct([("content", pa.string()), ("role", pa.string())]))),
        ]
    )
    for split, rows in counts.items():
        table = pa.Table.from_pylist(generate_split(split, rows, seed, taken), schema=schema)
        nbytes[split] = table.nbytes
        with atomic_writer(out / "data" / f"{split}-00000-of-00001.parquet", "wb") as handle:
            pq.write_table(table, handle, row_group_size=100, compression="zstd")
    atomic_write_text(out / "README.md", hub_readme(counts, nbytes))
