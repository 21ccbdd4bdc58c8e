"""The drawing page in a real browser: Debian's Chromium driven by Playwright, against
`digitkit serve` started as a user would, on loopback. Saves a screenshot to test-artifacts/."""

import pytest
from browser_helpers import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, digitkit_server, needs_chromium

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def server(onnx_model):
    with digitkit_server("serve", str(onnx_model), tries=120) as url:
        yield url


def test_draw_a_one_and_see_the_prediction(server):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 420, "height": 900})  # a phone-sized screen
        page.goto(server)
        assert "Draw a digit" in page.text_content("#status")
        box = page.locator("#pad").bounding_box()
        # A "1": one vertical stroke down the middle, drawn with mouse events.
        x = box["x"] + box["width"] * 0.5
        page.mouse.move(x, box["y"] + box["height"] * 0.15)
        page.mouse.down()
        for step in range(1, 21):
            page.mouse.move(x + step * 0.3, box["y"] + box["height"] * (0.15 + 0.7 * step / 20))
        page.mouse.up()
        page.wait_for_function("document.getElementById('label').textContent.trim() !== '–'", timeout=15000)
        label = page.text_content("#label").strip()
        confidence = page.text_content("#confidence")
        widths = page.eval_on_selector_all(".bars .fill", "els => els.map(e => parseFloat(e.style.width))")
        top = page.eval_on_selector(".bars li.top", "e => e.dataset.label")
        seen = page.evaluate("""() => {
            const d = document.getElementById('seen').getContext('2d').getImageData(0, 0, 28, 28).data;
            let lit = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 128) lit++; return lit; }""")
        page.wait_for_timeout(400)  # let the bars' width transition finish before the picture
        page.screenshot(path=str(ARTIFACTS / "browser-draw-one.png"), full_page=True)
        page.click("#clear")
        cleared = page.text_content("#label").strip()
        browser.close()
    assert label == "1", f"the page read {label!r} for a drawn 1"
    assert "% sure" in confidence
    assert len(widths) == 10 and sum(widths) == pytest.approx(100, abs=1.5)
    assert top == label and widths[int(label)] == max(widths)
    assert seen > 20  # the 28x28 image the model saw is shown
    assert cleared == "–"
