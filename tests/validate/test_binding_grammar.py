"""The ``${{ ... }}`` grammar on literal strings: forms, syntax errors with their position, placement."""

from __future__ import annotations

from tools.validate.expressions import ERROR, WARNING, Place, check, has_expression, parse


def problems(text: str, place: Place, singular: bool = False) -> list[tuple[int, str]]:
    return [(p.offset, p.message) for p in check(text, place, singular)[1]]


def test_every_documented_form_parses_with_its_parts() -> None:
    text = (
        "${{inputs.a}} ${{outputs.b}} ${{search_space.lr}} ${{parent.inputs.c}} ${{parent.outputs.d}} "
        "${{parent.jobs.prep}} ${{parent.jobs.prep.outputs.e}} ${{parent.jobs.prep.inputs.f}} "
        "${{default_datastore}} ${{name}} ${{output_name}}"
    )
    parsed = parse(text)
    assert parsed.problems == ()
    assert [e.form for e in parsed.expressions] == [
        "inputs", "outputs", "search_space", "parent.inputs", "parent.outputs", "parent.jobs",
        "parent.jobs.outputs", "parent.jobs.inputs", "runtime", "runtime", "runtime",
    ]  # fmt: skip
    assert [e.name for e in parsed.expressions][:4] == ["a", "b", "lr", "c"]
    assert parsed.expressions[6].step == "prep"
    assert text[parsed.expressions[0].start : parsed.expressions[0].end] == "${{inputs.a}}"


def test_spaces_inside_the_braces_are_allowed() -> None:
    parsed = parse("${{  parent.inputs.lr }}")
    assert parsed.problems == () and parsed.singular and parsed.expressions[0].parts == ("parent", "inputs", "lr")


def test_a_single_closing_brace_is_an_error_at_its_position() -> None:
    [(offset, message)] = problems("${{parent.inputs.x}", Place.STEP)
    assert offset == 18 and "single '}'" in message and "expected '}}'" in message


def test_an_unclosed_expression_names_where_it_opened() -> None:
    [(offset, message)] = problems("--lr ${{inputs.lr", Place.COMMAND)
    assert offset == 5 and "never closed" in message


def test_a_third_brace_after_the_close_is_an_error() -> None:
    [(offset, message)] = problems("${{parent.inputs.x}}}", Place.STEP)
    assert offset == 20 and "third '}'" in message


def test_nested_expressions_are_one_error_at_the_inner_opening() -> None:
    [(offset, message)] = problems("${{parent.inputs.${{inputs.x}}}}", Place.STEP)
    assert offset == 17 and "do not nest" in message


def test_empty_and_malformed_bodies() -> None:
    assert "empty expression" in problems("${{ }}", Place.STEP)[0][1]
    [(offset, message)] = problems("${{parent. inputs.x}}", Place.STEP)
    assert offset == 10 and "dotted name" in message
    assert "unknown expression" in problems("${{foo}}", Place.STEP)[0][1]
    assert "expected parent.inputs.X" in problems("${{parent.input.x}}", Place.STEP)[0][1]
    assert "one name after 'inputs.'" in problems("${{inputs.a.b}}", Place.COMMAND)[0][1]


def test_junk_after_the_expression_where_one_expression_is_expected() -> None:
    [(offset, message)] = problems("${{parent.inputs.n}} nodes", Place.STEP, singular=True)
    assert offset == 21 and "exactly one expression" in message
    [(offset, _)] = problems("x${{parent.inputs.n}}", Place.STEP, singular=True)
    assert offset == 0
    assert problems("  ${{parent.inputs.n}} ", Place.STEP, singular=True) == []


def test_step_literals_may_join_several_bindings() -> None:
    # A step's string input may interpolate parent inputs (SDK: is_data_binding_expression(is_singular=False)).
    assert problems("${{parent.inputs.q}},${{parent.inputs.a}}", Place.STEP) == []


def test_command_strings_use_the_current_context_and_optional_blocks() -> None:
    command = "python t.py --data ${{inputs.data}} $[[--lr ${{inputs.lr}}]] --out ${{outputs.model}}"
    assert problems(command, Place.COMMAND) == []
    [(_, message)] = problems("python t.py ${{parent.inputs.lr}}", Place.COMMAND)
    assert "a command uses ${{inputs.X}}" in message
    [(offset, message)] = problems("python t.py $[[--lr ${{inputs.lr}}", Place.COMMAND)
    assert offset == 12 and "never closed" in message
    assert "do not nest" in problems("$[[ --a $[[ --b ]] ]]", Place.COMMAND)[0][1]


def test_search_space_only_in_a_sweep_trial() -> None:
    assert problems("--lr ${{search_space.lr}}", Place.SWEEP_COMMAND) == []
    assert "sweep job's trial command only" in problems("--lr ${{search_space.lr}}", Place.COMMAND)[0][1]


def test_step_inputs_use_the_parent_context() -> None:
    [(_, message)] = problems("${{inputs.data}}", Place.STEP)
    assert "expected ${{parent.inputs.data}}" in message
    assert problems("${{parent.jobs.prep.outputs.clean}}", Place.STEP) == []
    assert "not allowed in a step" in problems("${{parent.jobs.prep}}", Place.STEP)[0][1]


def test_runtime_expressions_in_output_paths() -> None:
    path = "azureml://datastores/${{default_datastore}}/paths/${{name}}/${{output_name}}"
    assert problems(path, Place.OUTPUT_PATH) == []
    assert problems(path, Place.STEP_OUTPUT) == []
    assert problems("${{parent.outputs.model}}", Place.STEP_OUTPUT) == []
    assert "parent." in problems("${{parent.outputs.model}}", Place.OUTPUT_PATH)[0][1]


def test_runtime_expressions_elsewhere_are_a_warning_not_an_error() -> None:
    [problem] = check("echo ${{name}}", Place.COMMAND)[1]
    assert problem.severity == WARNING and "output paths only" in problem.message


def test_control_flow_blocks_name_one_step() -> None:
    assert problems("${{parent.jobs.train}}", Place.NODE) == []
    found = check("${{parent.jobs.train}}x", Place.NODE)[1]
    assert [p.severity for p in found] == [ERROR] and "exactly one expression" in found[0].message


def test_plain_text_has_no_expression() -> None:
    assert not has_expression("python train.py {{not ours}} $x")
    assert not has_expression(3)
    assert parse("a } b }} c ]]").problems == ()
