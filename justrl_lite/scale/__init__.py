"""Beyond one small machine: the paper-scale estimate, export, and the verl launch.

    estimate.py    - per-GPU memory and time of a config (``full_run --dry-run``)
    export.py      - ``python -m justrl_lite.scale.export``: a checkpoint -> a Hugging Face folder in a chosen dtype
    verl_launch.py - ``full_run --engine verl``: the same config rendered as a verl 0.9.1 launch (multi-GPU, multi-node)
    verl_reward.py - the JustRL reward as a verl custom reward function (no torch/transformers imports)
    verl_metrics.py - verl's logged metrics read under the native metric names
"""
