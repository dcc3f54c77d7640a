"""A tiny world that behaves like the paper's: a toy math task, a byte-level BPE tokenizer with
DeepSeek-R1-Distill's chat template, and a few-million-parameter Qwen2 "distilled reasoner" base.

  - ``task``: integer-answer word problems with worked solutions, in the DAPO-Math-17k row schema;
  - ``tokenizer``: ``build_tokenizer(texts)``;
  - ``model``: ``tiny_qwen2_config(vocab_size)``, ``build_random_model(tokenizer, seed)``;
  - ``make_base``: supervised fine-tuning on imperfect demonstrations -> ``data/toy/base/``;
  - ``fractions`` and ``make_fractions_base``: a second task (fraction sums with several correct written forms and
    several solution paths) and its base -> ``data/toy_frac/``, built so that the paper's ablation claims
    can be tested.
"""
