"""The one error family: every error a user can cause derives from ``JustRLError``.

A bad config value, a malformed data row, an unreadable checkpoint, a run that cannot fit its device: each
module raises its own subclass (``ConfigError`` in ``config_checks``, ``DataError`` in ``data``,
``CheckpointError`` in ``checkpoint``, ``TrainerError`` / ``DeviceError`` / ``ModelLoadError`` in ``policy``,
``EvaluationError`` in ``evaluation/files``, ``ExportError`` in ``scale/export``, ``ExerciseError`` and
``ColabError`` in ``course``), whose message already says what to do. A command catches ``JustRLError`` once and
prints that message as one line (exit code 2); anything else is a bug and keeps its traceback.

Each subclass also derives from the built-in exception it replaced (``ValueError`` for bad values,
``RuntimeError`` for failed operations), so ``except ValueError`` around a config still works.
"""


class JustRLError(Exception):
    """An error the user can cause and fix; its message says what to do. Commands print it as one line."""
