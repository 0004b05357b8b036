"""Tasks configured in YAML alone (tasks/yaml_task.py, tasks/extractors.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from s2distill.errors import UserError
from s2distill.tasks.extractors import is_correct, make_extractor
from s2distill.tasks.yaml_task import YAMLTask

YN = {"labels": ["yes", "no"]}
PROMPTS = {"direct": "Answer yes or no.", "final": 'End with "Answer: yes" or "Answer: no".'}


# -- extraction kinds on hand-written outputs ----------------------------------------------------------
@pytest.mark.parametrize(("text", "want"), [
    ("Let me think. Answer: no", "no"),
    ("Answer: yes. Wait, no: the answer is no.", "no"),  # the last marked answer
    ("Yes, it is still heads up.", "yes"),  # opening the response
    ("After both flips it ends up heads up, so... yes.", "yes"),  # said on its own at the end
    ("There is no change to the coin", None),  # "no" as a determiner is not an answer
    ("I cannot tell.", None),
])
def test_choice_yes_no(text: str, want: str | None) -> None:
    assert make_extractor("choice", ["yes", "no"])(text) == want


@pytest.mark.parametrize(("text", "want"), [
    ("My final verdict is a close call.", None),  # the article "a" is never the choice A
    ("The decision is a tough one", None),
    ("Answer: b", "B"),  # inside a marker, case does not matter; the label comes back as configured
    ("Option C is best. The answer is (D)", "D"),
    ("B. Because the second response cites a source.", "B"),
    ("a) the first one", None),  # lower-case letter opening the response: not a choice
    ("I pick C.", "C"),
])
def test_choice_letters(text: str, want: str | None) -> None:
    assert make_extractor("choice", ["A", "B", "C", "D"])(text) == want


def test_regex_number_and_text_kinds() -> None:
    rx = make_extractor("regex", pattern=r"final:\s*([\w ]+)")
    assert rx("draft: x\nFinal: Blue Whale\nfinal: Sperm Whale") == "sperm whale"  # the last match, plain
    assert rx("nothing here") is None
    num = make_extractor("number")
    assert num("3 + 4 = 7 first.\nSo she has 12 apples. The answer is 12.") == "12"
    assert num("no digits") is None
    text = make_extractor("text")
    assert text("The capital is Paris. Answer: Paris!") == "paris"
    hedged = text("I don't think it's Lyon, it's Paris")  # the clause the user affirms
    assert is_correct("alias", hedged, "Paris") and not is_correct("alias", hedged, "Lyon")
    assert text("Answer:") is None


def test_scoring_kinds() -> None:
    assert is_correct("exact", "A", "A") and not is_correct("exact", "B", "A")
    assert is_correct("exact", "beatles", "The Beatles") and not is_correct("exact", None, "x")
    assert is_correct("alias", "it is kiev", "Kyiv", ["Kiev"]) and not is_correct("alias", "not kiev", "Kyiv", ["Kiev"])
    assert is_correct("numeric", "0.5", "1/2") and not is_correct("numeric", "2", "1/2")


def test_unknown_kinds_fail_in_one_line() -> None:
    with pytest.raises(UserError, match=r"extraction.kind: unknown kind 'fuzzy' \(known: choice, regex, number, text\)"):
        make_extractor("fuzzy")
    with pytest.raises(UserError, match="extraction.kind=regex needs extraction.pattern"):
        make_extractor("regex")
    with pytest.raises(UserError, match="scoring: unknown kind"):
        is_correct("close", "a", "a")


# -- data from each source --------------------------------------------------------------------------------
ROWS = [{"q": f"Is {i} even?", "a": "yes" if i % 2 == 0 else "no"} for i in range(40)]


def _write(tmp_path: Path, kind: str) -> Path:
    import pandas as pd
    from datasets import Dataset, DatasetDict

    p = tmp_path / f"data.{kind}" if kind not in ("disk", "disk_dict") else tmp_path / kind
    if kind == "jsonl":
        p.write_text("\n".join(json.dumps(r) for r in ROWS))
    elif kind == "json":
        p.write_text(json.dumps(ROWS))
    elif kind == "csv":
        pd.DataFrame(ROWS).to_csv(p, index=False)
    elif kind == "parquet":
        pd.DataFrame(ROWS).to_parquet(p)
    elif kind == "disk":
        Dataset.from_list(ROWS).save_to_disk(str(p))
    else:
        DatasetDict(train=Dataset.from_list(ROWS[:30]), test=Dataset.from_list(ROWS[30:])).save_to_disk(str(p))
    return p


def _spec(path: str, **more) -> dict:
    return {"data": {"path": path, "fields": {"question": "q", "answer": "a"}, **more.pop("data", {})},
            "answers": YN, "extraction": {"kind": "choice"}, "prompts": PROMPTS, **more}


@pytest.mark.parametrize("kind", ["jsonl", "json", "csv", "parquet", "disk"])
def test_every_file_type_loads_with_a_balanced_test_split(tmp_path: Path, kind: str) -> None:
    spec = _spec(str(_write(tmp_path, kind)))
    task = YAMLTask(label="even", n_train=20, n_test=10, **spec)
    d = task.load()
    assert len(d["train"]) == 20 and len(d["test"]) == 10
    assert sorted(r["gold"] for r in d["test"]) == ["no"] * 5 + ["yes"] * 5
    assert {r["question"] for r in d["train"]}.isdisjoint(r["question"] for r in d["test"])


def test_hub_style_folder_with_fixed_splits_and_a_task_file_with_include(tmp_path: Path) -> None:
    _write(tmp_path, "disk_dict")
    (tmp_path / "base.yaml").write_text(
        "data: {path: disk_dict, fields: {question: q, answer: a}}\nanswers: {labels: ['yes', 'no']}\n"
        "extraction: {kind: choice}\nprompts: {direct: 'Answer yes or no.', final: 'End with Answer: yes or no.'}\n")
    (tmp_path / "even.yaml").write_text("include: base.yaml\nn_train: 12\nn_test: 6\ndata: {test_split: test}\n")
    task = YAMLTask(file=str(tmp_path / "even.yaml"))
    d = task.load()
    assert task.name == "even" and len(d["train"]) == 12 and len(d["test"]) == 6
    test_qs = {f"Is {i} even?" for i in range(30, 40)}
    assert {r["question"] for r in d["test"]} <= test_qs  # the fixed test split, nothing else
    assert not {r["question"] for r in d["train"]} & test_qs


def test_template_and_aliases(tmp_path: Path) -> None:
    p = tmp_path / "caps.jsonl"
    p.write_text("\n".join(json.dumps({"country": c, "capital": k, "alt": a}) for c, k, a in
                           [("Ukraine", "Kyiv", ["Kiev"]), ("France", "Paris", []), ("Peru", "Lima", []),
                            ("Chile", "Santiago", [])]))
    task = YAMLTask(data={"path": str(p), "fields": {"answer": "capital", "aliases": "alt"},
                          "template": "Capital of {country}?"}, extraction={"kind": "text"}, scoring="alias",
                    prompts=PROMPTS, n_train=2, n_test=2)
    rows = task.load()["train"].to_list() + task.load()["test"].to_list()
    ukr = next(r for r in rows if r["question"] == "Capital of Ukraine?")
    assert ukr["aliases"] == ["Kiev"] and task.is_correct(task.extract("Answer: Kiev."), ukr)


# -- malformed files: one line naming the key, nothing runs ----------------------------------------------------
@pytest.mark.parametrize(("change", "message"), [
    ({"extraction": {"kind": "fuzzy"}}, "extraction.kind: unknown kind 'fuzzy'"),
    ({"extraction": {}}, "extraction.kind: missing"),
    ({"data": {"fields": None}}, "data.fields: missing field map"),
    ({"data": {"fields": {"question": "q", "answer": "label"}}}, "data.fields.answer: no field 'label'"),
    ({"data": {"template": "{passage}: {q}"}}, "data.template: no field 'passage'"),
    ({"data": {"colour": "red"}}, "data: unknown key(s) ['colour']"),
    ({"scoring": "close"}, "scoring: unknown kind 'close'"),
    ({"prompts": {"direct": "x"}}, "prompts.direct and prompts.final"),
    ({"answers": {"labels": ["true", "false"]}}, "answer 'yes' is not one of answers.labels"),
])
def test_malformed_task_files_fail_naming_the_key(tmp_path: Path, change: dict, message: str) -> None:
    import yaml

    spec = _spec(str(_write(tmp_path, "jsonl")))
    for k, v in change.items():
        spec[k] = {**spec[k], **v} if k == "data" else v
    spec["data"] = {k: v for k, v in spec["data"].items() if v is not None}
    f = tmp_path / "task.yaml"
    f.write_text(yaml.safe_dump(spec))
    with pytest.raises(UserError) as e:
        YAMLTask(file=str(f)).load()
    assert message in str(e.value) and "\n" not in str(e.value)


def test_an_unknown_key_in_a_task_file_and_a_missing_file(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text("data: {path: x.jsonl}\nextractor: {kind: choice}\n")
    with pytest.raises(UserError, match=r"unknown key\(s\) \['extractor'\]"):
        YAMLTask(file=str(tmp_path / "t.yaml"))
    with pytest.raises(UserError, match="task file .*nope.yaml not found"):
        YAMLTask(file=str(tmp_path / "nope.yaml"))


# -- the shipped examples, through the pipeline -----------------------------------------------------------------
def test_shipped_examples_build_and_run_through_the_pipeline(fake_run, compose) -> None:
    from s2distill import pipeline

    yn = pipeline.build(compose("task=capitals_yn"), None).task
    d = yn.load()
    assert yn.name == "capitals_yn" and len(d["train"]) == 60 and len(d["test"]) == 40
    assert sorted(set(r["gold"] for r in d["test"])) == ["no", "yes"]
    res = fake_run("task=capitals_yn", "method=rar", "task.n_train=8", "task.n_test=6", "generate.n=2",
                   "filter.threshold=0.5")
    assert res["task"] == "capitals_yn" and res["system1"]["n"] == 6 and res["system1"]["balanced_acc"] is not None
    op = pipeline.build(compose("task=capitals_open"), None).task
    row = next(r for r in op.load()["train"].to_list() + op.load()["test"].to_list() if r["gold"] == "Kyiv")
    assert op.is_correct(op.extract("Answer: Kiev"), row) and not op.is_correct(op.extract("Answer: Lviv"), row)
