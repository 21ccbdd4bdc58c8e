"""The drawing page in a real browser: Debian's Chromium driven by Playwright, against
`digitkit serve` started as a user would, on loopback. Saves a screenshot to test-artifacts/."""

import pytest
from browser_helpers import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, digitkit_server, needs_chromium

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def server(onnx_model):
    with digitkit_server("serve", str(onnx_model), tries=120) as url:
        yield url


def draw_one(page):
    """A "1": one vertical stroke down the middle of the pad, drawn with mouse events."""
    box = page.locator("#pad").bounding_box()
    x = box["x"] + box["width"] * 0.5
    page.mouse.move(x, box["y"] + box["height"] * 0.15)
    page.mouse.down()
    for step in range(1, 21):
        page.mouse.move(x + step * 0.3, box["y"] + box["height"] * (0.15 + 0.7 * step / 20))
    page.mouse.up()


def rendered_bars(page) -> list[dict]:
    """What a person sees of each bar: its track's left edge and width, the fill's drawn width and colour."""
    return page.eval_on_selector_all(".bars li", """items => items.map(li => {
        const track = li.querySelector('.track').getBoundingClientRect();
        const fill = li.querySelector('.fill');
        return {label: li.dataset.label, top: li.classList.contains('top'), trackLeft: track.left,
                trackWidth: track.width, fillWidth: fill.getBoundingClientRect().width,
                colour: getComputedStyle(fill).backgroundColor,
                pct: parseFloat(li.querySelector('.pct').textContent)}; })""")


@pytest.mark.parametrize("viewport, name", [({"width": 1280, "height": 900}, "desktop"),
                                            ({"width": 390, "height": 844}, "phone")])
def test_draw_a_one_and_see_the_prediction(server, viewport, name):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=viewport)
        page.goto(server)
        assert "Draw a digit" in page.text_content("#status")
        draw_one(page)
        page.wait_for_function("document.getElementById('label').textContent.trim() !== '–'", timeout=15000)
        label = page.text_content("#label").strip()
        confidence = page.text_content("#confidence")
        page.wait_for_timeout(400)  # let the bars' width transition finish
        bars = rendered_bars(page)
        pad_box = page.locator("#pad").bounding_box()
        seen = page.evaluate("""() => {
            const d = document.getElementById('seen').getContext('2d').getImageData(0, 0, 28, 28).data;
            let lit = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 128) lit++; return lit; }""")
        page.screenshot(path=str(ARTIFACTS / f"browser-draw-one-{name}.png"), full_page=True)
        page.click("#clear")
        page.wait_for_timeout(400)
        cleared = page.text_content("#label").strip()
        empty = rendered_bars(page)
        browser.close()
    assert label == "1", f"the page read {label!r} for a drawn 1"
    assert "% sure" in confidence
    assert len(bars) == 10
    top = next(b for b in bars if b["top"])
    assert top["label"] == label
    # The bar is drawn as wide as its probability: a person sees it, not a 0 px bar.
    for bar in bars:
        assert bar["fillWidth"] == pytest.approx(bar["trackWidth"] * bar["pct"] / 100, abs=0.01 * bar["trackWidth"] + 1)
    assert top["fillWidth"] > 0.8 * top["trackWidth"] > 50
    assert top["colour"] == "rgb(26, 127, 55)" and all(b["colour"] != top["colour"] for b in bars if not b["top"])
    assert len({round(b["trackLeft"]) for b in bars}) == 1  # every track starts at the same x
    assert 0 <= pad_box["x"] and pad_box["x"] + pad_box["width"] <= viewport["width"]
    assert seen > 20  # the 28x28 image the model saw is shown
    assert cleared == "–" and all(b["fillWidth"] == 0 for b in empty)
