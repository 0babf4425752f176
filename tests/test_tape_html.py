"""The tape as HTML: the notebook table, the page that plays backpropagation, and that page in a real browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import new_grad as ng
from new_grad.cli import main
from new_grad.models import build_model
from new_grad.tape_html import tape_html, tape_trace, write_tape_html

SCREENSHOTS = os.environ.get("NEW_GRAD_SCREENSHOTS")  # a folder: the browser test saves what it saw there


def recorded_step(model: str = "mlp", hidden: int = 4, batch: int = 2, dtype=np.float64):
    """A model's forward pass on a few digits, recorded on a fresh engine; names for its arrays."""
    digits = ng.data.load_digits(val_fraction=0.0, dtype=np.dtype(dtype))
    images, labels = digits.train.arrays
    x, y = ng.constant(images[:batch].copy()), ng.constant(labels[:batch].copy())
    np.random.seed(0)
    net = build_model(model, digits.sample_shape, digits.num_classes, hidden, np.dtype(dtype))
    names = {id(p): name for name, (p, _) in net.named_parameters()}
    engine = ng.Autograd()
    with engine:
        ng.nn.CrossEntropyLoss()(net(x), y)
    return engine, net, names


def page_data(text: str) -> dict:
    return json.loads(re.search(r'<script id="tape-data" type="application/json">(.*?)</script>', text, re.S).group(1))


# -- the trace: the page's numbers are the engine's ------------------------------------------------------------


@pytest.mark.parametrize("model", ["mlp", "cnn", "gru"])
def test_trace_ends_with_the_gradients_backward_computes(model):
    engine, net, names = recorded_step(model)
    n_ops, slots_before = len(engine.operation_list), dict(engine.memory_buffer.memory)
    trace = tape_trace(engine, names)
    assert len(engine.operation_list) == n_ops and engine.memory_buffer.memory == slots_before  # nothing changed
    steps = trace["steps"]
    assert [s["phase"] for s in steps[: n_ops + 2]] == ["start"] + ["forward"] * n_ops + ["seed"]
    assert [s["op"] for s in steps if s["phase"] == "backward"] == list(range(n_ops - 1, -1, -1))
    final: dict[int, dict] = {}
    for s in steps:
        final.update({int(k): v for k, v in s.get("updates", {}).items()})
    engine.backward(1)
    by_label = {s["label"]: i for i, s in enumerate(trace["slots"])}
    for name, (p, g) in net.named_parameters():
        got = final[by_label[name]]
        assert got["shape"] == list(p.shape)
        np.testing.assert_allclose(got["norm"], np.linalg.norm(g), rtol=1e-5, atol=1e-12)
        if "values" in got:
            np.testing.assert_allclose(np.asarray(got["values"], dtype=float), g, rtol=1e-3, atol=1e-6)


def test_small_arrays_carry_their_numbers_and_large_ones_their_norms():
    engine, net, names = recorded_step("mlp", hidden=4, batch=2)
    trace = tape_trace(engine, names)
    forward = [s for s in trace["steps"] if s["phase"] == "forward"]
    first = engine.operation_list[0].output
    assert np.shape(forward[0]["value"]["values"]) == first.shape == (2, 4)
    np.testing.assert_allclose(forward[0]["value"]["values"], first, rtol=1e-3, atol=1e-6)
    fc1 = next(s for s in trace["steps"] if s["phase"] == "backward" and s["op"] == 0)
    sent = {trace["slots"][x["slot"]]["label"]: x["value"] for x in fc1["sent"]}
    assert "values" not in sent["fc1.W"] and sent["fc1.W"]["shape"] == [4, 64] and sent["fc1.W"]["norm"] > 0
    assert len(sent["fc1.b"]["values"]) == 4


def test_the_page_is_self_contained(tmp_path):
    engine, _, names = recorded_step()
    text = tape_html(engine, names, title="a <title> & more")
    assert text.startswith("<!DOCTYPE html>") and "a &lt;title&gt; &amp; more" in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text) and "@import" not in text
    assert "fetch(" not in text and "XMLHttpRequest" not in text
    path = write_tape_html(engine, tmp_path / "t.html", names)
    assert page_data(path.read_text())["ops"][0]["op"] == "linear"


def test_notebook_view_shows_ops_shapes_bytes_and_filled_slots():
    engine, net, names = recorded_step()
    before = engine._repr_html_()
    assert "<table" in before and "linear" in before and "cross_entropy" in before and "KiB" in before
    assert "Memory buffer" in before and "empty" in before
    engine.backward(1, retain_graph=True)
    after = engine._repr_html_()
    assert "norm" in after
    engine.zero_grad()
    assert "empty" in engine._repr_html_()


def test_tape_command_writes_the_page(tmp_path, capsys):
    page = tmp_path / "tape.html"
    assert main(["tape", "--hidden", "4", "--batch-size", "2", "--html", str(page)]) == 0
    assert str(page) in capsys.readouterr().out
    data = page_data(page.read_text())
    assert [o["op"] for o in data["ops"]] == ["linear", "relu", "linear", "relu", "linear", "cross_entropy"]
    assert {s["label"] for s in data["slots"]} >= {"fc1.W", "fc1.b", "head.W", "head.b"}


# -- in a real browser ---------------------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        webdriver = None
    if webdriver is None or not CHROMIUM or not CHROMEDRIVER:
        why = "needs selenium, chromium and chromedriver (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(f"the browser test {why}; .ci/run installs them")
        pytest.skip(why)
    profile = tempfile.mkdtemp(prefix="new-grad-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1000"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _open(driver, path: Path) -> None:
    driver.get(path.resolve().as_uri())
    driver.get_log("browser")  # start from an empty console
    driver.refresh()


def _errors(driver) -> list:
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def _shot(driver, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SCREENSHOTS) / name))


def _label(driver) -> tuple[str, str]:
    from selenium.webdriver.common.by import By

    lab = driver.find_element(By.ID, "step-label")
    return lab.get_attribute("data-phase"), lab.get_attribute("data-op")


def _slot(driver, label: str):
    from selenium.webdriver.common.by import By

    for card in driver.find_elements(By.CSS_SELECTOR, "#buffer .slot"):
        if card.find_element(By.CLASS_NAME, "name").text.split(" ")[0] == label:
            return card
    raise AssertionError(f"no slot {label}")


def test_the_page_steps_forward_and_backward_in_a_browser(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    engine, net, names = recorded_step("mlp", hidden=4, batch=2)
    n = len(engine.operation_list)
    path = write_tape_html(engine, tmp_path / "tape.html", names, title="mlp, one step on 2 digits")
    engine.backward(1)
    grads = {name: g for name, (_, g) in net.named_parameters()}
    _open(browser, path)
    assert _errors(browser) == []
    assert _label(browser) == ("start", "")
    assert all(s.get_attribute("data-state") == "empty" for s in browser.find_elements(By.CSS_SELECTOR, ".slot"))
    nxt, prev = browser.find_element(By.ID, "next"), browser.find_element(By.ID, "prev")

    nxt.click()  # forward #0: the first linear is the current row
    assert _label(browser) == ("forward", "0")
    current = browser.find_element(By.CSS_SELECTOR, "#tape tr.op.current")
    assert current.get_attribute("data-index") == "0" and "linear" in current.text
    for _ in range(n - 1):
        nxt.click()
    assert _label(browser) == ("forward", str(n - 1))
    assert "cross_entropy" in browser.find_element(By.CSS_SELECTOR, "#tape tr.op.current").text
    _shot(browser, "forward.png")

    nxt.click()  # the seed: the loss's slot holds 1
    assert _label(browser)[0] == "seed"
    nxt.click()
    nxt.click()  # backward #n-1 (cross_entropy), then #n-2: the head linear sends gradients to head.W and head.b
    assert _label(browser) == ("backward", str(n - 2))
    head_b = _slot(browser, "head.b")
    assert head_b.get_attribute("data-state") == "fresh"
    np.testing.assert_allclose(float(head_b.get_attribute("data-norm")), np.linalg.norm(grads["head.b"]), rtol=1e-5)
    assert _slot(browser, "fc1.W").get_attribute("data-state") == "empty"
    detail = browser.find_element(By.ID, "detail").text
    assert "Backward" in detail and "head.W" in detail and "head.b" in detail
    _shot(browser, "backward.png")

    prev.click()  # one step back: head.b is empty again
    assert _label(browser) == ("backward", str(n - 1))
    assert _slot(browser, "head.b").get_attribute("data-state") == "empty"

    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.END)
    assert _label(browser)[0] == "done"
    for name, g in grads.items():
        card = _slot(browser, name)
        assert card.get_attribute("data-state") == "filled"
        np.testing.assert_allclose(float(card.get_attribute("data-norm")), np.linalg.norm(g), rtol=1e-5)
    fc1_b = [float(t.text) for t in _slot(browser, "fc1.b").find_elements(By.CSS_SELECTOR, "table.arr td")]
    np.testing.assert_allclose(fc1_b, grads["fc1.b"], rtol=1e-3, atol=1e-6)
    _shot(browser, "done.png")

    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.HOME)
    assert _label(browser) == ("start", "")
    browser.execute_script("document.getElementById('speed').value = '300'")
    browser.find_element(By.ID, "play").click()
    deadline = time.monotonic() + 60
    while _label(browser)[0] != "done" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _label(browser)[0] == "done"
    assert _errors(browser) == []


def test_the_command_s_page_loads_cleanly_in_a_browser(browser, tmp_path):
    from selenium.webdriver.common.by import By

    page = tmp_path / "cnn.html"
    assert main(["tape", "--model", "cnn", "--hidden", "8", "--html", str(page)]) == 0
    _open(browser, page)
    assert _errors(browser) == []
    rows = browser.find_elements(By.CSS_SELECTOR, "#tape tr.op")
    assert "conv2d" in rows[0].text
    browser.find_element(By.ID, "last").click()
    assert _label(browser)[0] == "done"
    assert browser.find_elements(By.CSS_SELECTOR, '.slot[data-state="empty"]') == []
    _shot(browser, "cnn-done.png")
    assert _errors(browser) == []


def test_notebook_view_lists_every_slot_once():
    a, b = np.ones((2, 2)), np.ones((2, 2))
    engine = ng.Autograd()
    with engine:
        ng.sum(ng.add(a, b))
    text = engine._repr_html_()
    assert text.count("<td>leaf</td><td>(2,2)</td>") == 2 and "3 gradient slots" in text
