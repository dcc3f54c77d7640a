"""What only the notebooks use: exercises, the Colab set-up cell, teaching figures and data, Algorithm 1.

    exercises.py     - exercise stubs, ``expect`` and the scoreboard (solutions injected by ``JUSTRL_SOLUTIONS=1``)
    exercise_checks.py - the checks of the core exercises (z-score, clipped loss, update step) against the package
    colab.py         - every notebook's first (set-up) cell and the README's Colab badges, from one URL
    notebook_data.py - benchmark rows for the notebooks: the authors' files, else the hub, else data/specimens
    plots.py         - the notebooks' teaching figures (clipping token by token, advantage over (n, k), ...)
    algorithm.py     - Algorithm 1, generated from ``trainer.py``'s numbered steps
"""
