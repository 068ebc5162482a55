"""The encoder's ONNX export: the torch encoder's vectors (tuned layers included), saved and loaded with a model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.nlu import NLUEngine, load
from bot.nlu.classifier import IntentClassifier
from bot.nlu.encoder import TransformerEncoder, base_encoder
from bot.nlu.engine import NLUConfig
from bot.nlu.onnx_encoder import GRAPH_FILE, TOKENIZER_FILE, OnnxEncoder, export_onnx
from bot.training_data.model import Example, NLUData

TEXTS = [
    "where is my order",
    "hi",
    "can I talk to a real person please, I have been waiting for ages",
    "my fridge is leaking water all over the kitchen floor " * 20,  # longer than 64 tokens: cut
    "我的订单在哪里",
]


@pytest.fixture(scope="module")
def plain(nlu_engine: NLUEngine) -> TransformerEncoder:
    encoder = base_encoder(nlu_engine.encoder)
    assert isinstance(encoder, TransformerEncoder)
    return encoder


def test_the_demo_model_parses_with_its_onnx_graph(nlu_engine: NLUEngine) -> None:
    assert isinstance(nlu_engine.encoder, OnnxEncoder)
    assert nlu_engine.info()["runtime"] == "onnx"
    assert nlu_engine.info()["tuned_layers"] == 2


def test_exported_vectors_equal_torch_ones_tuned_layers_included(plain: TransformerEncoder) -> None:
    import torch

    tuned = plain.with_tuned_top(1)
    with torch.no_grad():  # a stand-in for fine-tuning: the top layer's output projection changes
        tuned.layers[-1].output.dense.weight.mul_(1.5)
    exported = export_onnx(tuned)
    expected = tuned.encode(TEXTS)
    assert exported.dim == plain.dim == 384
    assert exported.tuned_layers == 1
    # Batched (padded) and one at a time give torch's vectors.
    for vectors in (exported.encode(TEXTS), np.vstack([exported.encode([t]) for t in TEXTS])):
        assert vectors.shape == (len(TEXTS), 384)
        assert (vectors * expected).sum(1).min() > 0.99999
    # ... and not the untuned encoder's: the tuned layer is in the graph.
    assert (exported.encode(TEXTS) * plain.encode(TEXTS)).sum(1).min() < 0.999
    assert exported.encode([]).shape == (0, 384)
    assert base_encoder(exported) is plain


def test_a_saved_model_loads_its_graph_without_torch_encoder(tmp_path: Path, nlu_engine: NLUEngine) -> None:
    from bot.nlu import save

    folder = save(nlu_engine, tmp_path, activate=True)
    assert {GRAPH_FILE, TOKENIZER_FILE} <= {p.name for p in folder.iterdir()}
    assert not (folder / "encoder.npz").exists()
    loaded = load(tmp_path)
    assert isinstance(loaded.encoder, OnnxEncoder)
    assert loaded.encoder._base is None  # nothing loaded torch for parsing
    for text in ["where is my order 48215", "my fridge is leaking", "flarp gnn vrrk"]:
        assert loaded.parse(text) == nlu_engine.parse(text)


def test_one_row_similarity_equals_the_batched_one(nlu_engine: NLUEngine) -> None:
    classifier: IntentClassifier = nlu_engine.classifier
    vectors = nlu_engine.encoder.encode(TEXTS)
    batched = classifier.similarity(vectors)
    one_by_one = np.concatenate([classifier.similarity(vectors[i : i + 1]) for i in range(len(TEXTS))])
    np.testing.assert_allclose(one_by_one, batched, atol=1e-5)


def test_runtime_is_checked_and_old_models_ran_on_torch() -> None:
    raw = NLUConfig().to_dict()
    assert raw["runtime"] == "onnx"
    assert NLUConfig.from_dict(raw) == NLUConfig()
    del raw["runtime"]
    assert NLUConfig.from_dict(raw).runtime == "torch"
    with pytest.raises(ValueError, match="unknown NLU runtime 'tpu'"):
        NLUConfig.from_dict({**raw, "runtime": "tpu"})


SMALL_NLU = NLUData(
    examples=[
        *(Example(text, "greet") for text in ["hello", "hi there", "good morning"]),
        *(Example(text, "check_order_status") for text in ["where is my order", "track my order please"]),
    ]
)


def test_the_torch_runtime_keeps_the_encoder_on_torch(tmp_path: Path, nlu_engine: NLUEngine) -> None:
    from bot.nlu import save

    data = SMALL_NLU
    torch_engine = NLUEngine.train(data, set(), config=NLUConfig(runtime="torch"), encoder=nlu_engine.encoder)
    onnx_engine = NLUEngine.train(data, set(), encoder=nlu_engine.encoder)
    assert isinstance(torch_engine.encoder, TransformerEncoder)
    assert torch_engine.info()["runtime"] == "torch" and onnx_engine.info()["runtime"] == "onnx"
    folder = save(torch_engine, tmp_path / "models")
    assert not (folder / GRAPH_FILE).exists()
    loaded = load(tmp_path / "models", encoder=nlu_engine.encoder)
    assert isinstance(loaded.encoder, TransformerEncoder)
    for text in ["hello there", "where is my parcel"]:
        torch_intent = loaded.parse(text)["intent"]
        onnx_intent = onnx_engine.parse(text)["intent"]
        assert torch_intent["name"] == onnx_intent["name"]
        assert torch_intent["confidence"] == pytest.approx(onnx_intent["confidence"], abs=1e-3)
