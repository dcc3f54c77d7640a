"""The tiny policy: a real ``transformers`` ``Qwen2ForCausalLM``, DeepSeek-R1-Distill-Qwen-1.5B's architecture
at about a thousandth of its width.

Same blocks as the 1.5B model (RMSNorm, rotary positions, grouped-query attention with biased q/k/v
projections, SwiGLU MLP), so everything downstream (``generate``, log-probs, ``save_pretrained``,
``AutoModelForCausalLM``, vLLM) treats it exactly like the real base. What shrinks, and why:

  1. width 128 with 2 query heads of ``head_dim`` 64 (the smallest head size vLLM's CPU attention kernels
     accept) and 1 key/value head (grouped-query attention, as the 1.5B's 12 query / 2 kv heads);
  2. 4 layers and an MLP of 512: about a million parameters, enough to memorise the toy task's
     addition/subtraction facts, small enough that a GRPO step of 128 rollouts takes seconds on 2 CPU cores;
  3. tied input/output embeddings (the 1.5B does not tie; at this size the embeddings are a large share);
  4. 512 positions: toy prompts plus responses stay far below.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import PreTrainedTokenizerBase, Qwen2Config, Qwen2ForCausalLM

TINY_QWEN2_DEFAULTS: dict[str, Any] = dict(
    hidden_size=128,
    intermediate_size=512,
    num_hidden_layers=4,
    num_attention_heads=2,  # head_dim = hidden_size / num_attention_heads = 64
    num_key_value_heads=1,
    max_position_embeddings=512,
    rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
    use_sliding_window=False,
    initializer_range=0.02,
)
"""The toy architecture; ``tiny_qwen2_config(vocab_size, **overrides)`` changes any of it."""


def tiny_qwen2_config(vocab_size: int, **overrides: Any) -> Qwen2Config:
    """A ``Qwen2Config`` of the toy size for a vocabulary of ``vocab_size`` tokens; ``overrides`` win."""
    kwargs = {**TINY_QWEN2_DEFAULTS, **overrides}
    head_dim = kwargs["hidden_size"] // kwargs["num_attention_heads"]
    if head_dim * kwargs["num_attention_heads"] != kwargs["hidden_size"]:
        raise ValueError(f"hidden_size {kwargs['hidden_size']} is not divisible by num_attention_heads "
                         f"{kwargs['num_attention_heads']}")
    return Qwen2Config(vocab_size=vocab_size, **kwargs)


def build_random_model(tokenizer: PreTrainedTokenizerBase, seed: int, **overrides: Any) -> Qwen2ForCausalLM:
    """A randomly initialised toy ``Qwen2ForCausalLM`` matching ``tokenizer`` (vocabulary and special ids).

    Deterministic: the same tokenizer and seed give the same weights. The model is in float32 and eval mode.
    """
    config = tiny_qwen2_config(
        len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **overrides,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.float().eval()


def count_parameters(model: torch.nn.Module) -> int:
    """Number of distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())
