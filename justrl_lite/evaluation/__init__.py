"""The pieces of ``python -m justrl_lite.evaluate`` (the command itself is ``evaluate.py``, at the top level).

    engine.py   - the model loader and the sampler an evaluation uses (HF or vLLM), with its memory guard
    sampling.py - the paper's sampling settings, per-sample seeds, one benchmark's generations
    files.py    - results files: one JSON line per sample, appended as it goes, so an evaluation resumes
    judge.py    - the CompassVerifier-3B judge for what the rule grader rejects
    scores.py   - avg@k per benchmark, the summary table and the paper's numbers beside it
    regrade.py  - ``python -m justrl_lite.evaluation.regrade``: regrade saved samples with both graders
"""
