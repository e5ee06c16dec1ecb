"""Seeded hostile inputs and the bounded child that runs the CLI on them (shared by tests/fuzz and
benchmarks/fuzz.py, which load this file by path; no pytest imports here).

Generators return :class:`Case` values (a class name, a file name, the bytes). ``run_cases`` runs
``python -m tools``'s ``main`` on many cases in one child process (one import of the SDK for all of them) under an
address-space cap, with a per-case alarm, and returns per case: exit code, stderr tail, whether a traceback or an
internal error showed; plus the child's peak RSS (``wait4``).
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import textwrap
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = "https://azuremlschemas.azureedge.net/latest/{}.schema.json"
MEMORY_CAP = 6 << 30  # address space of the child (RLIMIT_AS): a "billion laughs" expanded would need far more
RSS_BOUND = 1536 << 20  # what the promise allows a child to reach (the SDK import alone is ~150 MB)
MAX_LINE = 2000  # characters in one message line
CASE_ALARM_S = 60  # a case still running after this is a hang

# Our own small specs, one per common kind (a few lines each, written for these tests).
BASES: dict[str, str] = {
    "commandJob": "type: command\ncommand: python train.py --lr ${{inputs.lr}}\ncode: ./src\n"
    "environment: azureml:sft-env:1\ncompute: azureml:gpu-cluster\ninputs:\n  lr: 0.1\n"
    "tags:\n  team: ml\n",
    "commandComponent": "name: train_step\nversion: 1\ntype: command\ncommand: python run.py ${{inputs.n}}\n"
    "environment: azureml:sft-env:1\ninputs:\n  n:\n    type: integer\n    default: 2\n",
    "pipelineJob": "type: pipeline\nsettings:\n  default_compute: azureml:cpu\njobs:\n  step:\n"
    "    type: command\n    command: echo ${{inputs.x}}\n    environment: azureml:e:1\n    inputs:\n"
    "      x: ${{parent.inputs.x}}\ninputs:\n  x: 1\n",
    "model": "name: phi\nversion: 3\ntype: mlflow_model\npath: ./model\ntags:\n  base: phi-3\n",
    "data": "name: chat\nversion: 1\ntype: uri_folder\npath: ./data/prepared\n",
    "environment": "name: sft-env\nversion: 1\nimage: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04\n"
    "conda_file: ./conda.yaml\n",
    "managedOnlineEndpoint": "name: chat-endpoint\nauth_mode: key\ntags:\n  env: dev\n",
    "managedOnlineDeployment": "name: blue\nendpoint_name: chat-endpoint\nmodel: azureml:phi:3\n"
    "instance_type: Standard_DS3_v2\ninstance_count: 1\n",
    "amlCompute": "name: gpu-cluster\ntype: amlcompute\nsize: Standard_NC6s_v3\nmin_instances: 0\n"
    "max_instances: 2\nidle_time_before_scale_down: 120\n",
}
PATH_KEYS = ("code", "path", "conda_file")
WRONG_VALUES = (
    "9223372036854775808", "-3", "1e400", ".nan", "-.inf", "[1, 2]", "{a: 1}", "x" * 100_000, "'${{'",
    "${{inputs.lr}", "${{ parent.inputs.x }}junk", "2.5", "!!binary aGk=", '"\\ud800"', "!!python/object:os.system",
)  # fmt: skip


@dataclass(frozen=True)
class Case:
    kind: str  # the hostile class, e.g. "aliases"
    name: str  # file name
    data: bytes
    good_ids: tuple[str, ...] = ()  # data cases: the prompt_ids of the good rows, each must be written


def laughs(rng: random.Random, indent: str = "") -> str:
    """A "billion laughs" block: ``levels`` anchors, each ``width`` aliases of the previous."""
    levels, width = rng.randint(6, 10), rng.randint(6, 10)
    lines = [f"{indent}l0: &l0 [" + ", ".join(['"lol"'] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"{indent}l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def _deep(rng: random.Random) -> str:
    depth = rng.choice([101, 150, 1000, 5000, 20000])
    if rng.random() < 0.5:
        return "[" * depth + "]" * depth
    return "\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(min(depth, 400))) + "  " * 401 + "v"


def _set_key(text: str, key: str, value: str) -> str:
    """Replace a top-level ``key:`` line (or add it)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(f"{key}:"):
            lines[i] = f"{key}: {value}"
            return "\n".join(lines) + "\n"
    return text + f"{key}: {value}\n"


def _set_leaf(rng: random.Random, text: str, value: str) -> str:
    """Replace the value of one ``key: scalar`` line at any depth (or add a top-level key)."""
    lines = text.splitlines()
    leaves = [i for i, line in enumerate(lines) if re.match(r"^\s*[A-Za-z_$][\w-]*: \S", line)]
    if not leaves:
        return text + f"extra: {value}\n"
    i = rng.choice(leaves)
    lines[i] = lines[i].split(": ", 1)[0] + ": " + value
    return "\n".join(lines) + "\n"


def _bad_bytes(rng: random.Random) -> bytes:
    return rng.choice([b"\xff", b"\xfe\xfe", b"caf\xe9", b"\xc3", b"\xed\xa0\x80", b"\xc0\x80", b"\x80abc"])


def _mutate_yaml(rng: random.Random, text: str, kind: str) -> bytes:
    """One hostile edit of YAML ``text`` of class ``kind``."""
    if kind == "aliases":
        if rng.random() < 0.5:
            return (text + "tags:\n" + laughs(rng, "  ")).encode() if "tags:" not in text else (
                text.replace("tags:\n", "tags:\n" + laughs(rng, "  "), 1).encode()
            )
        return (laughs(rng) + text + "description: *l" + str(rng.randint(3, 5)) + "\n").encode()
    if kind == "deep":
        return _set_key(text, rng.choice(["tags", "inputs", "description", "x_deep"]), _deep(rng)).encode()
    if kind == "type-shape":
        shape = rng.choice(["[command]", "{command: 1}", "5", "null", "''", "[[[]]]", "{a: {b: c}}", "true"])
        return _set_key(text, "type", shape).encode()
    if kind == "nul":
        data = text.encode()
        if rng.random() < 0.5:
            at = rng.randrange(len(data))
            return data[:at] + b"\x00" + data[at:]
        return (text + 'description: "before\\0after"\n').encode()
    if kind == "long-path":
        long = "./" + "/".join("d" * rng.choice([255, 300, 1000]) for _ in range(rng.randint(1, 3)))
        if "\njobs:" in "\n" + text and rng.random() < 0.5:  # a pipeline step's component (issue 23, class 4)
            return text.replace("    type: command\n", f"    type: command\n    component: {long}\n", 1).encode()
        keys = [key for key in PATH_KEYS if f"\n{key}:" in text]
        return _set_key(text, rng.choice(keys or list(PATH_KEYS)), long).encode()
    if kind == "non-utf8":
        data = text.encode()
        at = rng.randrange(len(data))
        if rng.random() < 0.2:
            return text.encode("utf-16")
        return data[:at] + _bad_bytes(rng) + data[at:]
    if kind == "non-string-keys":
        key = rng.choice(["1", "yes", "on", "2024-01-01", "null", "1.5", "~", "? [a, b]", "? {a: 1}", "0x1f"])
        block = rng.choice(["tags", "environment_variables", "inputs"])
        return (text + f"{block}:\n  {key}: value\n" if f"{block}:" not in text else
                text.replace(f"{block}:\n", f"{block}:\n  {key}: value\n", 1)).encode()  # fmt: skip
    if kind == "wrong-values":
        return _set_leaf(rng, text, rng.choice(WRONG_VALUES)).encode()
    if kind == "truncated":
        data = text.encode()
        return data[: rng.randrange(1, len(data))]
    if kind == "unbuildable":
        if rng.random() < 0.15:
            return (rng.choice(["--- !!seq\n", "--- !!str\n", "--- !!int\n"]) + text).encode()
        return _set_leaf(rng, text, rng.choice(UNBUILDABLE)).encode()
    if kind == "huge-numbers":
        return _set_leaf(rng, text, rng.choice(HUGE_NUMBERS)).encode()
    if kind == "merge-multidoc":
        return _merge_or_multidoc(rng, text).encode()
    if kind == "lookalike-keys":
        return _lookalike(rng, text).encode()
    if kind == "encoding":
        return _encoding(rng, text)
    raise ValueError(kind)


# YAML 1.1 scalars and tags the parser accepts but PyYAML cannot build (issue 23, class 1)
UNBUILDABLE = (
    "2024-13-45", "2024-02-30", "2023-02-29 10:00:00", "2024-01-01 25:61:00", "2024-00-10", "!!bool maybe",
    "!!bool 2", "!!int abc", "!!int 1.5", "!!float abc", "!!float 1,5", "!!timestamp yesterday", "!!seq x",
    "!!map [1, 2]", "!!seq {a: 1}", "!!map x", "!!binary '***'",
)  # fmt: skip
# numbers no spec or values file can hold: past Python's int-string limit (4,300 digits), not finite (YAML 1.1:
# octal is 0777, not 0o777, which is a string)
HUGE_NUMBERS = (
    "9" * 4301, "-" + "1" * 5000, "0x" + "f" * 5000, "0" + "7" * 6000, "0b" + "1" * 20000, "1_" + "0" * 5000,
    ".nan", ".NaN", ".inf", "-.Inf", "+.inf", "1.0e+999", "-1.5e+400",
)  # fmt: skip
# look-alikes of real keys: Cyrillic/Greek letters, full-width forms, zero-width and no-break spaces, a soft hyphen
_LOOKALIKES = {"a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440", "c": "\u0441", "y": "\u0443",
               "i": "\u0456", "m": "\uff4d", "t": "\uff54", "n": "\u03b7"}  # fmt: skip


def _merge_or_multidoc(rng: random.Random, text: str) -> str:
    """Merge keys (well-formed or not) and documents after the first."""
    choice = rng.randrange(7)
    if choice == 0:
        return text + "---\n" + text
    if choice == 1:
        return text + "...\n---\nextra: 1\n"
    if choice == 2:
        return "base: &b {team: ml}\n" + text + "tags:\n  <<: *b\n  more: x\n" if "tags:" not in text else (
            "base: &b {team: ml}\n" + text.replace("tags:\n", "tags:\n  <<: *b\n", 1))
    if choice == 3:
        return text + rng.choice(["x:\n  <<: 3\n", "x:\n  <<: [1, 2]\n", "x:\n  <<: 'str'\n"])
    if choice == 4:
        return "a: &a {k: 1}\nb: &b {k: 2}\n" + text + "m:\n  <<: [*a, *b]\n  k: 3\n"
    if choice == 5:
        return text + "x: &x {<<: *x}\n"  # an alias to an anchor still being defined
    return "---\n" + text + "---\n"


def _lookalike(rng: random.Random, text: str) -> str:
    """One key spelt with a look-alike character (or a zero-width/no-break space): an unknown key to a human eye."""
    lines = text.splitlines()
    keyed = [i for i, line in enumerate(lines) if re.match(r"^\s*[A-Za-z_][\w-]*:", line)]
    i = rng.choice(keyed)
    indent, rest = re.match(r"^(\s*)(.*)$", lines[i]).groups()  # type: ignore[union-attr]
    key, value = rest.split(":", 1)
    spots = [j for j, ch in enumerate(key) if ch in _LOOKALIKES]
    if spots and rng.random() < 0.7:
        j = rng.choice(spots)
        key = key[:j] + _LOOKALIKES[key[j]] + key[j + 1 :]
    else:
        j = rng.randrange(len(key) + 1)
        key = key[:j] + rng.choice(["\u200b", "\u00a0", "\u00ad", "\ufeff", "\u2060"]) + key[j:]
    lines[i] = f"{indent}{key}:{value}"
    return "\n".join(lines) + "\n"


def _encoding(rng: random.Random, text: str) -> bytes:
    """Line-end and encoding variants: CRLF, lone CR, a BOM (UTF-8, UTF-16, UTF-32), Latin-1 bytes, mixed ends."""
    choice = rng.randrange(8)
    if choice == 0:
        return text.replace("\n", "\r\n").encode()
    if choice == 1:
        return b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode()
    if choice == 2:
        return text.replace("\n", "\r").encode()
    if choice == 3:
        return text.encode("utf-16")
    if choice == 4:
        return text.encode("utf-32")
    if choice == 5:
        return (text + "description: caf\u00e9 na\u00efve\n").encode("latin-1")
    if choice == 6:
        return b"\xef\xbb\xbf\xef\xbb\xbf" + text.encode()  # two BOMs: the second is a character
    lines = text.splitlines()
    return "".join(line + rng.choice(["\n", "\r\n"]) for line in lines).encode()


SPEC_CLASSES = ("aliases", "deep", "type-shape", "nul", "long-path", "non-utf8", "non-string-keys", "wrong-values",
                "truncated", "unbuildable", "huge-numbers", "merge-multidoc", "lookalike-keys", "encoding")  # fmt: skip
VALUES_CLASSES = ("aliases", "deep", "nul", "non-utf8", "non-string-keys", "wrong-values", "truncated",
                  "unbuildable", "huge-numbers", "merge-multidoc", "lookalike-keys", "encoding")  # fmt: skip


def spec_cases(seed: int, per_class: int) -> list[Case]:
    rng = random.Random(f"specs:{seed}")
    cases = []
    for kind in SPEC_CLASSES:
        for i in range(per_class):
            kinds = sorted(BASES)
            if kind == "long-path":  # only kinds that hold a local path (or a pipeline step's component)
                kinds = [k for k in kinds if any(f"\n{key}:" in "\n" + BASES[k] for key in (*PATH_KEYS, "jobs"))]
            spec_kind = rng.choice(kinds)
            text = f"$schema: {SCHEMA.format(spec_kind)}\n" + BASES[spec_kind]
            cases.append(Case(kind, f"{kind}-{i}-{spec_kind}.yml", _mutate_yaml(rng, text, kind)))
    return cases


def values_cases(seed: int, per_class: int, base: str) -> list[Case]:
    """Hostile edits of a workspace values file (``base``: its text)."""
    rng = random.Random(f"values:{seed}")
    return [
        Case(kind, f"fuzz_{kind.replace('-', '_')}_{i}", _mutate_yaml(rng, base, kind))
        for kind in VALUES_CLASSES
        for i in range(per_class)
    ]


# ----------------------------------------------------------------------------------------------------------------
# Data rows


def good_row(key: str, rng: random.Random) -> dict[str, Any]:
    turns = rng.randint(1, 3)
    messages = [{"content": "Be brief.", "role": "system"}] if rng.random() < 0.2 else []
    for t in range(turns):
        messages.append({"content": f"q{t} {key} \u00e9\u4e2d\U0001f600 \"quoted\" \\ tab\t", "role": "user"})
        messages.append({"content": f"a{t} {key}\nline two", "role": "assistant"})
    return {"prompt": messages[-2]["content"], "prompt_id": f"good-{key}", "messages": messages}


def _bad_line(rng: random.Random, key: str) -> bytes:
    """One line that can never be a good row (its prompt_id, where it has one, starts with bad-)."""
    row = good_row(key, rng)
    row["prompt_id"] = f"bad-{key}"
    choice = rng.randrange(20)
    if choice == 0:
        del row["messages"][-1]["content"]
    elif choice == 1:
        row["messages"][-1]["content"] = rng.choice([5, None, "", "  \n", ["x"], {"a": 1}])
    elif choice == 2:
        row["messages"][0]["role"] = rng.choice(["bot", None, 1, ["user"], "USER"])
    elif choice == 3:
        row["messages"] = rng.choice([None, "oops", [], {"a": 1}, 5, [[]], [None]])
    elif choice == 4:
        row["prompt_id"] = rng.choice([None, "", " ", [1], {"a": 1}, True, 1.5])
    elif choice == 5:
        del row["prompt_id"]
    elif choice == 6:
        row["messages"].append({"content": "extra", "role": "user"})  # ends with user: SFT rule
    elif choice == 7:
        return json.dumps(row).encode()[: rng.randrange(5, 60)]  # truncated
    elif choice == 8:
        data = json.dumps(row, ensure_ascii=False).encode()
        at = rng.randrange(len(data))
        return data[:at] + _bad_bytes(rng) + data[at:]
    elif choice == 9:
        return rng.choice([b"[1, 2]", b"5", b"null", b'"text"', b"true", b"{", b"}", b"garbage", b"\x00\x00"])
    elif choice == 10:
        depth = rng.choice([50, 5000, 100_000])
        return b'{"prompt_id": "bad-' + key.encode() + b'", "messages": ' + b"[" * depth + b"]" * depth + b"}"
    elif choice == 11:
        return b"[" * rng.choice([1000, 200_000])
    elif choice == 12:
        row["messages"] = [row["messages"][0]] * 2  # two user turns
    elif choice == 13:
        row["messages"][0]["content"] = "\ud800 lone surrogate"  # valid JSON text, then no final assistant
        row["messages"] = row["messages"][:1]
    elif choice == 14:
        return json.dumps(row).encode()[:-1] + b', "messages": 1}'  # a duplicate key: JSON keeps the last
    elif choice in (16, 17, 18, 19):  # a number no row can hold (issue 23, class 2), anywhere in the row
        number = rng.choice([b"9" * 4301, b"-" + b"1" * 5000, b"NaN", b"Infinity", b"-Infinity", b"1e999",
                             b"-2.5E+400"])  # fmt: skip
        text = json.dumps(row).encode()
        where = rng.choice([b'"prompt_id": ', b'"content": ', b'"messages": '])
        at = text.find(where)
        if choice == 16 or at < 0:
            return text[:-1] + b', "extra": ' + number + b"}"
        end = at + len(where)
        if where == b'"messages": ':
            return text[:end] + b"[" + number + b", " + text[end + 1 :]
        close = text.find(b'"', end + 1) if text[end : end + 1] == b'"' else end
        return text[:end] + number + text[close + 1 :]
    else:
        row["messages"][0] = rng.choice(["text", 5, None, [1]])
    return json.dumps(row).encode()


def data_cases(seed: int, count: int) -> list[Case]:
    """JSONL files mixing good rows (ids kept in ``good_ids``) with hostile lines, blank lines, CRLF, a BOM."""
    rng = random.Random(f"data:{seed}")
    cases = []
    for n in range(count):
        lines: list[bytes] = []
        good: list[str] = []
        for i in range(rng.randint(5, 40)):
            key = f"{n}-{i}"
            if rng.random() < 0.5:
                row = good_row(key, rng)
                good.append(row["prompt_id"])
                lines.append(json.dumps(row, ensure_ascii=rng.random() < 0.5).encode())
            else:
                lines.append(_bad_line(rng, key))
            if rng.random() < 0.1:
                lines.append(rng.choice([b"", b"   ", b"\t"]))
        end = b"\r\n" if rng.random() < 0.2 else b"\n"
        data = end.join(lines) + (end if rng.random() < 0.8 else b"")  # sometimes no newline at the end
        if rng.random() < 0.1:
            data = b"\xef\xbb\xbf" + data
        cases.append(Case("rows", f"case{n}", data, tuple(good)))
    return cases


# ----------------------------------------------------------------------------------------------------------------
# The bounded child


_DRIVER = textwrap.dedent(
    """
    import contextlib, io, json, signal, sys, traceback
    from tools.__main__ import main

    class Hang(Exception):
        pass

    def alarm(signum, frame):
        raise Hang()

    signal.signal(signal.SIGALRM, alarm)
    results = []
    for argv in json.load(open(sys.argv[1])):
        out, err = io.StringIO(), io.StringIO()
        signal.alarm(int(sys.argv[3]))
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main(argv)
                except SystemExit as exit:
                    code = exit.code if isinstance(exit.code, int) else 2
        except Hang:
            code, err = "hang", io.StringIO("hang")
        except BaseException:
            code = "raised"
            err.write(traceback.format_exc())
        finally:
            signal.alarm(0)
        results.append({"argv": argv, "code": code, "out": out.getvalue()[-100_000:], "err": err.getvalue()[-20_000:]})
    json.dump(results, open(sys.argv[2], "w"))
    """
)


def _cap() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def run_cases(argvs: list[list[str]], cwd: Path, timeout: float = 600) -> tuple[list[dict[str, Any]], int, str]:
    """(per-case results, peak RSS in bytes, child's stderr) of one child running ``main(argv)`` for each argv."""
    with tempfile.TemporaryDirectory() as tmp:
        cases, results = Path(tmp) / "cases.json", Path(tmp) / "results.json"
        cases.write_text(json.dumps(argvs))
        with open(Path(tmp) / "stderr", "wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-c", _DRIVER, str(cases), str(results), str(CASE_ALARM_S)],
                cwd=cwd, stdout=subprocess.DEVNULL, stderr=stderr, preexec_fn=_cap,  # noqa: PLW1509 - the cap
            )  # fmt: skip
            timer = threading.Timer(timeout, proc.kill)  # a hang the per-case alarm cannot break
            timer.start()
            try:
                _, status, usage = os.wait4(proc.pid, 0)  # reaps the child and reads its own peak RSS
            finally:
                timer.cancel()
            proc.returncode = os.waitstatus_to_exitcode(status)
        child_err = (Path(tmp) / "stderr").read_text(errors="replace")
        peak = usage.ru_maxrss * 1024
        if not results.exists():
            return [], peak, child_err
        return json.loads(results.read_text()), peak, child_err


def broken(result: dict[str, Any], allowed: set[int], max_line: int | None = MAX_LINE) -> str | None:
    """Why a result breaks the promise (None: it keeps it); ``max_line`` None: long message lines allowed."""
    text = result["err"] + result["out"]
    if result["code"] in ("hang", "raised"):
        return f"{result['code']}: {result['err'][-600:]}"
    if "Traceback" in text:
        return "traceback in the output"
    if "internal error" in text.lower() or result["code"] == 3:
        return f"internal error: {text[-400:]}"
    longest = max((len(line) for line in text.splitlines()), default=0)
    if max_line is not None and longest > max_line:
        return f"a message line of {longest} characters (one precise line, not the input echoed)"
    if result["code"] not in allowed:
        return f"exit {result['code']} not in {sorted(allowed)}"
    return None
