"""Per-row scores and the metrics computed from them. Facts in data: :data:`METRICS` names each metric, its
natural direction and how rows combine (a ratio of sums, then a transform), which is also what the paired bootstrap
resamples.

Reference-based generation metrics come from torchmetrics (Lightning AI; offline, no downloads): ROUGE-L F-measure
(``rouge_score``, no stemmer), BLEU (``sacre_bleu_score``, the 13a tokenizer, smoothed sentence BLEU averaged over
rows, 0-1), and token F1 (SQuAD-style bag-of-tokens overlap on lower-cased words). Reference NLL is the mean
negative log-likelihood per assistant token under teacher forcing; perplexity is ``exp`` of it over the whole set.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class RowScore:
    """What one model produced on one gate row (None: not measured in this mode, e.g. NLL through an endpoint)."""

    nll_sum: float | None = None
    tokens: int | None = None
    answer: str | None = None
    latency_s: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class Metric:
    direction: str  # "higher" | "lower" is better
    needs: str  # "nll" (a local model) or "generation"
    transform: str = "identity"  # applied to sum(num) / sum(den): "identity" | "exp"
    description: str = ""


METRICS: dict[str, Metric] = {
    "nll": Metric("lower", "nll", description="mean negative log-likelihood per assistant token (nats)"),
    "perplexity": Metric("lower", "nll", "exp", "exp(nll) over the whole gate set"),
    "rouge_l": Metric("higher", "generation", description="ROUGE-L F-measure of the answer against the reference"),
    "bleu": Metric("higher", "generation", description="smoothed sentence BLEU (sacreBLEU 13a), 0-1"),
    "token_f1": Metric("higher", "generation", description="bag-of-words F1 of answer and reference tokens"),
    "answer_words": Metric("lower", "generation", description="answer length in words (reported)"),
    "latency_s": Metric("lower", "generation", description="seconds per answer"),
    "error_rate": Metric("lower", "generation", description="share of rows whose answer failed"),
}

_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def token_f1(answer: str, reference: str) -> float:
    """SQuAD-style F1 of the two bags of lower-cased word tokens (1.0 when both are empty)."""
    pred, ref = words(answer), words(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def rouge_l(answer: str, reference: str) -> float:
    from torchmetrics.functional.text.rouge import rouge_score

    if not answer.strip() or not reference.strip():
        return 0.0
    return float(rouge_score(answer, reference, rouge_keys="rougeL")["rougeL_fmeasure"])


def bleu(answer: str, reference: str) -> float:
    from torchmetrics.functional.text import sacre_bleu_score

    if not answer.strip() or not reference.strip():
        return 0.0
    return float(sacre_bleu_score([answer], [[reference]], tokenize="13a", smooth=True))


def row_terms(scores: list[RowScore], references: list[str]) -> dict[str, tuple[Any, Any]]:
    """Per metric, the per-row numerators and denominators (numpy arrays) of every measured metric."""
    terms: dict[str, tuple[Any, Any]] = {}
    n = len(scores)
    ones = np.ones(n)
    if scores and all(s.nll_sum is not None and s.tokens is not None for s in scores) and any(s.tokens for s in scores):
        nll = np.array([s.nll_sum for s in scores], dtype=float)
        tokens = np.array([s.tokens for s in scores], dtype=float)
        terms["nll"] = (nll, tokens)
        terms["perplexity"] = (nll, tokens)
    if any(s.answer is not None or s.error is not None for s in scores):
        answers = [s.answer if s.error is None and s.answer is not None else "" for s in scores]
        terms["rouge_l"] = (np.array([rouge_l(a, r) for a, r in zip(answers, references, strict=True)]), ones)
        terms["bleu"] = (np.array([bleu(a, r) for a, r in zip(answers, references, strict=True)]), ones)
        terms["token_f1"] = (np.array([token_f1(a, r) for a, r in zip(answers, references, strict=True)]), ones)
        terms["answer_words"] = (np.array([len(a.split()) for a in answers], dtype=float), ones)
        terms["latency_s"] = (np.array([s.latency_s or 0.0 for s in scores], dtype=float), ones)
        terms["error_rate"] = (np.array([1.0 if s.error is not None else 0.0 for s in scores]), ones)
    return terms


def finish(metric: str, ratio: Any) -> Any:
    """Apply the metric's transform to sum(num) / sum(den) (a float or an array of them)."""
    if METRICS[metric].transform == "exp":
        return np.exp(np.minimum(ratio, 700.0))
    return ratio


def value(metric: str, num: Any, den: Any) -> float:
    total = float(np.sum(den))
    return float(finish(metric, float(np.sum(num)) / total)) if total else math.nan
