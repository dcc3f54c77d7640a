"""Course figures: four pictures the notebooks draw from the package's own functions.

Each figure has a data function (tested against an independent re-derivation) and a drawing function that
draws exactly that data (tested by reading the data back from the figure's artists):

1. ``token_clip_status`` / ``plot_token_clipping`` (notebook 04): one response token by token, its advantage,
   each token's ratio r_t = exp(log pi_new - log pi_old), and the tokens whose gradient the clip zeroes. Per token,
   with ``loss.policy_loss`` on that token alone:
       L_t = max(-A r_t, -A clip(r_t, 1 - 0.2, 1 + 0.28)),  L_t = min(L_t, -A c) if A < 0,
       zeroed  <=>  dL_t / dlog pi_new(y_t) = 0   (the ratio clip when A > 0 and r_t > 1.28 or A < 0 and r_t < 0.8;
                                                    the dual clip when A < 0 and r_t > c = 10).
2. ``advantage_grid`` / ``plot_advantage_grid`` (notebook 03b): the GRPO advantage of a correct and of an incorrect
   response for k correct out of n (scores +1 / -1), from ``advantage.grpo_advantages``; closed form
   A+ = sqrt((n-1)(n-k)/(n k)), A- = -sqrt((n-1) k/(n (n-k))); 0 for k = 0 or n.
3. ``entropy_by_temperature`` / ``plot_entropy_vs_temperature`` (notebook 02): per-token entropy
   H_t = -sum_v p_v log p_v, p = softmax(z_t / T), of responses sampled at temperature T, from
   ``logprobs.sequence_logprobs``. JustRL trains at T = 1.0 and evaluates at T = 0.7.
4. ``micro_batch_layout`` / ``plot_micro_batches`` (notebook 05): what ``logprobs.plan_micro_batches`` returns,
   drawn through public results only (the rows of each micro-batch, their lengths, and ``logprobs.padding_counts``
   for the tokens computed): a forward pass right-pads its rows to its longest row, so it computes
   rows x longest tokens, the rest of them padding.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence

import numpy as np
import torch

from justrl_lite.advantage import grpo_advantages
from justrl_lite.logprobs import padding_counts, sequence_logprobs
from justrl_lite.loss import LOG_RATIO_CLAMP, policy_loss

RATIO_CLIP_COLOR, DUAL_CLIP_COLOR = "tab:red", "black"


# ---- 1. one response, token by token ----------------------------------------------------------------------

def token_clip_status(logp_new: torch.Tensor, logp_old: torch.Tensor, advantage: float, *, clip_ratio_low: float,
                      clip_ratio_high: float, clip_ratio_c: float) -> dict[str, np.ndarray]:
    """Per token of one response, (T,) log-probs -> ratio, loss, gradient and clip flags, each a (T,) array.

    Every token goes through ``policy_loss`` alone (a (1, 1) batch, token-mean = its own loss), so the flags are the
    package's: ``ratio_clipped`` (its ``clip_frac``), ``dual_clipped`` (its ``dual_clip_frac``), and ``zeroed`` is
    either of them: a clip acts, and ``grad`` = dL_t / dlog pi_new(y_t) (by autograd) is 0 there.
    """
    if logp_new.dim() != 1 or logp_new.shape != logp_old.shape:
        raise ValueError(f"logp_new and logp_old must be (T,) log-probs of one response's tokens, got shapes "
                         f"{tuple(logp_new.shape)} and {tuple(logp_old.shape)}")
    clip = dict(clip_ratio_low=clip_ratio_low, clip_ratio_high=clip_ratio_high, clip_ratio_c=clip_ratio_c)
    adv = torch.tensor([[float(advantage)]], dtype=torch.float64)  # (1, 1)
    out = {k: [] for k in ("loss", "grad", "ratio_clipped", "dual_clipped")}
    for new, old in zip(logp_new.detach().double().tolist(), logp_old.detach().double().tolist()):
        lp = torch.tensor([[new]], dtype=torch.float64, requires_grad=True)  # (1, 1)
        loss, metrics = policy_loss(lp, torch.tensor([[old]], dtype=torch.float64), adv, torch.ones(1, 1), **clip,
                                    loss_agg_mode="token-mean")
        (grad,) = torch.autograd.grad(loss, lp)
        out["loss"].append(loss.item())
        out["grad"].append(grad.item())
        out["ratio_clipped"].append(metrics["clip_frac"].item() == 1.0)
        out["dual_clipped"].append(metrics["dual_clip_frac"].item() == 1.0)
    # r_t = exp(log pi_new - log pi_old), |log r| clamped as in policy_loss
    log_ratio = torch.clamp(logp_new.detach().double() - logp_old.detach().double(), -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
    status = {k: np.asarray(v, dtype=bool if k.endswith("clipped") else float) for k, v in out.items()}
    status["ratio"] = torch.exp(log_ratio).numpy()  # (T,)
    status["zeroed"] = status["ratio_clipped"] | status["dual_clipped"]  # (T,)
    return status


def display_token(text: str) -> str:
    """A token as printed in a box: NFKC-normalised (full-width bars of special tokens become |), newlines as a
    return sign, tabs as an arrow, never empty."""
    text = unicodedata.normalize("NFKC", text)
    return text.replace("\n", "\u23ce").replace("\t", "\u2192") or "\u2205"


def plot_token_clipping(responses: Sequence[dict], *, clip_ratio_low: float, clip_ratio_high: float,
                        chars_per_line: int = 100, ratio_range: tuple[float, float] = (0.5, 2.0)):
    """Responses token by token: box colour = ratio r_t (log scale, grey at 1), hatched with a coloured edge where
    the gradient is zeroed (red: ratio clip, black: dual clip); the advantage beside each; r_t per token below.

    Each response is a dict with ``tokens`` (list of str), ``advantage`` (float), an optional ``label``, and the
    arrays of ``token_clip_status``. Token boxes carry the gid ``token <i> <t>``.
    """
    import matplotlib.pyplot as plt
    from matplotlib import colors
    from matplotlib.patches import Rectangle

    cmap, norm = plt.get_cmap("coolwarm"), colors.LogNorm(*ratio_range)
    lines = [_wrap([display_token(t) for t in r["tokens"]], chars_per_line) for r in responses]
    heights = [(max((row for row, _, _ in ln), default=0) + 1) * 0.32 + 0.5 for ln in lines] + [2.4]
    fig, axes = plt.subplots(len(responses) + 1, 1, figsize=(11, sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    axes = axes[:, 0]
    for i, (ax, resp, layout) in enumerate(zip(axes, responses, lines)):
        n_rows = max((row for row, _, _ in layout), default=0) + 1
        for t, ((row, col, width), tok) in enumerate(zip(layout, resp["tokens"])):
            zeroed, dual = bool(resp["zeroed"][t]), bool(resp["dual_clipped"][t])
            edge = DUAL_CLIP_COLOR if dual else RATIO_CLIP_COLOR if zeroed else "lightgrey"
            box = Rectangle((col, n_rows - 1 - row), width, 0.9, facecolor=cmap(norm(resp["ratio"][t])),
                            edgecolor=edge, linewidth=2.0 if zeroed else 0.5, hatch="////" if zeroed else None)
            box.set_gid(f"token {i} {t}")
            ax.add_patch(box)
            ax.text(col + width / 2, n_rows - 1 - row + 0.45, display_token(tok), ha="center", va="center",
                    family="monospace", fontsize=8)
        ax.set_xlim(0, chars_per_line)
        ax.set_ylim(-0.1, n_rows)
        ax.axis("off")
        zeroed_n = int(np.sum(resp["zeroed"]))
        ax.set_title(f"{resp.get('label', f'response {i}')}: A = {resp['advantage']:+.3f} on every token; "
                     f"{zeroed_n} of {len(resp['tokens'])} tokens get no gradient", fontsize=9, loc="left",
                     color="tab:green" if resp["advantage"] > 0 else "tab:red" if resp["advantage"] < 0 else "grey")
    ax = axes[-1]
    for i, resp in enumerate(responses):
        t = np.arange(len(resp["tokens"]))
        ax.plot(t, resp["ratio"], marker=".", color=f"C{i}", label=f"{resp.get('label', f'response {i}')} "
                f"(A {resp['advantage']:+.2f})", gid=f"ratio {i}")
        zeroed = np.asarray(resp["zeroed"], dtype=bool)
        ax.plot(t[zeroed], np.asarray(resp["ratio"])[zeroed], "x", color=RATIO_CLIP_COLOR, markersize=8,
                gid=f"zeroed {i}")
    ax.axhspan(1 - clip_ratio_low, 1 + clip_ratio_high, color="grey", alpha=0.15,
               label=f"no clip: [{1 - clip_ratio_low:g}, {1 + clip_ratio_high:g}]")
    ax.set_yscale("log")
    ax.set_xlabel("response token t")
    ax.set_ylabel("ratio $r_t$")
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(alpha=0.3)
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=list(axes[:-1]), label="ratio $r_t$ (box colour)",
                 fraction=0.03)
    return fig


def _wrap(texts: list[str], chars_per_line: int) -> list[tuple[int, int, int]]:
    """(line, column, width) of each token laid out left to right in lines of ``chars_per_line`` characters."""
    out, row, col = [], 0, 0
    for text in texts:
        width = min(len(text), chars_per_line)
        if col + width > chars_per_line:
            row, col = row + 1, 0
        out.append((row, col, width))
        col += width
    return out


# ---- 2. the advantage for k correct out of n -------------------------------------------------------------

def advantage_grid(n_max: int = 16, *, eps: float = 1e-6) -> dict[str, np.ndarray]:
    """The advantage of a correct (``a_correct``) and of an incorrect (``a_incorrect``) response in a group of n with
    k correct, for n = 1..n_max (rows) and k = 0..n_max (columns): (n_max, n_max + 1) arrays, NaN where no such
    response exists (k > n; no correct one at k = 0, no incorrect one at k = n).

    One call to ``grpo_advantages`` on all the groups at once (group (n, k): k scores +1, then n - k scores -1).
    """
    if isinstance(n_max, bool) or not isinstance(n_max, int) or n_max < 1:
        raise ValueError(f"n_max must be a whole number >= 1 (the largest group size), got {n_max!r}")
    scores, group_ids, where = [], [], []
    for n in range(1, n_max + 1):
        for k in range(n + 1):
            scores += [1.0] * k + [-1.0] * (n - k)
            group_ids += [len(where)] * n
            where.append((n, k, len(scores) - n))  # (n, k, index of the group's first response)
    adv = grpo_advantages(torch.tensor(scores, dtype=torch.float64), torch.tensor(group_ids), eps=eps).numpy()
    a_correct = np.full((n_max, n_max + 1), np.nan)
    a_incorrect = np.full((n_max, n_max + 1), np.nan)
    for n, k, start in where:
        if k > 0:
            a_correct[n - 1, k] = adv[start]  # the first k responses are the correct ones
        if k < n:
            a_incorrect[n - 1, k] = adv[start + k]
    return {"n": np.arange(1, n_max + 1), "k": np.arange(n_max + 1), "a_correct": a_correct,
            "a_incorrect": a_incorrect}


def plot_advantage_grid(grid: dict[str, np.ndarray], *, highlight_n: int | None = 8, annotate_n_max: int = 10):
    """Two heat maps over (k, n): the advantage of a correct and of an incorrect response; group size
    ``highlight_n`` (JustRL: 8) outlined; cells annotated with their value for n <= ``annotate_n_max``."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig, axes = plt.subplots(1, 2, figsize=(15, 6.5))
    vmax = float(np.nanmax(np.abs([grid["a_correct"], grid["a_incorrect"]])))
    for ax, key, title in ((axes[0], "a_correct", "advantage of a correct response ($s = +1$)"),
                           (axes[1], "a_incorrect", "advantage of an incorrect response ($s = -1$)")):
        values = grid[key]
        image = ax.imshow(np.ma.masked_invalid(values), origin="lower", cmap="RdBu", vmin=-vmax, vmax=vmax,
                          extent=(-0.5, values.shape[1] - 0.5, grid["n"][0] - 0.5, grid["n"][-1] + 0.5),
                          aspect="auto")
        for (row, k), a in np.ndenumerate(values):
            n = int(grid["n"][row])
            if n <= annotate_n_max and math.isfinite(a):  # one decimal at 9 pt: legible in every cell
                ax.text(k, n, f"{a:.1f}", ha="center", va="center", fontsize=9,
                        color="white" if abs(a) > 0.6 * vmax else "black")
        if highlight_n is not None:
            ax.add_patch(Rectangle((-0.5, highlight_n - 0.5), highlight_n + 1, 1, fill=False, linewidth=2,
                                   edgecolor="black", label=f"n = {highlight_n} (JustRL)"))
            ax.legend(fontsize=8, loc="upper left")
        ax.set_xlabel("k, correct responses in the group", fontsize=11)
        ax.set_ylabel("n, group size", fontsize=11)
        ax.tick_params(labelsize=10)
        ax.set_title(title, fontsize=12)
        fig.colorbar(image, ax=ax, label="$A_i$")
    fig.tight_layout()
    return fig


# ---- 3. entropy against the sampling temperature ---------------------------------------------------------

@torch.no_grad()
def entropy_by_temperature(engine, prompt_ids: list[list[int]], temperatures: Sequence[float], *, n: int,
                           max_new_tokens: int, seed: int) -> dict[float, dict[str, np.ndarray]]:
    """For each temperature T: sample ``n`` responses per prompt with ``engine`` (an ``HFRollout``) at T, then the
    entropy of softmax(z_t / T) at every sampled response token, from ``sequence_logprobs`` on ``engine.model``.

    Returns T -> {"entropy": (tokens,) per-token entropies in nats, "neg_logp": (tokens,) -log p of the sampled
    tokens as the sampler recorded them, "lengths": (B,) response lengths}.
    """
    out = {}
    for T in temperatures:
        batch = engine.generate(prompt_ids, n, temperature=float(T), top_p=1.0, top_k=-1,
                                max_new_tokens=max_new_tokens, seed=seed)
        rows = list(range(batch.response_ids.shape[0]))
        _, entropy, mask = sequence_logprobs(engine.model, batch, rows, float(T), with_entropy=True)  # (B, R')
        keep = mask.bool()
        out[float(T)] = {"entropy": entropy[keep].cpu().double().numpy(),
                         "neg_logp": -batch.sampling_logprobs[batch.response_mask.bool()].double().numpy(),
                         "lengths": batch.response_lengths.numpy()}
    return out


def plot_entropy_vs_temperature(results: dict[float, dict[str, np.ndarray]], *,
                                marks: dict[float, str] | None = None):
    """Per-token entropy of the sampled responses against T: a box per temperature (whiskers 5-95%), the mean as a
    line, the mean -log p of the sampled tokens as a second line; ``marks`` labels temperatures (T -> text)."""
    import matplotlib.pyplot as plt

    temps = sorted(results)
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.6 * min(np.diff(temps)) if len(temps) > 1 else 0.1
    boxes = ax.boxplot([results[T]["entropy"] for T in temps], positions=temps, widths=width, whis=(5, 95),
                       showfliers=False, manage_ticks=False)
    for T, median in zip(temps, boxes["medians"]):  # black: the default orange is the -log p line's colour
        median.set(color="black", linewidth=1.5, gid=f"median {T:g}")
    ax.plot([], [], color="black", linewidth=1.5, label="median entropy (box: 5-95%, quartiles)")
    ax.plot(temps, [results[T]["entropy"].mean() for T in temps], "o-", color="C0", label="mean entropy $H_t$",
            gid="mean entropy")
    ax.plot(temps, [results[T]["neg_logp"].mean() for T in temps], "s--", color="C1",
            label=r"mean $-\log p$ of the sampled token", gid="mean neg logp")
    for T, text in (marks or {}).items():
        ax.axvline(T, color="grey", lw=0.8, ls=":")
        ax.text(T, 0.5, f" {text}", rotation=90, va="center", ha="right", fontsize=8,
                transform=ax.get_xaxis_transform())
    ax.set_xlabel("sampling temperature T")
    ax.set_ylabel("nats per response token")
    ax.set_title("entropy of softmax(z / T) along responses sampled at T")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    return fig


# ---- 4. how rows pack into micro-batches ------------------------------------------------------------------

def micro_batch_layout(plan: Sequence[Sequence[int]], seq_lengths: torch.Tensor) -> list[dict]:
    """Per micro-batch of a plan: its ``rows``, their ``lengths`` (prompt + response tokens), ``real`` = their sum,
    ``computed`` = the tokens the package computes for it (``logprobs.padding_counts`` of that micro-batch alone:
    each forward pass right-pads its rows to its longest row) and ``padded`` = computed - real."""
    out = []
    for rows in plan:
        rows = [int(r) for r in rows]
        if not rows:
            raise ValueError("a micro-batch of the plan holds no row; a plan is a list of non-empty lists of rows")
        lengths = [int(seq_lengths[r]) for r in rows]
        padded, computed = padding_counts([rows], seq_lengths)
        out.append({"rows": rows, "lengths": lengths, "real": sum(lengths), "computed": computed, "padded": padded})
    return out


def plot_micro_batches(plans: dict[str, Sequence[Sequence[int]]], seq_lengths: torch.Tensor, *,
                       max_tokens: int | None = None):
    """Two rows of panels, one column per plan (e.g. per mini-batch), one bar per micro-batch.

    Top: the tokens the package computes for the micro-batch, its rows' real tokens end to end (blue, one segment
    per row, gid ``real <j> <row>``), then the padding (grey, hatched, gid ``pad <j>``). Bottom: what the planner's
    budget limits, rows x longest row (gid ``budget <j>``), against the budget ``max_tokens`` (dashed). The two
    differ (a forward pass may split a micro-batch into buckets), so they get separate axes."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(plans), figsize=(4.4 * len(plans), 5.6), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 2]})
    for ax, low, (name, plan) in zip(axes[0], axes[1], plans.items()):
        layout = micro_batch_layout(plan, seq_lengths)
        for j, mb in enumerate(layout):
            left = 0
            for row, length in zip(mb["rows"], mb["lengths"]):
                ax.barh(j, length, left=left, color="C0", edgecolor="white", linewidth=0.6, height=0.7,
                        gid=f"real {j} {row}")
                left += length
            ax.barh(j, mb["padded"], left=left, color="lightgrey", hatch="///", edgecolor="grey", height=0.7,
                    gid=f"pad {j}")
            ax.text(mb["computed"], j, f" {len(mb['rows'])} row{'s' if len(mb['rows']) > 1 else ''}", va="center",
                    fontsize=8)
            # the planner's measure of a micro-batch: rows x its longest row
            low.barh(j, len(mb["rows"]) * max(mb["lengths"]), color="C1", height=0.7, gid=f"budget {j}")
        padded, computed = padding_counts([list(r) for r in plan], seq_lengths)
        ax.set_title(f"{name}: {len(layout)} micro-batches, padding {padded / computed:.0%}", fontsize=9)
        for a in (ax, low):
            a.set_yticks(range(len(layout)), [f"micro-batch {j}" for j in range(len(layout))], fontsize=8)
            a.invert_yaxis()
        ax.set_xlabel("tokens computed: real (one segment per row) + padding", fontsize=8)
        low.set_xlabel("rows x longest row (what the budget limits)", fontsize=8)
        if max_tokens is not None:
            low.axvline(max_tokens, color="black", ls="--", lw=0.8)
            low.set_title(f"rows x longest vs the budget {max_tokens} (dashed)", fontsize=9)
    fig.tight_layout()
    return fig
