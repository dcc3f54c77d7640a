"""The model judge of the paper's evaluation: CompassVerifier-3B, asked only about what the rule grader rejected.

    correct = rule_correct  or  judge(question, gold answer, response) == "A"

As the authors ran it (thunlp/JustRL ``evals/grade.py``):
  1. the judge is ``opencompass/CompassVerifier-3B`` through vLLM, greedy (temperature 0), at most 2,048 new
     tokens, one user message through the judge's chat template with the generation prompt;
  2. its prompt is CompassVerifier's grading prompt (``JUDGE_PROMPT``), filled with an *empty* question (their
     results files have no ``question`` field), the ground truth as stored (AIME24's ``\\boxed{204}`` too) and
     the *whole* response;
  3. the verdict is correct iff the reply, stripped, is exactly ``"A"`` (``"B"`` incorrect, ``"C"`` invalid);
  4. only samples the rule grader rejected are asked, so the judge can only raise a score.
The model call is injectable (``CompassVerifierJudge(generate=..., tokenizer=...)``): the logic is tested on CPU
with a fake; the real judge needs a CUDA GPU and vLLM.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Sequence

from justrl_lite.config import EVAL_PROMPT_SUFFIX
from justrl_lite.evaluation.files import EvaluationError

logger = logging.getLogger(__name__)

JUDGE_MODEL = "opencompass/CompassVerifier-3B"
JUDGE_MAX_NEW_TOKENS = 2048
JUDGE_TEMPERATURE = 0.0
JUDGE_QUESTION = ""
"""The question the authors' judge saw: none (their JSONL files have no ``question`` field)."""

JUDGE_CHOICES = ("auto", "on", "off")
"""``--judge``: ``auto`` asks the judge when comparing with the paper and a CUDA GPU with vLLM is there."""

JUDGE_GPU_MEMORY_UTILIZATION = 0.3
"""Share of GPU memory the judge's vLLM engine takes (the policy's engine may still hold the rest)."""

JUDGE_PROMPT = (
    "\nPlease as a grading expert, judge whether the final answers given by the candidates below are consistent "
    "with the standard answers, that is, whether the candidates answered correctly. \n"
    "Here are some evaluation criteria:\n"
    "1. Please refer to the given standard answer. You don't need to re-generate the answer to the question "
    "because the standard answer has been given. You only need to judge whether the candidate's answer is "
    "consistent with the standard answer according to the form of the question. THE STANDARD ANSWER IS ALWAYS "
    "CORRECT AND THE QUESTION IS PERFECTLY VALID. NEVER QUESTION THEM.\n"
    "2. ONLY compare the FINAL ANSWER - COMPLETELY IGNORE any potential errors in the REASONING PROCESSES.\n"
    "3. Some answers may be expressed in different ways, such as some answers may be a mathematical expression, "
    "some answers may be a textual description, as long as the meaning expressed is the same. Before making a "
    "judgment, please understand the question and the standard answer first, and then judge whether the "
    "candidate's answer is correct.\n"
    "4. Some answers may consist of multiple items, such as multiple-choice questions, multiple-select "
    "questions, fill-in-the-blank questions, etc. Regardless of the question type, the final answer will be "
    "considered correct as long as it matches the standard answer, regardless of whether the reasoning process "
    "is correct. For multiple-select questions and multi-blank fill-in-the-blank questions, all corresponding "
    "options or blanks must be answered correctly and match the standard answer exactly to be deemed correct.\n"
    "5. If the prediction is given with \\boxed{{}}, please ignore the \\boxed{{}} and only judge whether the "
    "candidate's answer is consistent with the standard answer.\n"
    "6. If the candidate's answer is invalid (e.g., incomplete (cut off mid-response), lots of unnormal "
    "repetitive content, or irrelevant to the question, saying it can't answer the question because some "
    "irresistible factors, like ethical issues, no enough information, etc.), select option C (INVALID).Please "
    "judge whether the following answers are consistent with the standard answer based on the above criteria. "
    "Grade the predicted answer of this new question as one of:\n"
    "A: CORRECT \n"
    "B: INCORRECT\n"
    "C: INVALID\n"
    'Just return the letters "A", "B", or "C", with no text around it.\n'
    "Here is your task. Simply reply with either CORRECT, INCORRECT, or INVALID. Don't apologize or correct "
    "yourself if there was a mistake; we are just trying to grade the answer.\n"
    "<Original Question Begin>:\n{question}\n<Original Question End>\n"
    "<Standard Answer Begin>:\n{gold_answer}\n<Standard Answer End>\n"
    "<Candidate's Answer Begin>: \n{llm_response}\n<Candidate's Answer End>\n"
    "Judging the correctness of the candidate's answer:\n"
)
"""CompassVerifier's grading prompt, word for word as the authors filled it (a ``str.format`` template)."""

JudgeFn = Callable[[list[tuple[str, str, str]]], list[bool]]
"""(question, gold answer, response) triples -> one verdict (correct?) per triple."""


def build_judge_prompt(question: str, gold_answer: str, response: str) -> str:
    return JUDGE_PROMPT.format(question=question, gold_answer=gold_answer, llm_response=response)


def judge_verdict(reply: str) -> bool:
    """The authors' rule: correct iff the judge's reply, stripped, is exactly ``"A"``."""
    return reply.strip() == "A"


def question_of(prompt: str) -> str:
    """The problem text of a stored prompt (the evaluation suffix removed); the authors' judge did not see it."""
    return prompt.removesuffix(EVAL_PROMPT_SUFFIX)


def judge_unavailable_reason() -> str | None:
    """Why the real judge cannot run here (no CUDA GPU, no vLLM), or None when it can."""
    if importlib.util.find_spec("vllm") is None:
        return "the judge runs through vLLM, which is not installed (`pip install -e .[vllm]` on a GPU machine)"
    import torch

    if not torch.cuda.is_available():
        return f"the judge ({JUDGE_MODEL}, a 3B model) needs a CUDA GPU and none is visible"
    return None


def require_cuda(what: str) -> None:
    reason = judge_unavailable_reason()
    if reason is not None:
        raise EvaluationError(f"{what}: {reason}; drop --judge to grade with the rule grader only (CUDA and "
                              f"vLLM are needed), or run on a GPU machine")


class CompassVerifierJudge:
    """The judge as a ``JudgeFn``. ``generate`` (chat-formatted prompts -> replies) and ``tokenizer`` replace
    the vLLM engine, which is otherwise built on first use (CUDA and vLLM required, checked at construction)."""

    def __init__(self, model_id: str = JUDGE_MODEL, *, generate: Callable[[list[str]], list[str]] | None = None,
                 tokenizer=None, gpu_memory_utilization: float = JUDGE_GPU_MEMORY_UTILIZATION) -> None:
        if generate is None:
            require_cuda("--judge")
        elif tokenizer is None:
            raise ValueError("CompassVerifierJudge(generate=...) needs the judge's tokenizer too")
        self.model_id = model_id
        self.gpu_memory_utilization = gpu_memory_utilization
        self._generate = generate
        self.tokenizer = tokenizer

    def _load(self) -> None:
        import vllm

        try:
            llm = vllm.LLM(model=self.model_id, tensor_parallel_size=1,
                           gpu_memory_utilization=self.gpu_memory_utilization)
        except OSError as e:
            raise EvaluationError(f"cannot load the judge {self.model_id!r} ({e}); download it first with "
                                  f"`huggingface-cli download {self.model_id}` on a machine with internet") from e
        # greedy, at most 2,048 tokens (a reply longer than one letter is not "A" anyway)
        params = vllm.SamplingParams(temperature=JUDGE_TEMPERATURE, max_tokens=JUDGE_MAX_NEW_TOKENS)
        self.tokenizer = llm.get_tokenizer()
        self._generate = lambda prompts: [o.outputs[0].text for o in llm.generate(prompts, params)]

    def chat_prompt(self, question: str, gold_answer: str, response: str) -> str:
        """The judge's input: the filled prompt as one user message, with the generation prompt."""
        message = [{"role": "user", "content": build_judge_prompt(question, gold_answer, response)}]
        return self.tokenizer.apply_chat_template(message, add_generation_prompt=True, tokenize=False)

    def __call__(self, items: list[tuple[str, str, str]]) -> list[bool]:
        if self._generate is None:
            self._load()
        replies = self._generate([self.chat_prompt(*item) for item in items])
        return [judge_verdict(reply) for reply in replies]


def apply_judge(records: Sequence[dict], judge: JudgeFn, *, with_question: bool = False) -> int:
    """Ask ``judge`` about every record the rule grader rejected that has no verdict yet; return how many.

    ``correct = rule_correct or judge_correct``. The question is empty, as the authors', unless
    ``with_question`` (then the problem text of ``prompt``).
    """
    todo = []
    for r in records:
        r.setdefault("rule_correct", bool(r["correct"]))
        if r["rule_correct"]:
            r["judge_correct"] = None
        elif r.get("judge_correct") is None:
            todo.append(r)
    if todo:
        verdicts = judge([(question_of(str(r.get("prompt", ""))) if with_question else JUDGE_QUESTION,
                           str(r["answer"]), str(r["response"])) for r in todo])
        if len(verdicts) != len(todo):
            raise EvaluationError(f"the judge returned {len(verdicts)} verdicts for {len(todo)} samples")
        for r, verdict in zip(todo, verdicts):
            r["judge_correct"] = bool(verdict)
    for r in records:
        r["correct"] = bool(r["rule_correct"] or r["judge_correct"])
    return len(todo)


def choose_judge(judge: str | JudgeFn | None, compare: str | None) -> JudgeFn | None:
    """The judge to use: a ``JudgeFn`` as given; ``"on"`` the real one (or an error saying why not); ``"auto"``
    the real one when comparing with the paper and it can run here (else None, with a warning); else None."""
    if judge is None or callable(judge):
        return judge
    if judge not in JUDGE_CHOICES:
        raise EvaluationError(f"--judge must be one of {', '.join(JUDGE_CHOICES)}, got {judge!r}")
    if judge == "on":
        return CompassVerifierJudge()
    if judge == "auto" and compare is not None:
        reason = judge_unavailable_reason()
        if reason is None:
            return CompassVerifierJudge()
        logger.warning("rule-only scores beside the paper's judge-assisted ones: %s", reason)
    return None
