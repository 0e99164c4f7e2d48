"""A tiny random-weight llama model in GGUF, written with the `gguf` package (no download).

What llama.cpp's llama architecture needs (`src/llama-model.cpp`, `LLM_ARCH_LLAMA`): the
`llama.*` hyper-parameters, a tokenizer (here SentencePiece-style, `tokenizer.ggml.model`
"llama": control tokens, the 128 ASCII byte tokens for byte fallback, and a few word pieces),
and per block the attention and feed-forward tensors. All tensors are F32.

The weights are random, with one rigged dimension so that the answer is always text: every
token embedding has 1.0 in dimension 0, no layer writes to it (row 0 of `attn_output` and
`ffn_down` is zero), so after the final norm that dimension is positive, and `output.weight`
puts +8 there for word pieces and -8 for control and byte tokens. The model never says
end-of-sequence by itself: a generation runs for its `max_tokens`.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

__all__ = ["write_tiny_llama"]

N_EMBD, N_HEAD, N_FF, N_LAYER, N_CTX = 64, 4, 128, 2, 4096
WORDS = (
    "the", "a", "is", "of", "and", "to", "in", "it", "that", "Paris", "France", "capital",
    "heart", "beat", "model", "server", "token", "yes", "no", "ok",
)  # fmt: skip


def _vocab() -> tuple[list[str], list[float], list[int]]:
    tokens = ["<unk>", "<s>", "</s>"]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(128)]
    types += [gguf.TokenType.BYTE] * 128
    pieces = [c for c in "abcdefghijklmnopqrstuvwxyz.,!?"]
    pieces += ["\u2581" + c for c in "abcdefghijklmnopqrstuvwxyz"]
    pieces += ["\u2581" + w for w in WORDS] + ["\u2581"]
    pieces = list(dict.fromkeys(pieces))  # each piece once (llama.cpp asserts it)
    tokens += pieces
    types += [gguf.TokenType.NORMAL] * len(pieces)
    scores = [0.0] * (3 + 128) + [-float(i) for i in range(len(pieces))]
    return tokens, scores, [int(t) for t in types]


def write_tiny_llama(path: Path, seed: int = 0) -> Path:
    """Write the model to `path` (a few hundred KiB) and return the path."""
    rng = np.random.default_rng(seed)
    tokens, scores, types = _vocab()
    n_vocab = len(tokens)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("llm-heartbeat tiny test model")
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(N_EMBD // N_HEAD)
    w.add_vocab_size(n_vocab)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)

    def rand(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    embd = rand(n_vocab, N_EMBD)
    embd[:, 0] = 1.0
    w.add_tensor("token_embd.weight", embd)
    for i in range(N_LAYER):
        out = rand(N_EMBD, N_EMBD)
        out[0, :] = 0.0  # no layer writes dimension 0
        down = rand(N_EMBD, N_FF)
        down[0, :] = 0.0
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(N_EMBD, np.float32))
        w.add_tensor(f"blk.{i}.attn_q.weight", rand(N_EMBD, N_EMBD))
        w.add_tensor(f"blk.{i}.attn_k.weight", rand(N_EMBD, N_EMBD))
        w.add_tensor(f"blk.{i}.attn_v.weight", rand(N_EMBD, N_EMBD))
        w.add_tensor(f"blk.{i}.attn_output.weight", out)
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(N_EMBD, np.float32))
        w.add_tensor(f"blk.{i}.ffn_gate.weight", rand(N_FF, N_EMBD))
        w.add_tensor(f"blk.{i}.ffn_up.weight", rand(N_FF, N_EMBD))
        w.add_tensor(f"blk.{i}.ffn_down.weight", down)
    w.add_tensor("output_norm.weight", np.ones(N_EMBD, np.float32))
    head = rand(n_vocab, N_EMBD)
    head[:, 0] = [8.0 if t == gguf.TokenType.NORMAL else -8.0 for t in types]
    w.add_tensor("output.weight", head)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


if __name__ == "__main__":
    import sys

    print(write_tiny_llama(Path(sys.argv[1] if len(sys.argv) > 1 else "tiny.gguf")))
