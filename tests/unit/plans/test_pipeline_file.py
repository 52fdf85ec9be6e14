"""``--pipeline`` files: read into step settings, every problem a one-line usage error with
the file and line (SPEC §9), whether the file's shape is wrong (``load_pipeline``) or what its
steps mean together (``compile_steps``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dscall.config import PromptSettings, StepSettings
from dscall.errors import UsageError
from dscall.plans.pipeline_file import load_pipeline
from dscall.plans.steps import Step, compile_steps

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "pipeline.toml"

MAP = '[[steps]]\nname = "summary"\nkind = "map"\n'  # lines 1-3


def _write(tmp_path: Path, text: str, name: str = "pipeline.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _load_error(path: Path) -> str:
    with pytest.raises(UsageError) as caught:
        load_pipeline(path)
    return caught.value.message


def _compile(path: Path) -> tuple[Step, ...]:
    return compile_steps(load_pipeline(path), PromptSettings(), "test", "sim", 2000)


def _compile_error(path: Path) -> str:
    with pytest.raises(UsageError) as caught:
        _compile(path)
    return caught.value.message


# -- a valid file -------------------------------------------------------------------------

VALID = '''\
# map -> reduce -> classify
[[steps]]
name = "summary"
kind = "map"
prompt = "Summarise: {text}"
model = "deepseek-chat"
max_tokens = 300

[[steps]]
name = "reduce"
kind = "reduce"
input = "summary"
prompt = """Combine the summaries of {path}:

{outputs}"""
reduce_tokens = 1000
temperature = 0.2

[[steps]]
name = "classify"
kind = "document"
prompt = "One of finance, legal, other: {steps.reduce}"
temperature = 0
json = true
'''


def test_a_valid_file_gives_its_steps_in_order(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID)
    assert load_pipeline(path) == (
        StepSettings(
            "summary",
            "map",
            "Summarise: {text}",
            model="deepseek-chat",
            max_tokens=300,
            where=f"{path}:2",
        ),
        StepSettings(
            "reduce",
            "reduce",
            "Combine the summaries of {path}:\n\n{outputs}",
            input="summary",
            temperature=0.2,
            reduce_tokens=1000,
            where=f"{path}:9",
        ),
        StepSettings(
            "classify",
            "document",
            "One of finance, legal, other: {steps.reduce}",
            temperature=0.0,
            json_mode=True,
            where=f"{path}:19",
        ),
    )


def test_a_valid_file_compiles(tmp_path: Path) -> None:
    steps = _compile(_write(tmp_path, VALID))
    assert [(step.name, step.kind, step.reads) for step in steps] == [
        ("summary", "map", ()),
        ("reduce", "reduce", ("summary",)),
        ("classify", "document", ("reduce",)),
    ]
    assert steps[0].requests.prompt.model == "deepseek-chat"
    assert steps[1].reduce_tokens == 1000
    assert steps[2].requests.prompt.json_mode is True
    assert isinstance(steps[2].requests.prompt.temperature, float)


def test_the_example_file_compiles() -> None:
    steps = compile_steps(load_pipeline(EXAMPLE), PromptSettings(), "test", "sim", 2000)
    assert [(step.name, step.kind) for step in steps] == [
        ("summary", "map"),
        ("reduce", "reduce"),
        ("classify", "document"),
    ]


def test_a_map_step_without_prompt_gets_the_runs(tmp_path: Path) -> None:
    steps = load_pipeline(_write(tmp_path, MAP))
    assert steps[0].template == ""
    compiled = compile_steps(steps, PromptSettings(template="Mine: {text}"), "t", "s", 2000)
    assert compiled[0].requests.prompt.template == "Mine: {text}"


def test_refine_and_its_first_prompt(tmp_path: Path) -> None:
    text = (
        '[[steps]]\nname = "notes"\nkind = "refine"\n'
        'prompt = "So far: {previous}\\nNext: {text}"\nfirst_prompt = "Begin: {text}"\n'
    )
    (step,) = load_pipeline(_write(tmp_path, text))
    assert step.first_template == "Begin: {text}"
    assert step.template == "So far: {previous}\nNext: {text}"


def test_prompt_file_is_relative_to_the_pipeline_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "conf"
    (folder / "prompts").mkdir(parents=True)
    (folder / "prompts" / "reduce.txt").write_text("All of it: {outputs}", encoding="utf-8")
    path = _write(
        folder,
        MAP + '\n[[steps]]\nname = "r"\nkind = "reduce"\nprompt_file = "prompts/reduce.txt"\n',
    )
    monkeypatch.chdir(tmp_path)
    assert load_pipeline(path)[1].template == "All of it: {outputs}"


def test_lines_inside_a_multi_line_prompt_are_no_keys(tmp_path: Path) -> None:
    text = MAP + 'prompt = """Answer like this:\nmodel = the model name\n{text}"""\nmodel = 5\n'
    assert _load_error(_write(tmp_path, text)).startswith(f"{tmp_path / 'pipeline.toml'}:7: ")


# -- the file's shape: load_pipeline --------------------------------------------------------

KNOWN = (
    "name, kind, prompt, prompt_file, model, max_tokens, temperature, json, input, "
    "first_prompt, reduce_tokens, schema, schema_inline"
)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            MAP + 'promt = "x"\n',
            4,
            f"unknown key 'promt' in step 'summary' (known: {KNOWN})",
        ),
        (
            MAP + '\n[[steps]]\nkind = "map"\nfoo = 1\n',
            7,
            "unknown key 'foo' in step 2",
        ),
        (
            '[[steps]]\nname = "s"\nkind = "mapp"\n',
            3,
            "unknown kind 'mapp' in step 's' (known: map, reduce, refine, document)",
        ),
        ('[[steps]]\nkind = "map"\n', 1, "step 1 has no name"),
        ('[[steps]]\nname = 3\nkind = "map"\n', 2, "name of step 1 must be a string"),
        ('[[steps]]\nname = "s"\n', 1, "step 's' has no kind"),
        (MAP + "max_tokens = true\n", 4, "max_tokens of step 'summary' must be a whole number"),
        (MAP + "max_tokens = 1.5\n", 4, "max_tokens of step 'summary' must be a whole number"),
        (MAP + "max_tokens = 0\n", 4, "max_tokens of step 'summary' must be at least 1"),
        (MAP + "temperature = 2.5\n", 4, "temperature of step 'summary' must be from 0 to 2"),
        (MAP + "temperature = -1\n", 4, "temperature of step 'summary' must be from 0 to 2"),
        (MAP + "temperature = true\n", 4, "temperature of step 'summary' must be a number"),
        (MAP + 'temperature = "low"\n', 4, "temperature of step 'summary' must be a number"),
        (MAP + 'json = "yes"\n', 4, "json of step 'summary' must be true or false"),
        (MAP + "json = 1\n", 4, "json of step 'summary' must be true or false"),
        (MAP + "model = 4\n", 4, "model of step 'summary' must be a string"),
        (MAP + 'input = "x"\n', 4, "input is for reduce and document steps"),
        (MAP + 'first_prompt = "x"\n', 4, "first_prompt is for refine steps"),
        (MAP + "reduce_tokens = 100\n", 4, "reduce_tokens is for reduce steps"),
        (MAP + 'schema = "nope.json"\n', 4, "step 'summary': --schema "),
        (MAP + 'schema_inline = "year intt"\n', 4, "step 'summary':"),
        (
            MAP + 'schema = "a.json"\nschema_inline = "x str"\n',
            5,
            "step 'summary': give schema or schema_inline, not both",
        ),
        (
            MAP + '\n[[steps]]\nname = "r"\nkind = "reduce"\nprompt = "{outputs}"\n'
            "reduce_tokens = 8\n",
            9,
            "reduce_tokens of step 'r' must be at least 16",
        ),
        (
            MAP + '\n[[steps]]\nname = "r"\nkind = "reduce"\nreduce_tokens = true\nprompt = "x"\n',
            8,
            "reduce_tokens of step 'r' must be a whole number",
        ),
        (
            MAP + 'prompt = "a {text}"\nprompt_file = "p.txt"\n',
            5,
            "step 'summary': give prompt or prompt_file, not both",
        ),
        (MAP + 'prompt = "  "\n', 4, "step 'summary': empty prompt"),
        (
            MAP + '\n[[steps]]\nname = "r"\nkind = "reduce"\n',
            5,
            "step 'r' (reduce) needs prompt or prompt_file",
        ),
        (
            MAP + '\n[[steps]]\nname = "d"\nkind = "document"\ninput = "summary"\n',
            5,
            "step 'd' (document) needs prompt or prompt_file",
        ),
        (
            MAP + '\n[[steps]]\nname = "f"\nkind = "refine"\n',
            5,
            "step 'f' (refine) needs prompt or prompt_file",
        ),
        ("chunk_tokens = 100\n\n" + MAP, 1, "unknown top-level key 'chunk_tokens'"),
        (MAP + "\n[settings]\nx = 1\n", 5, "unknown top-level key 'settings'"),
        ("", 1, "no steps"),
        ("# nothing yet\n", 1, "no steps"),
        ('steps = "all of them"\n', 1, "steps must be [[steps]] tables"),
        ('[steps]\nname = "s"\n', 1, "steps must be [[steps]] tables"),
        (
            '# inline\nsteps = [\n  { name = "s", kind = "map", promt = "x" },\n]\n',
            2,
            "unknown key 'promt' in step 's'",
        ),
        (
            '[[steps]]\nname = "d"\nkind = "document"\nprompt = "{steps.x}"\n',
            1,
            "no chunk-level step: a pipeline needs a map or a refine step",
        ),
    ],
)
def test_shape_errors_name_the_file_and_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = _write(tmp_path, text)
    error = _load_error(path)
    assert error.startswith(f"{path}:{line}: {message}")
    assert "\n" not in error


def test_a_toml_syntax_error_keeps_tomllibs_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, MAP + 'prompt = "unterminated\n')
    error = _load_error(path)
    assert error.startswith(f"{path}:4: not valid TOML: ")
    assert "(at line 4, column" in error
    assert "\n" not in error


def test_an_unreadable_prompt_file_is_named(tmp_path: Path) -> None:
    path = _write(
        tmp_path, MAP + '\n[[steps]]\nname = "r"\nkind = "reduce"\nprompt_file = "no.txt"\n'
    )
    error = _load_error(path)
    assert error.startswith(
        f"{path}:8: cannot read prompt_file of step 'r' ({tmp_path / 'no.txt'})"
    )
    assert "\n" not in error


def test_an_unreadable_pipeline_file_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    assert _load_error(missing).startswith(f"cannot read --pipeline {missing}: ")


# -- what the steps mean together: compile_steps, with the file and line -------------------

REDUCE = '\n[[steps]]\nname = "reduce"\nkind = "reduce"\nprompt = "All: {outputs}"\n'  # 5-8


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            MAP + '\n[[steps]]\nname = "d"\nkind = "document"\ninput = "nope"\nprompt = "x"\n',
            5,
            "input 'nope' is not an earlier step",
        ),
        (
            MAP + '\n[[steps]]\nname = "r"\nkind = "reduce"\ninput = "later"\nprompt = "x"\n'
            '\n[[steps]]\nname = "later"\nkind = "map"\n',
            5,
            "input 'later' is not an earlier step",
        ),
        (
            MAP
            + '\n[[steps]]\nname = "d"\nkind = "document"\nprompt = "Sort: {steps.reduce}"\n'
            + REDUCE,
            5,
            "{steps.reduce} is not an earlier step's answer (earlier steps: summary)",
        ),
        (MAP + "\n" + MAP, 5, "a second step named 'summary'"),
        (
            MAP
            + REDUCE
            + '\n[[steps]]\nname = "again"\nkind = "reduce"\ninput = "reduce"\nprompt = "x"\n',
            10,
            "a reduce reads the chunk answers of a map step; 'reduce' is a reduce step",
        ),
        (
            MAP + REDUCE + '\n[[steps]]\nname = "d"\nkind = "document"\nprompt = "Sort it"\n',
            10,
            'a document step reads earlier answers: set input = "STEP"',
        ),
        (
            MAP + '\n[[steps]]\nname = "d"\nkind = "document"\nprompt = "{steps.summary}"\n',
            5,
            "{steps.summary} is a map step (one answer per chunk)",
        ),
        (
            '[[steps]]\nname = "notes"\nkind = "refine"\nprompt = "Next: {text}"\n',
            1,
            "the prompt of step 'notes' needs {previous}",
        ),
        (
            '[[steps]]\nname = "bad name"\nkind = "map"\n',
            1,
            "step name 'bad name' must be a word",
        ),
        (
            '[[steps]]\nname = "s"\nkind = "map"\nprompt = "Sum {txt}"\n',
            1,
            "unknown placeholder {txt} in the prompt of step 's'",
        ),
        (
            '[[steps]]\nname = "n"\nkind = "refine"\nprompt = "{previous} {text}"\n'
            'first_prompt = "Start {txet}"\n',
            1,
            "unknown placeholder {txet} in the first_prompt",
        ),
        (
            '[[steps]]\nname = "n"\nkind = "refine"\nprompt = "{previous} {text}"\n'
            '\n[[steps]]\nname = "r"\nkind = "reduce"\nprompt = "x"\n',
            6,
            'a reduce needs a map step before it (or input = "STEP")',
        ),
    ],
)
def test_meaning_errors_name_the_file_and_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = _write(tmp_path, text)
    error = _compile_error(path)
    assert error.startswith(f"{path}:{line}: {message}")
    assert "\n" not in error
