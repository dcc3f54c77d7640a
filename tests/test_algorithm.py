"""Algorithm 1 (notebook 05) is generated from the trainer: every function it names exists, is called by the
function that runs the step, in the steps' order; the docstring's ``-> x.py`` pointers agree with the code."""

from __future__ import annotations

import inspect

import pytest
import torch

from justrl_lite import trainer
from justrl_lite.advantage import broadcast_to_tokens, grpo_advantages
from justrl_lite.course import algorithm
from justrl_lite.course.algorithm import algorithm_steps, package_calls, render_algorithm, resolve


def test_every_step_of_the_docstring_is_marked_once_in_order_and_names_functions_that_exist():
    steps = algorithm_steps()
    assert [s.number for s in steps] == list(range(1, 8))
    assert {s.where for s in steps[:6]} == {"trainer.train_step"} and steps[6].where == "trainer.train"
    for s in steps:
        assert s.calls, f"step {s.number} names no function"
        for name in s.calls:
            assert callable(resolve(name)), name


def test_the_named_functions_appear_in_the_step_functions_source_in_the_steps_order():
    steps = algorithm_steps()
    for where in ("trainer.train_step", "trainer.train"):
        source = inspect.getsource(resolve(where))
        mine = [s for s in steps if s.where == where]
        marks = [source.index(f"# {s.number}. ") for s in mine]
        assert marks == sorted(marks)
        for s, start, end in zip(mine, marks, marks[1:] + [len(source)]):
            for name in s.calls:  # called between its step's comment and the next step's
                assert f"{name.rsplit('.', 1)[1]}(" in source[start:end], (s.number, name)


def test_the_docstrings_module_pointers_name_a_module_the_step_calls_into():
    for s in algorithm_steps():
        reached = {name.split(".")[0] for name in s.calls}
        for name in s.calls:  # one level down: update_policy -> loss.policy_loss
            target = resolve(name)
            if inspect.isfunction(target):
                reached |= {callee.split(".")[0] for _, callee in package_calls(target)}
        for module in s.modules:
            assert module.removesuffix(".py") in reached, (s.number, module, reached)


def test_the_box_shows_each_step_and_each_function():
    box = render_algorithm()
    lines = box.splitlines()
    assert len({len(line) for line in lines}) == 1                        # a closed box
    for s in algorithm_steps():
        assert f"  {s.number}. {s.text.splitlines()[0]}" in box
        for name in s.calls:
            assert name in box


DOC = """A toy trainer.

One training step:
  1. the rewards' advantages                     -> advantage.py
  2. on every token
"""


def toy_step(rewards: torch.Tensor, group_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    # 1. advantages
    advantages = grpo_advantages(rewards, group_ids)
    # 2. broadcast
    return broadcast_to_tokens(advantages, mask)


def toy_step_swapped(rewards: torch.Tensor, group_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    # 2. broadcast
    advantages = grpo_advantages(rewards, group_ids)
    # 1. advantages
    return broadcast_to_tokens(advantages, mask)


def toy_step_unmarked(rewards: torch.Tensor, group_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    # 1. advantages
    advantages = grpo_advantages(rewards, group_ids)
    return broadcast_to_tokens(advantages, mask)


def test_steps_are_read_from_the_code_and_a_missing_or_misordered_mark_is_an_error():
    steps = algorithm_steps((toy_step,), DOC)
    assert [(s.number, s.calls, s.modules) for s in steps] == [
        (1, ("advantage.grpo_advantages",), ("advantage.py",)), (2, ("advantage.broadcast_to_tokens",), ())]
    assert steps[0].text == "the rewards' advantages" and steps[0].where.endswith("toy_step")
    for bad in (toy_step_swapped, toy_step_unmarked):
        with pytest.raises(ValueError, match="mark each item once, in order"):
            algorithm_steps((bad,), DOC)


def test_a_method_on_an_annotated_argument_resolves_to_its_class():
    calls = [name for _, name in package_calls(trainer.train_step)]
    assert "rollout.RolloutEngine.generate" in calls and "trainer.prompt_indices" in calls
    assert algorithm.qualified_name(torch.tensor) is None
