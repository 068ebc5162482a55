"""Brief fine-tuning of the encoder's top layers on the intents.

The lower layers run once over the training texts; only the top `layers` are
trained (cross-entropy through a cosine-similarity head initialised at the class
means), so a few epochs cost about as much as encoding the data a few times.
Sentence vectors of in-scope intents move apart and away from out-of-scope ones,
which makes both the classifier and the nearest-neighbour out-of-scope score sharper.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.nlu.encoder import TransformerEncoder
from bot.nlu.vectors import Vectors
from bot.training_data.model import Example


@dataclass(frozen=True)
class TuningConfig:
    """How the encoder is fine-tuned; `layers=0` switches it off."""

    layers: int = 2
    epochs: float = 2.0
    # Small data sets get more passes: at least this many optimiser steps.
    min_steps: int = 150
    batch_size: int = 32
    learning_rate: float = 1e-4
    head_learning_rate: float = 1e-2
    # Cosine logits are multiplied by this before the softmax.
    scale: float = 20.0
    # Data sets smaller than this are not worth tuning for (and cannot spare a held-out part).
    min_examples: int = 200
    seed: int = 0
    label_smoothing: float = 0.0  # of the tuning loss (`bench/nlu_tuning_sweep.py` tried 0.1)


def tune_encoder(
    encoder: TransformerEncoder, texts: list[str], labels: list[str], config: TuningConfig,
    states: list[Any] | None = None,
) -> tuple[TransformerEncoder, Vectors]:
    """A copy of `encoder` with its top layers trained on (texts, labels), and the texts' new vectors.
    `states`: the texts' token states below the tuned layers, when the caller has them already (a benchmark's
    cache); computed otherwise."""
    import torch

    start = encoder.depth - config.layers
    if states is None:
        states = encoder.hidden_states(texts, start)
    tuned = encoder.with_tuned_top(config.layers)
    top = torch.nn.ModuleList(tuned.layers[start:])
    classes = sorted(set(labels))
    y = torch.tensor([classes.index(label) for label in labels])
    initial = tuned.pool(states, start=start)
    means = np.stack([initial[y.numpy() == c].mean(0) for c in range(len(classes))])
    head = torch.nn.Parameter(torch.nn.functional.normalize(torch.tensor(means), dim=-1))
    steps = max(config.min_steps, int(np.ceil(len(texts) / config.batch_size * config.epochs)))
    optimiser = torch.optim.AdamW(
        [{"params": top.parameters(), "lr": config.learning_rate}, {"params": [head], "lr": config.head_learning_rate}],
        weight_decay=0.01,
    )
    # Linear warm-up over the first 10% of steps, then linear decay to zero.
    warmup = max(1.0, 0.1 * steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: min(1.0, (s + 1) / warmup) * (1 - s / steps))
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        generator = torch.Generator().manual_seed(config.seed)
        top.train()
        step = 0
        while step < steps:
            order = torch.randperm(len(texts), generator=generator).tolist()
            for i in range(0, len(order), config.batch_size):
                if step >= steps:
                    break
                rows = order[i : i + config.batch_size]
                vectors = tuned.pool_tensor([states[r] for r in rows], start=start)
                logits = config.scale * vectors @ torch.nn.functional.normalize(head, dim=-1).T
                loss = torch.nn.functional.cross_entropy(logits, y[rows], label_smoothing=config.label_smoothing)
                optimiser.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                optimiser.step()
                schedule.step()
                step += 1
        top.eval()
    return tuned, tuned.pool(states, start=start)


def calibration_split(examples: list[Example], seed: int, fraction: float = 0.2) -> tuple[list[Example], list[Example]]:
    """A stratified (train, held-out) split; everything stays in train when an intent has under 3 examples."""
    from sklearn.model_selection import train_test_split

    intents = [e.intent for e in examples]
    if min(Counter(intents).values(), default=0) < 3:
        return examples, []
    train, held = train_test_split(examples, test_size=fraction, random_state=seed, stratify=intents)
    return list(train), list(held)
