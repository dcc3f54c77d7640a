"""Evaluation grading: is a response's final answer equal to the ground truth, leniently?

Training never imports this package: its reward is the strict string match in ``verifier.py``. Evaluation
(and the lenient-verifier ablation) grade here:
    grade.py        - ``grade`` / ``grade_many``: the authors' rule grader (``paper``) or ours (``math-verify``)
    paper_grader.py - the authors' rule stages: MATH-style string normalisation, then SymPy equivalence
    latex_text.py   - LaTeX -> plain text for the paper grader
    pool.py         - ``GraderPool``: SymPy in killable worker processes, each call under a timeout
    worker.py       - what runs inside a pool's worker process: one JSON job in, one verdict out
"""
