"""Models and samplers for evaluation: the one model loader, and the HF or vLLM sampler of ``--engine``
(built by ``samplers.make_sampler``, the factory training uses too).

    KV cache of the HF engine = batch x (prompt + new tokens) x 2 x layers x KV heads x head dim x bytes

Choices:
  1. vLLM on CUDA (paged KV cache, large batches: the paper's 31,744-token samples), transformers on CPU.
  2. vLLM samples are seeded per request, so sample j of a problem is known by its seed (resume, the protocol).
  3. The HF engine refuses a run whose KV cache would take more than ``HF_CACHE_MAX_SHARE`` of the GPU, with one
     message naming the vLLM engine.
"""

from __future__ import annotations

from justrl_lite.evaluation.files import EvaluationError

HF_BATCH_SIZE = 8
"""Prompts per transformers ``generate`` call by default (vLLM: all of a seed at once)."""


def load_model(model_path: str, *, device: str, dtype: str, load_weights: bool = True):
    """(model, tokenizer) from a local ``save_pretrained`` folder or a hub id (model None without weights).

    The one loader of ``justrl_lite.policy``; its errors become ``EvaluationError`` (one message, exit code 2).
    """
    from justrl_lite.policy import TrainerError
    from justrl_lite.policy import load_model as load_policy_model

    try:
        return load_policy_model(model_path, device=device, dtype=dtype, load_weights=load_weights)
    except TrainerError as e:
        raise EvaluationError(str(e)) from e


HF_CACHE_MAX_SHARE = 0.5
"""The HF engine refuses a run whose KV cache would take more than this share of the GPU's memory."""


def default_engine(device: str | None) -> str:
    """``vllm`` on CUDA (paged KV cache, large batches: the paper's 31,744-token samples), ``hf`` on CPU."""
    return "vllm" if (device or ("cuda" if _cuda_available() else "cpu")) == "cuda" else "hf"


def kv_bytes_per_token(config, bytes_per_value: int) -> int:
    """KV-cache bytes one token takes: 2 (K and V) x layers x KV heads x head dim x bytes per value."""
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    return 2 * config.num_hidden_layers * kv_heads * head_dim * bytes_per_value


def check_hf_length(batch_size: int, sequence_tokens: int, bytes_per_token: int, device_bytes: int) -> None:
    """Refuse (one message naming the vLLM engine) an HF evaluation whose KV cache cannot fit on the GPU.

    ``HFRollout`` decodes with ``decode.sample_dropping_finished``, which keeps no per-step scores, only the KV
    cache of the rows still generating: at most batch_size x (prompt + new tokens) x ``kv_bytes_per_token``,
    e.g. 8 x 32,768 x 28,672 B = 7.0 GiB at 1.5B in bf16. vLLM pages the same cache and batches far more rows.
    """
    need = batch_size * sequence_tokens * bytes_per_token
    if need > HF_CACHE_MAX_SHARE * device_bytes:
        raise EvaluationError(
            f"--engine hf holds a KV cache of {batch_size} prompts x {sequence_tokens:,} tokens x "
            f"{bytes_per_token:,} B = {need / 2**30:.1f} GiB, more than {HF_CACHE_MAX_SHARE:.0%} of this GPU's "
            f"{device_bytes / 2**30:.0f} GiB. Use the vLLM engine (--engine vllm, the default on CUDA), or lower "
            f"--max-new-tokens or --batch-size.")


def check_hf_engine(model, sequence_tokens: int, batch_size: int | None) -> None:
    """On a GPU, refuse an HF evaluation whose KV cache (in the dtype the sampler stores it) cannot fit."""
    if model is None or model.device.type != "cuda" or sequence_tokens <= 0:
        return
    import torch

    # samplers.make_sampler: on CUDA the HF sampler stores its KV cache in the evaluation dtype (2 bytes in bf16)
    nbytes = torch.finfo(model.dtype).bits // 8
    check_hf_length(batch_size or HF_BATCH_SIZE, sequence_tokens, kv_bytes_per_token(model.config, nbytes),
                    torch.cuda.get_device_properties(model.device).total_memory)


def make_eval_sampler(kind: str, model, tokenizer, *, model_path: str | None, max_model_len: int, seed: int,
                      dtype: str, sequence_tokens: int = 0, batch_size: int | None = None):
    """The sampler of ``--engine`` from ``samplers.make_sampler`` (the package's one factory): vLLM seeded per
    request (choice 2), HF guarded on a GPU (choice 3); a refusal becomes ``EvaluationError``."""
    from justrl_lite.policy import TrainerError
    from justrl_lite.samplers import make_sampler

    if kind == "hf":
        check_hf_engine(model, sequence_tokens, batch_size)
    try:
        return make_sampler(kind, model, tokenizer, model_path=model_path, dtype=dtype, max_model_len=max_model_len,
                            seed=seed, seeded=True)
    except TrainerError as e:
        raise EvaluationError(f"--engine {kind}: {e}") from e


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()
