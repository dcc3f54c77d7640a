"""Token log-probs and entropy of responses, computed without ever holding (tokens x vocabulary) in float32.

For a response y to prompt x, at the sampling temperature tau:

    log pi(y_t | x, y_<t) = z_{y_t} - log sum_v exp(z_v),      z = lm_head(h_t) / tau
    H_t = log sum_v exp(z_v) - sum_v softmax(z)_v z_v

where h_t is the final hidden state at the position before y_t.

How a micro-batch is computed (memory and time):
  1. Its rows are split into forward buckets (``forward_buckets``): sorted by length, cut into contiguous runs
     so that  sum_k (rows_k x longest_k) + overhead x (number of buckets)  is smallest (dynamic programming).
     Each bucket is packed [prompt | response] from the left and right-padded (no left padding), so it costs
     rows x its own longest sequence; a whole micro-batch padded to its longest row was half padding in the
     tiny preset. A bucket whose rows all have the same length runs without an attention mask (plain causal).
  2. The model's body (``model.get_decoder()``, through a peft wrapper too) gives each bucket's final hidden
     states (b_k, W_k, H).
  3. Only the hidden states that predict a real response token are kept, flattened to (N, H) over all buckets:
     padding and prompt positions never reach the vocabulary projection.
  4. In chunks of ``chunk_tokens(V, device)`` tokens (256 MiB of float32 logits each on CPU, 1 GiB on CUDA),
     lm_head + log-softmax (+ entropy when asked) run in float32; under autograd each chunk is a checkpointed
     function, so its (n, V) logits are recomputed in backward instead of stored.
  Plain computation would hold (b, W, V) float32 logits: 32,768 tokens x 151,936 x 4 bytes = 19.9 GB per copy.
  A bucket is only a way to compute the micro-batch's rows: each row's log-probs do not depend on which rows
  share its forward pass (up to float rounding), so the loss, its weighting and the gradient are the micro-batch's
  whatever the buckets (tested).

Micro-batch planning: rows are sorted by length (longest first) before greedy packing within
``micro_batch_max_tokens`` (counted as rows x longest, a bound on the bucketed cost). Under
``micro_batch_weighting=global-token-mean`` the mini-batch loss and its gradient do not depend on the plan; under
``authors`` (the paper's) they do, since each micro-batch is token-averaged on its own (see ``loss.micro_batch_scale``).
``perf/padding_frac`` counts the padded tokens the buckets actually compute (``padding_counts``).

The model must compute logits as ``lm_head(last hidden state)`` (Qwen2, Llama, Mistral; not models with logit
soft-capping).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from justrl_lite.config import JustRLConfig
from justrl_lite.policy import compute_context

if TYPE_CHECKING:
    from justrl_lite.rollout import RolloutBatch

LOGPROB_CHUNK_BYTES = 256 * 2**20
"""Float32 logits of one log-prob chunk on CPU: 256 MiB (a few copies of it are the peak of the log-prob step)."""
CUDA_LOGPROB_CHUNK_BYTES = 2**30
"""The same on CUDA: 1 GiB (1,766 tokens at V = 151,936: 19 chunks per 32k micro-batch instead of 75, each
re-casting the lm_head). A guess, not a measurement: re-fit from ``benchmarks/gpu_check.py``'s step section."""

FORWARD_OVERHEAD_TOKENS = 16
"""Cost of one extra forward + backward pass, in padded tokens, for ``forward_buckets`` on CPU: the tiny model on
one CPU thread pays a few ms per pass beyond ~0.1 ms per token; 16 was fastest among 0, 16, 64 and 256
(``python benchmarks/update_buckets.py``)."""
CUDA_FORWARD_OVERHEAD_TOKENS = 512
"""The same on CUDA, where a pass of a 1.5B model has a larger fixed cost (kernel launches, the lm_head re-cast).
A guess, not a measurement: re-fit from ``benchmarks/gpu_check.py``."""

_LOW_PRECISION = (torch.float16, torch.bfloat16)


# ---- log-probs and entropy of given logits ------------------------------------------------------

def token_logprobs(logits: Tensor, token_ids: Tensor, temperature: float = 1.0) -> Tensor:
    """log softmax(logits / temperature) at the sampled tokens: (B, T, V), (B, T) -> (B, T).

    ``logits[b, t]`` must be the model's prediction *for* ``token_ids[b, t]`` (i.e. already shifted by one).
    One logit is gathered per position and a logsumexp subtracted (no (B, T, V) log-softmax is built); at
    temperature 1.0 (JustRL) the logits are not even divided. float16 / bfloat16 logits are upcast one
    sequence at a time; the result is float32.
    """
    _check_logits(logits, temperature)
    if token_ids.shape != logits.shape[:2]:
        raise ValueError(f"token_ids must be (B, T) = {tuple(logits.shape[:2])} to match logits (B, T, V), "
                         f"got {tuple(token_ids.shape)}; shift so that logits[:, t] predicts token_ids[:, t]")
    if token_ids.is_floating_point():
        raise ValueError(f"token_ids must be integer token ids, got dtype {token_ids.dtype}")
    if logits.dtype in _LOW_PRECISION:
        rows = [_logprobs_rows(logits[b].float(), token_ids[b], temperature) for b in range(logits.shape[0])]
        return torch.stack(rows) if rows else logits.new_zeros(token_ids.shape, dtype=torch.float32)
    return _logprobs_rows(logits, token_ids, temperature)


def _logprobs_rows(logits: Tensor, token_ids: Tensor, temperature: float) -> Tensor:
    # (..., V), (...) -> (...); dividing by the temperature is skipped at 1.0 (JustRL) to save a copy
    z = logits if temperature == 1.0 else logits / temperature  # (..., V)
    # log p(y_t) = z_{y_t} - log sum_v exp(z_v)
    picked = z.gather(-1, token_ids.long().unsqueeze(-1)).squeeze(-1)  # (...)
    return picked - torch.logsumexp(z, dim=-1)  # (...)


def entropy_from_logits(logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Entropy of softmax(logits / temperature) at every position: (B, T, V) -> (B, T).

    JustRL logs it (a band of ~1.2-1.4 nats over training) but does not train on it (entropy_coeff = 0).
    float16 / bfloat16 logits are processed one sequence at a time in float32.
    """
    _check_logits(logits, temperature)
    if logits.dtype in _LOW_PRECISION:
        rows = [_entropy_rows(logits[b].float(), temperature) for b in range(logits.shape[0])]
        return torch.stack(rows) if rows else logits.new_zeros(logits.shape[:2], dtype=torch.float32)
    return _entropy_rows(logits, temperature)


def _entropy_rows(logits: Tensor, temperature: float) -> Tensor:
    z = logits if temperature == 1.0 else logits / temperature  # (..., V)
    p = torch.softmax(z, dim=-1)  # (..., V)
    # H = -sum_v p_v log p_v = logsumexp(z) - sum_v p_v z_v
    return torch.logsumexp(z, dim=-1) - (p * z).sum(dim=-1)  # (...)


def _check_logits(logits: Tensor, temperature: float) -> None:
    if logits.dim() != 3:
        raise ValueError(f"logits must be (B, T, V), got shape {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise ValueError(f"logits must be floating point, got dtype {logits.dtype}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ValueError(f"temperature must be a number > 0 (the sampling temperature), got {temperature!r}")


# ---- chunked log-probs from hidden states -------------------------------------------------------

def chunk_tokens(vocab_size: int, device_type: str = "cpu") -> int:
    """Tokens per log-prob chunk: as many as fit ``LOGPROB_CHUNK_BYTES`` (CUDA: ``CUDA_...``) of float32 logits."""
    budget = CUDA_LOGPROB_CHUNK_BYTES if device_type == "cuda" else LOGPROB_CHUNK_BYTES
    return max(1, budget // (4 * vocab_size))


def forward_overhead_tokens(device_type: str) -> int:
    """``forward_buckets``' cost of one extra pass on this device: ``FORWARD_OVERHEAD_TOKENS`` or the CUDA one."""
    return CUDA_FORWARD_OVERHEAD_TOKENS if device_type == "cuda" else FORWARD_OVERHEAD_TOKENS


def _chunk_logprobs(head, hidden: Tensor, token_ids: Tensor, temperature: float,
                    with_entropy: bool) -> tuple[Tensor, Tensor]:
    # (n, H), (n,) -> (n,), (n,)
    logits = head(hidden).float()                                         # (n, V)
    entropy = _entropy_rows(logits, temperature) if with_entropy else logits.new_zeros(0)
    return _logprobs_rows(logits, token_ids, temperature), entropy


def chunked_logprobs(head, hidden: Tensor, token_ids: Tensor, temperature: float,
                     with_entropy: bool) -> tuple[Tensor, Tensor | None]:
    """log pi and entropy of ``token_ids`` (N,) from the hidden states (N, H) that predict them, chunk by chunk."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ValueError(f"temperature must be a number > 0 (the sampling temperature), got {temperature!r}")
    step = chunk_tokens(head.weight.shape[0], hidden.device.type) if hasattr(head, "weight") else 512
    logps, ents = [], []
    for start in range(0, hidden.shape[0], step):
        args = (head, hidden[start:start + step], token_ids[start:start + step], temperature, with_entropy)
        if torch.is_grad_enabled():  # recomputed in backward: only the (n, H) input is kept
            lp, ent = checkpoint(_chunk_logprobs, *args, use_reentrant=False)
        else:
            lp, ent = _chunk_logprobs(*args)
        logps.append(lp)
        ents.append(ent)
    empty = hidden.new_zeros(0, dtype=torch.float32)
    logp = torch.cat(logps) if logps else empty                           # (N,)
    entropy = (torch.cat(ents) if ents else empty) if with_entropy else None
    return logp, entropy


def body_and_head(model):
    """(decoder body returning final hidden states, lm_head) of a causal LM, through a peft wrapper too."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_decoder(), base.get_output_embeddings()


# ---- log-probs of a batch of [prompt | response] sequences ---------------------------------------

def sequence_lengths(batch: RolloutBatch) -> Tensor:
    """Tokens one row costs a forward pass: prompt + response; 0 for a row without a response token, which
    predicts nothing and joins no forward pass."""
    response = batch.response_mask.sum(-1)                                              # (B,)
    return (batch.prompt_mask.sum(-1) + response) * (response > 0)                      # (B,)


def sequence_logprobs(model, batch: RolloutBatch, rows: list[int], temperature: float, with_entropy: bool, *,
                      overhead_tokens: int | None = None) -> tuple[Tensor, Tensor | None, Tensor]:
    """log pi(y_t | x, y_<t) of the response tokens of ``rows``, trimmed to the longest response among them.

    Returns (logp (b, R'), entropy (b, R') or None, response_mask (b, R')), float32, 0 on padding, row k of each
    being ``rows[k]``. The body runs once per forward bucket (``forward_buckets(..., overhead_tokens)``; None =
    ``FORWARD_OVERHEAD_TOKENS``). Runs in the caller's autocast context (``policy.compute_context``).
    """
    body, head = body_and_head(model)
    device = next(model.parameters()).device
    b, R = len(rows), int(batch.response_mask[rows].sum(-1).max())
    response_mask = batch.response_mask[rows, :R].to(device)                            # (b, R)
    lengths = sequence_lengths(batch)[rows]                                            # (b,)
    order, hidden, ids = [], [], []
    overhead_tokens = forward_overhead_tokens(device.type) if overhead_tokens is None else overhead_tokens
    for bucket in forward_buckets(list(range(b)), lengths, overhead_tokens):
        order += bucket
        h, y = _bucket_hidden(body, batch, [rows[k] for k in bucket], R, device)        # (N_k, H), (N_k,)
        hidden.append(h)
        ids.append(y)
    order += [k for k in range(b) if lengths[k] == 0]  # rows without a response token: no pass, last in order
    # tokens are in bucket order: row order[0]'s response tokens first, then row order[1]'s, ...
    h = torch.cat(hidden) if hidden else torch.zeros(0, 0, device=device)   # (N, H); no token: nothing projected
    y = torch.cat(ids) if ids else torch.zeros(0, dtype=torch.long, device=device)             # (N,)
    logp_flat, ent_flat = chunked_logprobs(head, h, y, temperature, with_entropy)                # (N,), (N,)
    perm = torch.tensor(order, device=device)                                           # (b,) bucket position -> k
    back = torch.empty_like(perm)
    back[perm] = torch.arange(b, device=device)                                         # (b,) k -> bucket position
    keep = response_mask[perm].bool()                                                   # (b, R) in bucket order
    zeros = torch.zeros(b, R, dtype=torch.float32, device=device)
    logp = zeros.masked_scatter(keep, logp_flat)[back]                                  # (b, R)
    entropy = zeros.masked_scatter(keep, ent_flat)[back] if with_entropy else None      # (b, R)
    return logp, entropy, response_mask


def _bucket_hidden(body, batch: RolloutBatch, rows: list[int], R: int, device) -> tuple[Tensor, Tensor]:
    """Final hidden states that predict the response tokens of ``rows`` (one forward pass), row-major: (N, H), (N,)."""
    prompt_lens = batch.prompt_mask[rows].sum(-1)                                       # (b,)
    resp_lens = batch.response_mask[rows].sum(-1)                                       # (b,)
    b, W = len(rows), int((prompt_lens + resp_lens).max())
    keep = batch.response_mask[rows, :R].bool().to(device)                              # (b, R)
    P = batch.prompt_ids.shape[1]
    input_ids = torch.zeros(b, W, dtype=torch.long)                                     # (b, W) right-padded
    for k, r in enumerate(rows):
        p, n = int(prompt_lens[k]), int(resp_lens[k])
        input_ids[k, :p] = batch.prompt_ids[r, P - p:]  # prompts are left-padded: the real tokens are the last p
        input_ids[k, p:p + n] = batch.response_ids[r, :n]
    position_ids = torch.arange(W).expand(b, W)                                         # (b, W)
    # rows are right-padded: under causal attention a real position never attends to a later (padded) one, so
    # no mask is needed (exact at real positions; tests/test_logprobs.py), and SDPA may pick its fastest kernel
    hidden = body(input_ids=input_ids.to(device), attention_mask=None, position_ids=position_ids.to(device),
                  use_cache=False).last_hidden_state                                    # (b, W, H)
    # the hidden state at position p - 1 + t predicts response token t
    where = (prompt_lens[:, None] - 1 + torch.arange(R)).clamp(max=W - 1).to(device)    # (b, R)
    row_of = torch.arange(b, device=device)[:, None].expand(b, R)                       # (b, R)
    return hidden[row_of[keep], where[keep]], batch.response_ids[rows, :R].to(device)[keep]


# ---- micro-batch planning -----------------------------------------------------------------------

def micro_batches(rows: list[int], seq_lengths: Tensor, max_tokens: int) -> list[list[int]]:
    """Greedy packing of rows (in the given order) into micro-batches whose padded size n x max_len fits."""
    out: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for r in rows:
        n = int(seq_lengths[r])
        if current and (len(current) + 1) * max(longest, n) > max_tokens:
            out.append(current)
            current, longest = [], 0
        current.append(r)
        longest = max(longest, n)
    if current:
        out.append(current)
    return out


def plan_micro_batches(rows: list[int], seq_lengths: Tensor, max_tokens: int) -> list[list[int]]:
    """Length-aware plan: rows sorted longest first (ties by index), then packed greedily by ``micro_batches``.

    Rows of similar length share a micro-batch, so little padding is computed; the longest micro-batch comes
    first, so a plan that does not fit in memory fails at once.
    """
    ordered = sorted(rows, key=lambda r: (-int(seq_lengths[r]), r))
    return micro_batches(ordered, seq_lengths, max_tokens)


def forward_buckets(rows: list[int], seq_lengths: Tensor, overhead_tokens: int | None = None) -> list[list[int]]:
    """Split one micro-batch into forward passes that compute few padded tokens: contiguous runs of the rows
    sorted longest first (ties by index) minimising

        cost = sum_k n_k x L_k + overhead_tokens x K        (n_k rows of longest length L_k in bucket k, K buckets)

    by dynamic programming over the boundaries between distinct lengths (rows of equal length never gain from
    being apart). ``overhead_tokens`` = 0 gives one bucket per distinct length (no padding at all); a huge one,
    a single bucket (the whole micro-batch padded to its longest row); None = ``FORWARD_OVERHEAD_TOKENS``.
    """
    overhead_tokens = FORWARD_OVERHEAD_TOKENS if overhead_tokens is None else overhead_tokens
    if overhead_tokens < 0:
        raise ValueError(f"overhead_tokens must be >= 0 (padded tokens one forward pass costs), got {overhead_tokens}")
    # rows of length 0 (no response token, see ``sequence_lengths``) join no forward pass
    ordered = sorted((r for r in rows if int(seq_lengths[r]) > 0), key=lambda r: (-int(seq_lengths[r]), r))
    if not ordered:
        return []
    lens = [int(seq_lengths[r]) for r in ordered]
    starts = [i for i in range(len(lens)) if i == 0 or lens[i] != lens[i - 1]] + [len(lens)]  # runs of equal length
    U = len(starts) - 1
    best = [0.0] + [float("inf")] * U           # best[j]: cheapest split of the first j runs
    cut = [0] * (U + 1)
    for j in range(1, U + 1):
        for i in range(j):  # last bucket = runs i..j-1: (rows in them) x (their longest = lens[starts[i]])
            cost = best[i] + (starts[j] - starts[i]) * lens[starts[i]] + overhead_tokens
            if cost < best[j]:
                best[j], cut[j] = cost, i
    bounds, j = [], U
    while j > 0:
        bounds.append((starts[cut[j]], starts[j]))
        j = cut[j]
    return [ordered[a:b] for a, b in reversed(bounds)]


def padding_counts(plan: list[list[int]], seq_lengths: Tensor, overhead_tokens: int | None = None) -> tuple[int, int]:
    """(padded tokens, computed tokens) of a plan as ``sequence_logprobs`` runs it: computed = sum over the forward
    buckets of each micro-batch of rows x longest."""
    buckets = [bucket for rows in plan for bucket in forward_buckets(rows, seq_lengths, overhead_tokens)]
    computed = sum(len(rows) * int(seq_lengths[rows].max()) for rows in buckets)
    real = sum(int(seq_lengths[rows].sum()) for rows in plan)
    return computed - real, computed


# ---- the old-policy and reference passes ---------------------------------------------------------

def reuse_sampling_logprobs(cfg: JustRLConfig, exact_sampler: bool) -> bool:
    """Whether logp_old is the sampler's log-probs (see ``JustRLConfig.recompute_old_logprobs``).

    ``exact_sampler``: the sampler's ``RolloutEngine.exact_policy_logprobs`` (its log-probs are the training
    model's own in float32).
    """
    if cfg.recompute_old_logprobs != "auto":
        return cfg.recompute_old_logprobs == "never"
    # the sampler is the training model itself, in float32, sampling from the unfiltered distribution
    return exact_sampler and cfg.dtype == "float32" and cfg.top_p == 1.0 and cfg.top_k == -1


@torch.no_grad()
def logprob_pass(model, batch: RolloutBatch, cfg: JustRLConfig, *, with_entropy: bool) -> tuple[Tensor, Tensor | None]:
    """Log-probs (and, if asked, entropy) of every response token under ``model``, no gradient, in eval mode.

    One loop for both passes that score a finished batch: the old-log-prob pass (the policy before its update)
    and the KL ablation's reference pass. Rows run in the same length-aware micro-batches as the update.
    Returns ``(logp (B, R), entropy (B, R) or None)``, zero on padding.
    """
    was_training = model.training
    model.eval()
    B, R = batch.response_ids.shape
    logps = torch.zeros(B, R)                                                          # (B, R)
    entropy = torch.zeros(B, R) if with_entropy else None                              # (B, R)
    device = next(model.parameters()).device
    for rows in plan_micro_batches(list(range(B)), sequence_lengths(batch), cfg.micro_batch_max_tokens):
        with compute_context(cfg, device):
            logp, ent, _ = sequence_logprobs(model, batch, rows, cfg.temperature, with_entropy)
        logps[rows, : logp.shape[1]] = logp.cpu()
        if entropy is not None:
            entropy[rows, : ent.shape[1]] = ent.cpu()
    model.train(was_training)
    mask = batch.response_mask
    return logps * mask, (entropy * mask if entropy is not None else None)


def compute_old_logprobs(model, batch: RolloutBatch, cfg: JustRLConfig) -> tuple[Tensor, Tensor]:
    """logp_old and policy entropy of every response token under the current policy, before any update."""
    old_logp, entropy = logprob_pass(model, batch, cfg, with_entropy=True)
    return old_logp, entropy


def compute_ref_logprobs(ref_model, batch: RolloutBatch, cfg: JustRLConfig) -> Tensor:
    """Reference-policy log-probs, only for the KL ablation (kl_coef > 0; JustRL uses none)."""
    return logprob_pass(ref_model, batch, cfg, with_entropy=False)[0]
