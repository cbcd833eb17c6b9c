"""The generated held-out tasks: the same documents on every machine, built from text no proxy
trained on, and not solvable without the context."""

import json
from collections import Counter

import pytest

from moebench.errors import UserError
from moebench.eval import heldout_tasks as h
from moebench.eval.tasks import (
    WINDOW_WORDS,
    WINDOWS_TASK,
    _heldout_works,
    check_available,
    heldout_windows,
    task_dir,
)
from moebench.models.corpora import load_corpus

# sha256 of each task's documents (json lines, sorted keys): any change to the generator, the
# corpus package or its split shows here first
GOLDEN = {
    "heldout_word_order": "a9d6d0c1cf2a4ba5b1915bcfe51a4d884b671856b23c553161bb2642c7dc9ecd",
    "heldout_function_word": "915e55ad4a41cc520b2dcbe4a74d4f658c211dc44214a80bb703941985996602",
}


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


@pytest.fixture(scope="module")
def docs():
    works = _heldout_works()
    return {task: gen(works) for task, (gen, _) in h.GENERATORS.items()}


def test_documents_are_the_golden_ones(docs):
    assert {t: h.docs_sha256(d) for t, d in docs.items()} == GOLDEN


def test_every_document_is_well_formed(docs):
    for task, items in docs.items():
        assert len(items) == h.DOCS, task
        for d in items:
            assert len(d["choices"]) == h.CHOICES
            assert len(set(d["choices"])) == h.CHOICES, d  # no duplicate choice
            assert 0 <= d["label"] < h.CHOICES
            assert len(d["context"]) <= h.CONTEXT_CHARS + 80  # one long line may overrun
        labels = Counter(d["label"] for d in items)
        assert min(labels.values()) > 0.8 * h.DOCS / h.CHOICES, (task, labels)


def test_word_order_choices_are_swaps_that_keep_the_first_word(docs):
    for d in docs["heldout_word_order"]:
        answer = d["choices"][d["label"]].split(" ")
        assert d["context"].endswith("\n")
        for choice in d["choices"]:
            words = choice.split(" ")
            assert sorted(words) == sorted(answer) and words[0] == answer[0]
            differ = [i for i, (a, b) in enumerate(zip(words, answer, strict=True)) if a != b]
            assert differ == [] or (len(differ) == 2 and differ[1] == differ[0] + 1)


def test_function_word_answers_continue_the_heldout_text(docs, corpus):
    for d in docs["heldout_function_word"]:
        assert all(c in h.FUNCTION_WORDS for c in d["choices"])
        # the context followed by " " + answer is the held-out text itself
        assert d["context"] + " " + d["choices"][d["label"]] in corpus.valid


def test_contexts_come_from_heldout_text_only(docs, corpus):
    for task, items in docs.items():
        for d in items:
            assert d["context"] in corpus.valid, task
            assert d["context"] not in corpus.train, (task, d["context"])


def test_word_frequency_alone_is_near_chance(docs, corpus):
    counts = h.word_counts(corpus.train)
    for task, (_, delimiter) in h.GENERATORS.items():
        assert h.context_free_baseline(docs[task], counts, delimiter) < 0.30, task


def test_baseline_can_fail_on_a_frequency_solvable_task(corpus):
    """The baseline check above can fail: a task whose answer is always the most frequent
    word is solved by frequency alone."""
    items = [{"context": "x", "choices": ["the", "pomegranate", "quoth", "zany"], "label": 0}]
    assert h.context_free_baseline(items * 10, h.word_counts(corpus.train), " ") == 1.0


def test_task_files_are_written_and_damage_is_healed(tmp_path, monkeypatch):
    monkeypatch.setenv("MOEBENCH_CACHE", str(tmp_path))
    folder = task_dir(tmp_path / "no_shared_data")
    data = folder / "heldout_word_order.jsonl"
    good = data.read_text()
    assert GOLDEN["heldout_word_order"] in (folder / "heldout_word_order.yaml").read_text()
    data.write_text(good[:100])  # a truncated copy is rebuilt on the next use
    task_dir(tmp_path / "no_shared_data")
    assert data.read_text() == good
    check_available(list(h.GENERATORS), folder)


def test_a_broken_task_file_is_one_line_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MOEBENCH_CACHE", str(tmp_path))
    folder = task_dir(tmp_path / "no_shared_data")
    data = folder / "heldout_ppl.jsonl"
    data.write_text(data.read_text()[:50] + "\n")
    with pytest.raises(UserError, match=r"heldout_ppl.jsonl: line 1 is not JSON") as err:
        check_available(["heldout_ppl"], folder)
    assert "\n" not in str(err.value)
    (folder / "heldout_ppl.yaml").write_text("task: [unclosed\n")
    with pytest.raises(UserError, match=r"heldout_ppl.yaml: not valid YAML") as err:
        check_available(["heldout_ppl"], folder)
    assert "\n" not in str(err.value)
    data.unlink()
    (folder / "heldout_ppl.yaml").write_text(
        json.dumps({"dataset_kwargs": {"data_files": {"test": str(data)}}})
    )
    with pytest.raises(UserError, match=r"data file .*heldout_ppl.jsonl is missing"):
        check_available(["heldout_ppl"], folder)


def test_perplexity_windows_cover_every_work_in_order_at_line_ends(tmp_path, monkeypatch):
    works = _heldout_works()
    windows = heldout_windows(works, WINDOW_WORDS)
    assert len(windows) >= 8 * len(works)  # enough documents for a paired interval
    assert [w.split() for w in windows] and sum(len(w.split()) for w in windows) == sum(
        len(w.split()) for w in works
    )
    assert " ".join(" ".join(w.split()) for w in windows) == " ".join(
        " ".join(w.split()) for w in works
    )  # every word once, in order
    sizes = [len(w.split()) for w in windows]
    assert min(sizes) >= WINDOW_WORDS // 2 and max(sizes) < 2 * WINDOW_WORDS
    for window in windows:  # cut at line ends: each window is whole lines of one work
        assert any(window in work for work in works)
    # the task file carries the documents' hash, which pairing two records checks
    monkeypatch.setenv("MOEBENCH_CACHE", str(tmp_path))
    folder = task_dir(tmp_path / "no_shared_data")
    pages = [json.loads(line)["page"] for line in (folder / f"{WINDOWS_TASK}.jsonl").open()]
    assert pages == [w + "\n" for w in windows]
    sha = h.docs_sha256([{"page": p} for p in pages])
    assert sha in (folder / f"{WINDOWS_TASK}.yaml").read_text()
    check_available([WINDOWS_TASK], folder)


def test_a_short_tail_joins_the_window_before_it():
    work = "\n".join(["a b c d e"] * 4 + ["f"])  # 21 words at 10 a window: 10, 10, then 1
    assert [len(w.split()) for w in heldout_windows([work], 10)] == [10, 11]
    assert [len(w.split()) for w in heldout_windows([work + " g h i j"], 10)] == [10, 10, 5]
    assert heldout_windows(["one short line"], 10) == ["one short line"]
