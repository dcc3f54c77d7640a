"""A real byte-level BPE tokenizer for the toy task, with DeepSeek-R1-Distill's chat template.

The toy base model stands in for DeepSeek-R1-Distill-Qwen-1.5B, so its tokenizer mirrors that model's
(not its 151k vocabulary):

  1. **Qwen2's pipeline**: NFC normalisation, Qwen2's pre-tokenizer regex (the one ``transformers``'
     ``Qwen2Tokenizer`` uses), byte-level BPE trained with the ``tokenizers`` library on the toy corpus.
     Byte-level means every string encodes and ``decode(encode(text)) == text`` exactly; that matters because
     ``dapo_reward`` compares the decoded ``\\boxed{...}`` content character for character. Using Qwen2's
     pipeline is not only faithful: ``AutoTokenizer.from_pretrained`` on a folder whose ``config.json`` says
     ``qwen2`` always rebuilds a ``Qwen2Tokenizer`` around the saved vocabulary (transformers 5), so any
     other pre-tokenizer would silently tokenise differently after loading.
  2. **Whole words and whole numbers are single tokens.** The trainer's vocabulary budget exceeds what the
     corpus can use, so it merges until every word (``" apples"``, ``" answer"``) is one token. Qwen2 splits
     numbers digit by digit; here every number below ``NUMBER_TOKENS`` (bare, ``"17"``, and with its leading
     space, ``" 17"``) is an added token, so the toy arithmetic reads a number as one symbol and sequences
     stay short (prompts of ~30 tokens, solutions of ~35), which is what lets 2 CPU cores run GRPO in minutes.
  3. **DeepSeek-R1-Distill's special tokens and chat template**: ``<｜begin▁of▁sentence｜>`` (bos),
     ``<｜User｜>``, ``<｜Assistant｜>``, ``<｜end▁of▁sentence｜>`` (eos) and the generation prompt
     ``<｜Assistant｜><think>\\n``, so a rendered prompt reads exactly like the paper's. ``<think>`` and
     ``</think>`` are added (non-special) tokens, as in DeepSeek's tokenizer: they survive
     ``skip_special_tokens=True``. Unlike DeepSeek's (which pads with eos) we add a distinct pad token, so
     padding can never be confused with a model that stopped. No bos is added on encoding: the chat template
     writes it.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX as QWEN2_PRETOKENIZE_REGEX

BOS_TOKEN = "<｜begin▁of▁sentence｜>"
EOS_TOKEN = "<｜end▁of▁sentence｜>"
PAD_TOKEN = "<｜▁pad▁｜>"
UNK_TOKEN = "<|endoftext|>"  # Qwen2Tokenizer's default unk; present so loading adds nothing (never produced)
USER_TOKEN = "<｜User｜>"
ASSISTANT_TOKEN = "<｜Assistant｜>"
SPECIAL_TOKENS = (BOS_TOKEN, EOS_TOKEN, PAD_TOKEN, USER_TOKEN, ASSISTANT_TOKEN, UNK_TOKEN)
"""Removed by ``decode(..., skip_special_tokens=True)``."""

THINK_TOKENS = ("<think>", "</think>")
"""Single tokens that stay in decoded text (DeepSeek-R1-Distill marks them non-special too)."""

NUMBER_TOKENS = 100
"""Numbers 0..NUMBER_TOKENS-1 are single tokens, bare and with a leading space."""

GENERATION_PROMPT = ASSISTANT_TOKEN + "<think>\n"
"""What ``add_generation_prompt=True`` appends: the response starts inside the reasoning block."""

# DeepSeek-R1-Distill-Qwen's template, reduced to what the toy task uses (system, user, assistant turns).
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}"
    "{% elif message['role'] == 'user' %}{{ '" + USER_TOKEN + "' + message['content'] }}"
    "{% elif message['role'] == 'assistant' %}"
    "{{ '" + ASSISTANT_TOKEN + "' + message['content'] + eos_token }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '" + GENERATION_PROMPT.replace("\n", "\\n") + "' }}{% endif %}"
)

VOCAB_BUDGET = 32000
"""Upper bound handed to the BPE trainer; the toy corpus runs out of merges long before (a few thousand)."""


def qwen2_pipeline(tokenizer: Tokenizer) -> Tokenizer:
    """Give ``tokenizer`` Qwen2's normaliser, pre-tokenizer and decoder (as ``transformers``' ``Qwen2Tokenizer``)."""
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def number_tokens(limit: int = NUMBER_TOKENS) -> list[AddedToken]:
    """``"0"``, ``" 0"``, ``"1"``, ``" 1"``, ... as added tokens (matched in raw text before pre-tokenization)."""
    return [AddedToken(text, normalized=False) for i in range(limit) for text in (str(i), f" {i}")]


def build_tokenizer(texts: Iterable[str]) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on ``texts`` and wrap it, with special tokens and chat template, for ``transformers``.

    Deterministic: the same texts give the same vocabulary and merges. Every word of ``texts`` becomes one token.
    """
    bpe = qwen2_pipeline(Tokenizer(models.BPE()))
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_BUDGET,
        min_frequency=1,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes: any text encodes
        show_progress=False,
    )
    bpe.train_from_iterator(list(texts), trainer=trainer)
    bpe.add_tokens([AddedToken(t, normalized=False) for t in THINK_TOKENS] + number_tokens())

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        additional_special_tokens=[USER_TOKEN, ASSISTANT_TOKEN],
        clean_up_tokenization_spaces=False,
        model_max_length=1024,
        padding_side="left",  # prompts are left-padded for generation
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer
