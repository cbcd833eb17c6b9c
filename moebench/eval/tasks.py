"""Offline lm-eval tasks that mirror the standard ones (prompt format, metrics, few-shot):
each local file in ../shared/data is converted once to the standard task's own schema,
and a generated YAML `include`s lm-eval's installed task config, replacing only where the
data comes from. Paths in the generated YAMLs are absolute (lm-eval resolves relative
`data_files` from the working directory).
"""

from __future__ import annotations

import bz2
import json
import re
from pathlib import Path

import lm_eval

from moebench.errors import UserError
from moebench.models.corpora import cache_dir
from moebench.paths import SHARED_DATA, atomic_file

LM_EVAL_TASKS = Path(lm_eval.__file__).parent / "tasks"

# task -> (lm-eval YAML to include, local source, converter name, caveat shown in the report)
OFFLINE_TASKS = {
    "wikitext": (
        "wikitext/wikitext.yaml",
        "wikitext-2-raw/wiki.test.raw",
        "wikitext",
        "WikiText-2 raw test split rebuilt into articles from the 2,891 non-empty lines "
        "(the original's blank lines are missing, so word counts differ slightly)",
    ),
    "lambada_openai": ("lambada/lambada_openai.yaml", "lambada/lambada_test.jsonl", "lambada", ""),
    "piqa": ("piqa/piqa.yaml", "piqa/valid.jsonl", "piqa", ""),
    "hellaswag": (
        "hellaswag/hellaswag.yaml",
        "hellaswag/hellaswag_val_full.txt.bz2",
        "hellaswag",
        "context taken from the llama.cpp text export (ctx_a + ctx_b joined)",
    ),
    "arc_easy": ("arc/arc_easy.yaml", "commonsense_llm_adapters/ARC-Easy/test.json", "arc", ""),
    "arc_challenge": (
        "arc/arc_easy.yaml",
        "commonsense_llm_adapters/ARC-Challenge/test.json",
        "arc",
        "",
    ),
    "winogrande": (
        "winogrande/default.yaml",
        "commonsense_llm_adapters/winogrande/test.json",
        "winogrande",
        "",
    ),
    "boolq": (
        "super_glue/boolq/default.yaml",
        "commonsense_llm_adapters/boolq/test.json",
        "boolq",
        "the local copy has no passages: the prompt's passage is empty, so scores measure "
        "question-only priors, not reading comprehension",
    ),
}


def _wikitext(path: Path):
    lines = path.read_text(encoding="utf-8").replace("\r", "").split("\n")
    pages, current = [], []
    for line in lines:
        if re.fullmatch(r" = [^=].* = ", line) and current:
            pages.append("\n".join(current) + "\n")
            current = []
        if line:
            current.append(line)
    if current:
        pages.append("\n".join(current) + "\n")
    return [{"page": p} for p in pages]


def _lambada(path: Path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _piqa(path: Path):
    labels = (path.parent / "valid-labels.lst").read_text().split()
    docs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [d | {"label": int(lab)} for d, lab in zip(docs, labels, strict=True)]


def _hellaswag(path: Path):
    with bz2.open(path, "rt", encoding="utf-8") as fh:
        lines = [line.rstrip("\n") for line in fh]
    docs = []
    for i in range(0, len(lines) - 5, 6):
        activity, _, ctx = lines[i].partition(": ")
        docs.append(
            {
                "activity_label": activity,
                "ctx_a": ctx,
                "ctx_b": "",
                "ctx": ctx,
                "endings": lines[i + 2 : i + 6],
                "label": lines[i + 1].strip(),
            }
        )
    return docs


def _arc(path: Path):
    docs = []
    for item in json.loads(path.read_text()):
        body = item["instruction"].split("question: ", 1)[1]
        question, _, options = body.partition("\n\n")
        options = options.split("\n\nAnswer format")[0]
        texts = [t.strip() for t in re.split(r"Answer\d+: ", options) if t.strip()]
        labels = [str(i + 1) for i in range(len(texts))]
        docs.append(
            {
                "question": question.strip(),
                "choices": {"text": texts, "label": labels},
                "answerKey": item["answer"].replace("answer", ""),
            }
        )
    return docs


def _winogrande(path: Path):
    docs = []
    for item in json.loads(path.read_text()):
        body = item["instruction"].split("sentence: ", 1)[1]
        sentence, _, options = body.partition("\n\n")
        m = re.match(r"Option1: (.*) Option2: (.*?) Answer format", options)
        docs.append(
            {
                "sentence": sentence.strip(),
                "option1": m.group(1).strip(),
                "option2": m.group(2).strip(),
                "answer": item["answer"].replace("option", ""),
            }
        )
    return docs


def _boolq(path: Path):
    docs = []
    for item in json.loads(path.read_text()):
        question = item["instruction"].split("question: ", 1)[1].split("\n\nAnswer format")[0]
        docs.append(
            {
                "passage": "",
                "question": question.rstrip("?"),
                "label": int(item["answer"] == "true"),
            }
        )
    return docs


CONVERTERS = {
    "wikitext": _wikitext,
    "lambada": _lambada,
    "piqa": _piqa,
    "hellaswag": _hellaswag,
    "arc": _arc,
    "winogrande": _winogrande,
    "boolq": _boolq,
}


def _heldout_works(corpus=None) -> list[str]:
    """The held-out works, one string each (from `corpus`, else the offline corpus)."""
    from moebench.models.corpora import SPECIAL_TOKENS, load_corpus

    valid = (corpus or load_corpus()).valid
    return [w.strip() for w in valid.split(SPECIAL_TOKENS[0]) if w.strip()]


def heldout_windows(works: list[str], words: int) -> list[str]:
    """Each work cut at line ends into windows of at least `words` words (a short tail joins
    the window before it): documents enough to put a paired interval on a perplexity ratio.
    The rolling evaluation still cuts each window at the model's context (512 tokens for the
    proxies, ~1,500-2,200 tokens a window), as it cut the whole works."""
    windows = []
    for work in works:
        lines, count, start = work.split("\n"), 0, len(windows)
        current: list[str] = []
        for line in lines:
            current.append(line)
            count += len(line.split())
            if count >= words:
                windows.append("\n".join(current))
                current, count = [], 0
        tail = "\n".join(current).strip()
        if tail and (count >= words // 2 or len(windows) == start):
            windows.append(tail)
        elif tail:
            windows[-1] += "\n" + "\n".join(current)
    return [w.strip() for w in windows]


HELDOUT_TASK = "heldout_ppl"
WINDOWS_TASK = "heldout_ppl_windows"
WINDOW_WORDS = 1000
GENERATED_YAML = """\
task: {task}
dataset_path: json
dataset_name: null
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
fewshot_split: test
output_type: multiple_choice
doc_to_text: "{{{{context}}}}"
doc_to_choice: choices
doc_to_target: label
target_delimiter: "{delimiter}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
  moebench_source: moebench.eval.heldout_tasks
  moebench_docs_sha256: {sha}
  moebench_context_free_acc: {baseline:.4f}
  moebench_caveat: "{caveat}"
"""


def _heldout_documents(kind: str) -> list[dict]:
    """`heldout`: one document per held-out work; `heldout_windows`: WINDOW_WORDS-word windows."""
    works = _heldout_works()
    texts = works if kind == "heldout" else heldout_windows(works, WINDOW_WORDS)
    return [{"page": text + "\n"} for text in texts]


def _write_if_changed(path: Path, text: str) -> None:
    """Atomically (paths.atomic_file: a temporary file of its own, so two runs starting at
    once cannot interleave), and only when the content differs."""
    if path.exists() and path.read_text() == text:
        return
    with atomic_file(path) as fh:
        fh.write(text)


def _write_generated_tasks(out: Path) -> None:
    """The held-out multiple-choice tasks, rebuilt on every use (under a second) and written
    only where they changed, so a cached copy is never stale or damaged."""
    from moebench.eval import heldout_tasks
    from moebench.models.corpora import load_corpus

    corpus = load_corpus()
    works = _heldout_works(corpus)
    train_counts = heldout_tasks.word_counts(corpus.train)
    for task, (generate, delimiter) in heldout_tasks.GENERATORS.items():
        docs = generate(works)
        sha = heldout_tasks.docs_sha256(docs)
        data = out / f"{task}.jsonl"
        _write_if_changed(data, "".join(json.dumps(d) + "\n" for d in docs))  # heals damage
        baseline = heldout_tasks.context_free_baseline(docs, train_counts, delimiter)
        caveat = (
            f"generated from the held-out works, {len(docs)} documents, "
            f"{heldout_tasks.CHOICES} choices (chance {1 / heldout_tasks.CHOICES:.2f}; "
            f"word frequency alone {baseline:.3f})"
        )
        yaml = GENERATED_YAML.format(
            task=task, data=data, delimiter=delimiter, sha=sha, baseline=baseline, caveat=caveat
        )
        _write_if_changed(out / f"{task}.yaml", yaml)


def task_dir(data_root: Path = SHARED_DATA) -> Path:
    """Convert every local data file and write one YAML per task; return the folder. The
    proxies' own held-out text (`heldout_ppl` and the generated multiple-choice tasks) is
    there on every machine; the standard tasks need ../shared/data."""
    from moebench.eval import heldout_tasks

    out = cache_dir() / "eval_tasks"
    out.mkdir(parents=True, exist_ok=True)
    tasks = dict(OFFLINE_TASKS) if data_root.exists() else {}
    tasks[HELDOUT_TASK] = (
        "wikitext/wikitext.yaml",
        None,
        "heldout",
        "rolling perplexity on the held-out Shakespeare works no proxy trained on",
    )
    tasks[WINDOWS_TASK] = (
        "wikitext/wikitext.yaml",
        None,
        "heldout_windows",
        f"rolling perplexity on the held-out Shakespeare works no proxy trained on, cut into "
        f"windows of {WINDOW_WORDS}+ words at line ends (one document each)",
    )
    for task, (include, source, converter, caveat) in tasks.items():
        data = out / f"{task}.jsonl"
        sha = None
        if source is None:  # the proxies' held-out text: rebuilt on every use (under a second)
            docs = _heldout_documents(converter)
            sha = heldout_tasks.docs_sha256(docs)
            _write_if_changed(data, "".join(json.dumps(d) + "\n" for d in docs))
        elif not data.exists():
            docs = CONVERTERS[converter](data_root / source)
            tmp = data.with_suffix(".tmp")
            tmp.write_text("".join(json.dumps(d) + "\n" for d in docs))
            tmp.replace(data)
        yaml = [
            f"include: {LM_EVAL_TASKS / include}",
            f"task: {task}",
            "dataset_path: json",
            "dataset_name: null",
            "dataset_kwargs:",
            "  data_files:",
            f"    test: {data}",
            "training_split: null",
            "validation_split: null",
            "test_split: test",
            "fewshot_split: test",
            "metadata:",
            "  version: 1.0",
            f"  moebench_source: {data_root / source if source else 'moebench.models.corpora'}",
            f'  moebench_caveat: "{caveat}"',
        ]
        if sha is not None:  # pairs two records' per-document scores (report/accuracy.py)
            yaml.append(f"  moebench_docs_sha256: {sha}")
        if source is None:
            yaml.append('doc_to_target: "{{page}}"')
        (out / f"{task}.yaml").write_text("\n".join(yaml) + "\n")
    _write_generated_tasks(out)
    return out


def check_available(tasks: list[str], folder: Path) -> None:
    """Every task named has a task file, each file parses and its data file is readable
    JSON lines; otherwise one line naming the task or file (lm-eval's own errors on a broken
    file are a long traceback far from the cause)."""
    missing = [t for t in tasks if not (folder / f"{t}.yaml").exists()]
    if missing:
        known = sorted(p.stem for p in folder.glob("*.yaml"))
        raise UserError(
            f"eval.tasks: {', '.join(missing)} not available offline here; available: "
            f"{', '.join(known)}"
        )
    for task in tasks:
        check_task_file(folder / f"{task}.yaml")


def check_task_file(path: Path) -> None:
    import yaml

    try:
        spec = yaml.safe_load(path.read_text())
        data = Path(spec["dataset_kwargs"]["data_files"]["test"])
    except yaml.YAMLError as err:
        detail = " ".join(str(err).split())
        raise UserError(f"eval task file {path}: not valid YAML ({detail})") from None
    except (TypeError, KeyError):
        raise UserError(f"eval task file {path}: no dataset_kwargs.data_files.test") from None
    if not data.exists():
        raise UserError(f"eval task file {path}: its data file {data} is missing")
    for number, line in enumerate(data.read_text().splitlines(), 1):
        try:
            json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(
                f"eval task data {data}: line {number} is not JSON ({err.msg}); delete the "
                "file to rebuild it"
            ) from None
