"""`python -m tools chat` in a real browser: headless Chromium (Debian's chromium + chromium-driver, installed by
`make test`) drives Prompt flow's chat page served by the command, against a fine-tuned tiny model.

One local endpoint serves the model for the module; a recording proxy in front of it shows what the flow sent (the
chat history of turn 2) and what the model answered (which the page must show). The signal path runs the command
as a user does (`--model DIR`), then SIGINT, and checks that no process and no port is left.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tools.serve import process as serve

from .conftest import REPO_ROOT, RecordingProxy, Reply, StubEndpoint

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")  # Debian's packages
SCREENSHOT = REPO_ROOT / "build" / "chat-browser.png"
ERROR_PREFIX = "Error from the model's endpoint: "  # flows/chat/chat.py
WAIT_S = 90  # an upper bound against hangs, not a speed assertion
# the outermost element of each message the page shows (the page nests a second data-from inside each)
BUBBLES = "//*[@data-from='{who}'][not(ancestor::*[@data-from])]"


# --------------------------------------------------------------------------------------------- helpers


class Chat:
    """A `python -m tools chat` process and the URL it printed."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        command = [sys.executable, "-m", "tools", "chat", "--port", "0", *args]
        self.process = subprocess.Popen(command, cwd=REPO_ROOT, env={**os.environ, **(env or {})},
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        self.lines: list[str] = []
        self.url = self._read_until("chat page: ").split()[2]
        self.port = int(self.url.rstrip("/").rsplit(":", 1)[1])

    def _read_until(self, prefix: str) -> str:
        for line in self.process.stdout:  # type: ignore[union-attr]
            self.lines.append(line)
            if line.startswith(prefix):
                return line
        self.process.wait(timeout=30)
        raise AssertionError(f"tools chat exited {self.process.returncode} before '{prefix}':\n{''.join(self.lines)}")

    def stop(self, signum: int = signal.SIGINT) -> str:
        """Send ``signum``, wait for the exit, return everything it printed."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        out, _ = self.process.communicate(timeout=60)
        return "".join(self.lines) + out


def words(text: str) -> list[str]:
    """The words of an answer: the page renders answers as Markdown, so punctuation may change, words may not."""
    return re.findall(r"\w+", text)


def scoring_values() -> dict:
    from tools.render.values import DEFAULT_WORKSPACE, load_values

    return load_values(DEFAULT_WORKSPACE).data["scoring"]


def answer_of(response: object) -> str:
    from tools.serve.scoring_client import extract_answer

    return extract_answer(response)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    assert not missing, f"{missing} missing: `make test` installs Debian's chromium and chromium-driver first"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1000"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)  # no driver manager download
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def proxy(finetuned_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordingProxy]:
    endpoint = serve.start(finetuned_model, state_dir=tmp_path_factory.mktemp("chat-serve"))
    recorder = RecordingProxy(endpoint.url)
    try:
        yield recorder
    finally:
        recorder.close()
        serve.stop_endpoint(endpoint)


@pytest.fixture(scope="module")
def chat_page(proxy: RecordingProxy) -> Iterator[Chat]:
    chat = Chat("--endpoint-url", proxy.url, env={"AZUREML_ENDPOINT_KEY": ""})
    try:
        yield chat
    finally:
        out = chat.stop(signal.SIGTERM)
        assert chat.process.returncode == 0, out
        assert not serve.is_listening(chat.port), out


def field(driver: WebDriver, name: str) -> WebElement:
    """The page's input for flow input ``name`` (its <label> reads `name*`)."""
    label = driver.find_element(By.XPATH, f"//label[normalize-space(.)='{name}*']")
    return driver.find_element(By.ID, label.get_attribute("for"))


def ask(driver: WebDriver, question: str) -> str:
    """Type ``question``, send it with Enter, wait for the next chatbot message; return its text."""
    before = len(driver.find_elements(By.XPATH, BUBBLES.format(who="chatbot")))
    box = field(driver, "question")
    box.send_keys(question)
    box.send_keys(Keys.ENTER)
    try:
        WebDriverWait(driver, WAIT_S).until(
            lambda d: len(d.find_elements(By.XPATH, BUBBLES.format(who="chatbot"))) > before
        )
    except TimeoutException:
        driver.save_screenshot(str(SCREENSHOT))
        page = driver.find_element(By.TAG_NAME, "body").text
        raise AssertionError(f"no answer within {WAIT_S} s; page text:\n{page}") from None
    bubble = driver.find_elements(By.XPATH, BUBBLES.format(who="chatbot"))[-1]
    lines = bubble.text.splitlines()
    assert lines[0] == "Chatbot", bubble.text
    return "\n".join(line for line in lines[2:] if not line.startswith("Duration:"))  # name, time, text, duration


def open_page(driver: WebDriver, url: str) -> None:
    driver.get(url)
    WebDriverWait(driver, WAIT_S).until(lambda d: d.find_elements(By.XPATH, "//label[normalize-space(.)='question*']"))


# --------------------------------------------------------------------------------------------- tests


def test_page_answers_from_the_model_and_carries_the_history(
    browser: WebDriver, chat_page: Chat, proxy: RecordingProxy
) -> None:
    open_page(browser, chat_page.url)
    labels = [label.text for label in browser.find_elements(By.TAG_NAME, "label") if label.text.endswith("*")]
    assert labels == ["question*"]  # the chat input is the only field: generation parameters are the tool's defaults
    proxy.exchanges.clear()

    first_q, second_q = "What is the capital of France?", "And what is it famous for?"
    first = ask(browser, first_q)
    ((sent, answered),) = proxy.exchanges
    assert sent["input_data"]["input_string"] == [[{"role": "user", "content": first_q}]]
    assert sent["input_data"]["parameters"] == scoring_values()
    model_answer = answer_of(answered)
    assert words(model_answer), "the model gave an empty answer: the page comparison would prove nothing"
    assert words(first) == words(model_answer)  # the page shows the model's answer, not an error or a stand-in
    assert not first.startswith(ERROR_PREFIX)

    second = ask(browser, second_q)
    assert len(proxy.exchanges) == 2
    sent, answered = proxy.exchanges[1]
    assert sent["input_data"]["input_string"] == [[
        {"role": "user", "content": first_q},
        {"role": "assistant", "content": model_answer},
        {"role": "user", "content": second_q},
    ]]  # fmt: skip
    assert words(second) == words(answer_of(answered))

    text = browser.find_element(By.TAG_NAME, "body").text
    assert first_q in text and second_q in text
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 10_000


def test_endpoint_down_shows_a_readable_error_in_the_page(
    browser: WebDriver, chat_page: Chat, proxy: RecordingProxy
) -> None:
    open_page(browser, chat_page.url)
    browser.find_element(By.XPATH, "//button[normalize-space(.)='New chat']").click()  # the page keeps old chats
    assert not browser.find_elements(By.XPATH, BUBBLES.format(who="chatbot"))
    proxy.down()
    try:
        shown = ask(browser, "Is anybody there?")
    finally:
        proxy.up()
    assert shown.startswith(ERROR_PREFIX), shown
    assert f"cannot reach {proxy.url}" in shown  # the scoring client's line, not "Request failed with status 400"
    browser.save_screenshot(str(SCREENSHOT.with_name("chat-browser-endpoint-down.png")))
    # the page keeps working once the endpoint is back, and the failed turn is not sent as history
    proxy.exchanges.clear()
    assert not ask(browser, "Hello again?").startswith(ERROR_PREFIX)
    ((sent, _),) = proxy.exchanges
    assert sent["input_data"]["input_string"] == [[{"role": "user", "content": "Hello again?"}]]


def test_ctrl_c_stops_the_page_and_the_endpoint(finetuned_model: Path) -> None:
    chat = Chat("--model", str(finetuned_model))
    try:
        printed = "".join(chat.lines)
        endpoint_port = int(re.search(r"model endpoint: http://127\.0\.0\.1:(\d+)/score", printed).group(1))
        with urllib.request.urlopen(chat.url, timeout=30) as page:
            assert b'<div id="root">' in page.read()
        body = json.dumps({"question": "hi", "max_new_tokens": 4}).encode()
        request = urllib.request.Request(chat.url + "score", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=WAIT_S) as response:
            answer = json.loads(response.read())["answer"]
        assert isinstance(answer, str) and not answer.startswith(ERROR_PREFIX)
        family = [chat.process.pid] + [p.pid for p in psutil.Process(chat.process.pid).children(recursive=True)]
        assert len(family) >= 3  # the command, pf flow serve, the endpoint host (and its MLflow server)
    finally:
        out = chat.stop(signal.SIGINT)
    assert chat.process.returncode == 0, out
    assert "SIGINT: stopping" in out and "nothing listens" in out, out
    assert not serve.is_listening(chat.port) and not serve.is_listening(endpoint_port)
    alive = [pid for pid in family if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"left running: {alive}"


def test_missing_model_says_to_run_make_demo(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "tools", "chat", "--root", str(tmp_path)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {tmp_path / '.runs/demo/model'}: no fine-tuned model yet: run `make demo` first (it leaves the model "
        "there)"
    ]
    assert done.stdout == ""


def test_workspace_endpoint_comes_from_az_and_never_a_file(stub: StubEndpoint, fake_key: str, tmp_path: Path) -> None:
    """`--workspace dev`: the scoring URI and key come from a stand-in `az` (Azure's real commands, see
    tools/serve/score.py) at run time, reach the endpoint as a Bearer header, and are written to no file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "az-calls.txt"
    az = bin_dir / "az"
    az.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {calls}\n'
        'case "$*" in\n'
        f'  *"online-endpoint show"*"--query scoring_uri"*) echo "{stub.url}" ;;\n'
        '  *"online-endpoint show"*"--query auth_mode"*) echo key ;;\n'
        '  *"online-endpoint get-credentials"*"--query primaryKey"*) echo "$STAND_IN_KEY" ;;\n'
        '  *) echo "unexpected: $*" >&2; exit 1 ;;\n'
        "esac\n"
    )
    az.chmod(az.stat().st_mode | stat.S_IEXEC)
    stub.answer(Reply(body={"output": "from the workspace endpoint"}))
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "STAND_IN_KEY": fake_key, "AZUREML_ENDPOINT_URL": "",
           "AZUREML_ENDPOINT_KEY": ""}  # fmt: skip
    chat = Chat("--workspace", "dev", env=env)
    try:
        body = json.dumps({"question": "hi"}).encode()
        request = urllib.request.Request(chat.url + "score", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=WAIT_S) as response:
            assert json.loads(response.read()) == {"answer": "from the workspace endpoint"}
    finally:
        out = chat.stop(signal.SIGTERM)
    assert chat.process.returncode == 0, out
    assert stub.seen[0].headers["Authorization"] == f"Bearer {fake_key}"
    from tools.render.values import load_values

    values = load_values("dev").data
    made = calls.read_text()
    assert f"online-endpoint show -n {values['endpoint']['name']}" in made and "get-credentials" in made
    assert fake_key not in out
    leaked = [p for folder in (REPO_ROOT / ".runs" / "chat", Path(os.environ["PF_HOME_DIRECTORY"]))
              if folder.is_dir() for p in folder.rglob("*")
              if p.is_file() and fake_key.encode() in p.read_bytes()]  # fmt: skip
    assert not leaked, f"the key was written to {leaked}"


def test_page_flow_is_the_chat_flow_with_chat_inputs_only() -> None:
    """flows/chat/page is flows/chat minus the generation inputs: same tool, same chat markers, and the tool's own
    defaults (what the page's turns use) are the workspace's `scoring:` values."""
    import inspect

    import yaml

    flow = yaml.safe_load((REPO_ROOT / "flows/chat/flow.dag.yaml").read_text())
    page = yaml.safe_load((REPO_ROOT / "flows/chat/page/flow.dag.yaml").read_text())
    assert page["inputs"] == {k: v for k, v in flow["inputs"].items() if k in ("question", "chat_history")}
    assert page["inputs"]["question"]["is_chat_input"] and page["inputs"]["chat_history"]["is_chat_history"]
    assert page["outputs"] == flow["outputs"] and page["outputs"]["answer"]["is_chat_output"]
    (node,) = page["nodes"]
    assert node["source"]["path"] == "../chat.py" and set(node["inputs"]) == {"question", "chat_history"}
    tool = _flow_tool()
    defaults = {name: p.default for name, p in inspect.signature(tool.chat).parameters.items()}
    assert {name: defaults[name] for name in scoring_values()} == scoring_values()


def _flow_tool():  # noqa: ANN202
    import importlib.util

    spec = importlib.util.spec_from_file_location("chat_page_tool", REPO_ROOT / "flows" / "chat" / "chat.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module
