"""EOE: envisioned outlier exposure (a training-free baseline of paper Table 1).

Cao et al., "Envisioning Outlier Exposure by Large Language Models for Out-of-Distribution
Detection", ICML 2024, https://arxiv.org/abs/2406.00806; reference code
https://github.com/tmlr-group/EOE (``utils/prompt_pool.py``, ``generate_llm_class.py``,
``utils/detection_util.py``).

**Envisioned labels.** A text-only LLM is given the ID class names and asked for outlier class
names (:func:`envision`), with one of three prompts (``task``):

* ``far``: one question for the whole label set (a one-shot example, then "Summarize what broad
  categories these categories might fall into ... identify {n} classes that visually resemble
  ... but have no direct relation ..."), 50 names per turn, follow-up turns asking for 50 more
  until ``n_envisioned`` (L; their ImageNet setting 500: 10 turns);
* ``near``: one question per ID class (a three-shot example), L names each (1, 3 or 10; 3 by
  default);
* ``fine_grained``: one question for the label set naming its ``class_type`` (e.g. "bird"), 50
  per turn as ``far``.

Their follow-up turns continue the same chat; here each turn is one text-only question whose
text is the conversation so far (first question, answer, follow-up), so every turn is cached by
exactly what it was asked (:class:`ants.mllm.base.Query` kind ``eoe``; the answers go through
the ANTS MLLM backends, cache and answers log). Parsing (:func:`ants.mllm.parsing.parse_eoe_answer`):
lines ``- name`` (their ``stringtolist``; ``lenient`` also reads numbered or comma lists).
:func:`envisioned_labels` then lower-cases, de-duplicates (first seen kept; their ``set`` has
no order), drops names equal to an ID class name and, for ``near``, any name sharing a word
with an ID class name (their ``remove_overlap_class``).

**Score.** With ID text features ``t_i`` and envisioned-label features ``e_j`` of "a photo of a
{c}" (no period, as their code), one softmax over both at temperature ``T``::

    p = softmax([cos(v, t_1), ..., cos(v, t_K), cos(v, e_1), ..., cos(v, e_L)] / T)
    S = max_i p_i - beta * max_j p_j                 (beta = 0.25, T = 1 in their code)

Higher = more in-distribution (:func:`eoe_scores`). Their CLIP is HuggingFace's ViT-B/16 (fp32);
here the workflow's backbone. With no envisioned label left, ``S`` is MCM at ``T``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ants.methods.base import MethodResult

__all__ = [
    "EOE_PROMPT",
    "EOE_TASKS",
    "envision",
    "envision_plan",
    "envisioned_labels",
    "eoe_scores",
    "far_prompt",
    "fine_grained_prompt",
    "near_prompt",
    "run_eoe",
    "score_eoe",
]

#: EOE's tasks: which prompt asks the LLM for outlier names
EOE_TASKS = ("far", "near", "fine_grained")
#: The prompt of the ID and envisioned labels ("a photo of a {c}", no final period):
#: ``ants.stages.ID_PROMPTS``.
EOE_PROMPT = "photo_bare"
#: names asked per turn by the ``far`` and ``fine_grained`` prompts
PER_TURN = 50

_FAR_EXAMPLE = """Q: I have gathered images of 4 distinct categories: ['Husky dog', 'Garfield cat', 'churches', 'truck']. Summarize what broad categories these categories might fall into based on visual features. Now, I am looking to identify 5 categories that visually resemble to these broad categories but have no direct relation to these broad categories. Please list these 5 items for me.
A: These 5 items are:
- black stone
- mountain
- Ginkgo Tree
- river
- Rapeseed

"""

_NEAR_EXAMPLES = (
    ("husky dog", ("gray wolf", "black stone", "red panda")),
    ("basketball", ("balloons", "blowfish", "hat")),
    ("water jug", ("trumpets", "helmets", "rucksacks")),
)

_FINE_EXAMPLE = """Q: I have a dataset containing 10 unique species of dogs. I need a list of 10 distinct dog species that are NOT present in my dataset, and ensure there are no repetitions in the list you provide. For context, the species in my dataset are: ['husky dog', 'alaskan Malamute', 'cossack sled dog', 'golden retriever', 'German Shepherd', 'Beagle', 'Bulldog', 'Poodle', 'Dachshund', 'Doberman Pinscher']
A: The other 10 dog species not in the dataset are:
- Labrador Retriever
- Rottweiler
- Boxer
- Border Collie
- Shih Tzu
- Akita
- Saint Bernard
- Australian Shepherd
- Great Dane
- Boston Terrier

"""


def far_prompt(class_names: Sequence[str], n: int) -> str:
    """EOE's ``far`` question for a label set, asking for ``n`` names (the class list is
    written as their code writes it: a Python list inside brackets)."""
    info = repr(list(class_names))
    return _FAR_EXAMPLE + (
        f"Q: I have gathered images of {len(class_names)} distinct categories: [{info}]. "
        "Summarize what broad categories these categories might fall into based on visual "
        f"features. Now, I am looking to identify {n} classes that visually resemble to these "
        "broad categories but have no direct relation to these broad categories. Please list "
        f"these {n} items for me.\nA: These {n} items are:\n"
    )


def _far_again(n: int) -> str:
    return (
        f"Q: Give me {n} more categories that are visually similar to these broad categories "
        "you summarized in the dataset but have no direct relation to these broad categories. "
        "Each category you give cannot exceed three words and could not have appeared in your "
        f"previous answers.\nA: The other {n} categories are:\n"
    )


def _near_question(c: str, n: int) -> str:
    return (
        f"Q: Given the image category [{c}], please suggest visually similar categories that are "
        f"not directly related or belong to the same primary group as [{c}]. Provide suggestions "
        f"that share visual characteristics but are from broader and different domains than "
        f"[{c}].\nA: There are {n} classes similar to [{c}], and they are from broader and "
        f"different domains than [{c}]:\n"
    )


def near_prompt(class_name: str, n: int) -> str:
    """EOE's ``near`` question for one ID class (``_`` read as a space), asking for ``n`` names."""
    shots = "".join(
        _near_question(c, len(names)) + "".join(f"- {x}\n" for x in names) + "\n"
        for c, names in _NEAR_EXAMPLES
    )
    return shots + _near_question(str(class_name).replace("_", " "), n)


def fine_grained_prompt(class_names: Sequence[str], n: int, class_type: str) -> str:
    """EOE's ``fine_grained`` question: ``n`` species of ``class_type`` not in the label set."""
    return _FINE_EXAMPLE + (
        f"Q: I have a dataset containing {len(class_names)} different species of {class_type}. "
        f"I need a list of {n} distinct {class_type} species that are NOT present in my dataset, "
        "and ensure there are no repetitions in the list you provide. For context, the species "
        f"in my dataset are: {list(class_names)!r}\nA: The other {n} {class_type} species not "
        "in the dataset are:\n"
    )


def _fine_again(n: int, class_type: str) -> str:
    return (
        f"Q: Provide {n} additional {class_type} categories that aren't in the set I gave you, "
        f"and haven't been mentioned in your previous responses to me.\nA: The {n} additional "
        "categories are:\n"
    )


def envision_plan(task: str, n_envisioned: int) -> tuple[int, int]:
    """``(turns, names per turn)`` of a set-level task: 50 per turn, ``max(L // 50, 1)`` turns
    (their ``envision_times = max(int(L / 50) - 1, 0)`` follow-ups); ``L`` at once when below 50."""
    if task not in ("far", "fine_grained"):
        raise ValueError(f"envision_plan is for the far and fine_grained tasks, not {task!r}")
    per_turn = min(PER_TURN, int(n_envisioned))
    return max(int(n_envisioned) // PER_TURN, 1), per_turn


def envision(
    class_names: Sequence[str],
    answerer: Callable[[list], list],
    *,
    task: str = "far",
    n_envisioned: int = 500,
    class_type: str | None = None,
) -> list[tuple[Any, Any]]:
    """Ask the LLM for outlier names; ``[(Query, Answer), ...]`` in the order asked.

    ``answerer``: list[Query] -> list[Answer] (e.g. :class:`ants.mllm.answering.CachedAnswerer`).
    ``near``: one call with one question per class. ``far`` / ``fine_grained``: one call per
    turn, each turn's text being the conversation so far (the previous answer's raw text
    included, so a turn is asked only once its previous one is answered).
    """
    from ants.mllm.base import Query

    if task not in EOE_TASKS:
        raise ValueError(f"unknown EOE task {task!r}; valid tasks: {', '.join(EOE_TASKS)}")
    if int(n_envisioned) < 1:
        raise ValueError(f"n_envisioned must be >= 1, got {n_envisioned!r}")
    names = [str(c) for c in class_names]
    if task == "near":
        queries = [Query("eoe", c, prompt=near_prompt(c, int(n_envisioned))) for c in names]
        return list(zip(queries, answerer(queries), strict=True))
    if task == "fine_grained" and not class_type:
        raise ValueError("the fine_grained task needs class_type (e.g. 'bird')")
    turns, per_turn = envision_plan(task, n_envisioned)
    if task == "far":
        text, again = far_prompt(names, per_turn), _far_again(per_turn)
    else:
        text, again = (
            fine_grained_prompt(names, per_turn, str(class_type)),
            _fine_again(per_turn, str(class_type)),
        )
    out = []
    for _ in range(turns):
        query = Query("eoe", "", prompt=text)
        (answer,) = answerer([query])
        out.append((query, answer))
        text = text + answer.raw_text.strip() + "\n\n" + again
    return out


def envisioned_labels(
    negatives: Sequence[Sequence[str]], class_names: Sequence[str], task: str
) -> list[str]:
    """The envisioned labels EOE scores with, from the parsed names of each ``ok`` answer:
    lower-cased, de-duplicated in first-seen order, names equal to a (lower-cased) ID class
    dropped, and for ``near`` every name sharing a word with an ID class name."""
    ids = {str(c).lower() for c in class_names}
    labels = list(dict.fromkeys(str(x).strip().lower() for group in negatives for x in group))
    labels = [x for x in labels if x and x not in ids]
    if task == "near":
        words = {w for c in class_names for w in str(c).split()}
        labels = [x for x in labels if not any(w in words for w in x.split())]
    return labels


def eoe_scores(
    image_features: Any,
    id_text_features: Any,
    envisioned_features: Any,
    *,
    beta: float = 0.25,
    temperature: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(S, max ID probability, max envisioned probability)`` per image (module docstring).

    One softmax over the ``K`` ID and ``L`` envisioned labels of ``cos / T`` (log-sum-exp; no
    logit exponentiated raw). ``envisioned_features`` may have 0 rows (then ``S`` is MCM).
    """
    import torch

    from ants.scores import as_features

    img = as_features(image_features, "image_features")
    idt = as_features(id_text_features, "id_text_features", dim=img.shape[1])
    env = as_features(
        envisioned_features, "envisioned_features", dim=img.shape[1], allow_empty=True
    )
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}")
    logits = img @ torch.cat([idt, env]).T / float(temperature)
    lse = torch.logsumexp(logits, dim=1)
    k = idt.shape[0]
    p_id = torch.exp(logits[:, :k].max(dim=1).values - lse)
    p_env = (
        torch.exp(logits[:, k:].max(dim=1).values - lse) if env.shape[0] else torch.zeros_like(p_id)
    )
    s = p_id - float(beta) * p_env
    return s.numpy(), p_id.numpy(), p_env.numpy()


def run_eoe(
    *,
    image_features: Any,
    id_text_features: Any,
    envisioned_features: Any,
    beta: float = 0.25,
    temperature: float = 1.0,
) -> MethodResult:
    """EOE scores (:func:`eoe_scores`); predictions: argmax of the ID cosines; ``variants``
    ``p_id`` and ``p_envisioned``."""
    from ants.scores import predict

    s, p_id, p_env = eoe_scores(
        image_features, id_text_features, envisioned_features, beta=beta, temperature=temperature
    )
    return MethodResult(
        method="eoe",
        scores=np.asarray(s, np.float32),
        predictions=np.asarray(
            predict(
                np.asarray(image_features, np.float32), np.asarray(id_text_features, np.float32)
            ),
            np.int64,
        ),
        variants={
            "p_id": np.asarray(p_id, np.float32),
            "p_envisioned": np.asarray(p_env, np.float32),
        },
    )


def score_eoe(section: Mapping[str, Any], inputs: Any) -> MethodResult:
    """EOE on one stream: its features against "a photo of a {}" of the ID labels and of the
    envisioned labels (their text features precomputed: ``inputs.envisioned``)."""
    idt, _ = inputs.id_text(EOE_PROMPT)
    return run_eoe(
        image_features=inputs.features,
        id_text_features=idt,
        envisioned_features=inputs.envisioned,
        beta=float(section["beta"]),
        temperature=float(section["temperature"]),
    )
