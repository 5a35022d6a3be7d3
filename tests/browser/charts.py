"""What a dashboard chart drew, read from Chart.js and from the canvas's own pixels.

``drawn(page, canvas)`` gives each dataset's values, the geometry Chart.js laid out for each
of them (a bar's height, a point's radius and height above the zero line, a slice's angle)
and how many pixels of the dataset's colour the plot area holds (above the zero line for
bars and lines, so an all-zero line lying on the axis counts for nothing).
``assert_draws_its_data`` then fails a chart on which a value has no visible mark.

On one linear axis a series a hundredth of another's size lies along the axis, under the
larger ones' dots (output tokens beside cache reads): its marks are checked by geometry
(above the axis, a dot where no line reaches it), its pixels only when it is big enough to
stand clear of the axis (``VISIBLE_SHARE`` of the chart's largest value).

``chart_screenshot(page, name)`` saves a screenshot of a page with charts and checks the
saved PNG itself: every chart's region in it shows its series' colours.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image
from playwright.sync_api import Locator, Page

from tests.browser.conftest import screenshot

VISIBLE_SHARE = 0.05  # of a plot some 240 px high: 12 px

_INSPECT = """
(canvas) => {
  const chart = window.Chart && Chart.getChart(canvas);
  if (!chart) { return null; }
  const type = chart.config.type;
  const round = type === "doughnut";
  const ratio = chart.currentDevicePixelRatio || 1;
  const area = chart.chartArea;
  const left = Math.max(0, Math.floor(area.left * ratio));
  const top = Math.max(0, Math.floor(area.top * ratio));
  const width = Math.min(canvas.width - left, Math.ceil((area.right - area.left) * ratio));
  const height = Math.min(canvas.height - top, Math.ceil((area.bottom - area.top) * ratio));
  const pixels = canvas.getContext("2d").getImageData(left, top, width, height).data;
  const zero = round ? null : chart.scales.y.getPixelForValue(0);
  // A line 2 px wide along the axis reaches 1 px above it: only what is higher counts.
  const lowest = round ? height : Math.floor((zero - 1.5) * ratio) - top;
  function painted(hex) {
    const r = parseInt(hex.slice(1, 3), 16), g = parseInt(hex.slice(3, 5), 16), b = parseInt(hex.slice(5, 7), 16);
    let count = 0;
    for (let y = 0; y < Math.min(height, lowest); y++) {
      for (let x = 0; x < width; x++) {
        const i = (y * width + x) * 4;
        if (pixels[i + 3] > 200 && Math.abs(pixels[i] - r) <= 8 && Math.abs(pixels[i + 1] - g) <= 8
            && Math.abs(pixels[i + 2] - b) <= 8) { count++; }
      }
    }
    return count;
  }
  return {
    type: type,
    labels: chart.data.labels,
    plot: { width: area.right - area.left, height: area.bottom - area.top },
    datasets: chart.data.datasets.map((dataset, index) => {
      const elements = chart.getDatasetMeta(index).data.map((element) => {
        if (round) { return { angle: element.circumference }; }
        if (type === "bar") { return { height: Math.abs(element.base - element.y), width: element.width }; }
        return { above: zero - element.y, radius: element.options.radius };
      });
      const line = type === "line";
      const colours = round ? dataset.backgroundColor : [line ? dataset.borderColor : dataset.backgroundColor];
      return { label: dataset.label, data: dataset.data, elements: elements, painted: colours.map(painted) };
    }),
  };
}
"""


_READY = "(canvas) => window.Chart && Chart.getChart(canvas) && Chart.getChart(canvas).chartArea"


def canvas(page: Page, name: str) -> Locator:
    return page.locator(f"canvas[data-chart-name={name}]")


def drawn(page: Page, chart: Locator) -> dict[str, Any]:
    """What Chart.js drew on ``chart`` (waiting for it to be drawn)."""
    chart.wait_for()
    handle = chart.element_handle()
    page.wait_for_function(_READY, arg=handle)
    found: dict[str, Any] = chart.evaluate(_INSPECT)
    return found


def values_of(dataset: dict[str, Any]) -> list[int]:
    """A dataset's values: a bar chart leaves zeros out (``null``) so none is drawn."""
    return [value or 0 for value in dataset["data"]]


def assert_draws_its_data(found: dict[str, Any], name: str) -> None:
    """Every non-zero value has a mark one can see, and each dataset with any puts pixels of
    its colour on the plot; a chart with nothing but zeros is a failure too."""
    assert found["plot"]["width"] > 100, f"{name}: a plot area to draw in"
    assert any(any(values_of(dataset)) for dataset in found["datasets"]), f"{name}: an empty chart"
    assert sum(sum(dataset["painted"]) for dataset in found["datasets"]) > 0, f"{name}: not a pixel drawn"
    largest = max(max(values_of(dataset), default=0) for dataset in found["datasets"])
    for dataset in found["datasets"]:
        label, values, elements = f"{name}/{dataset['label']}", values_of(dataset), dataset["elements"]
        assert len(elements) == len(values) == (len(found["labels"]) if found["type"] != "doughnut" else len(values))
        for index, (value, element) in enumerate(zip(values, elements, strict=True)):
            if not value:
                continue
            if found["type"] == "doughnut":
                assert element["angle"] > 0, f"{label}: slice {index} has no angle"
                assert dataset["painted"][index] > 0, f"{label}: slice {index} paints nothing"
            elif found["type"] == "bar":
                assert element["height"] >= 1, f"{label}: bar {index} ({value}) has no height"
                assert element["width"] >= 1, f"{label}: bar {index} ({value}) has no width"
            else:
                assert element["above"] > 0, f"{label}: point {index} ({value}) lies on the axis"
                alone = not (index > 0 and values[index - 1]) and not (index + 1 < len(values) and values[index + 1])
                if alone:  # no line reaches it: without a dot it would not be seen
                    assert element["radius"] > 0, f"{label}: point {index} ({value}) stands alone, undrawn"
        if found["type"] != "doughnut" and max(values, default=0) >= VISIBLE_SHARE * largest:
            assert dataset["painted"][0] > 0, f"{label}: no pixel of its colour above the axis"


# Where each chart is on the page (CSS pixels from the document's top left, as a full-page
# screenshot lays it out) and the colours it should show: each series' colour for bars and
# lines, each slice's for a doughnut, normalised to #rrggbb by a canvas's own fillStyle.
_PLACES = """
() => {
  const ctx = document.createElement("canvas").getContext("2d");
  const hex = (colour) => { ctx.fillStyle = "#000000"; ctx.fillStyle = colour; return ctx.fillStyle; };
  return Array.from(document.querySelectorAll("canvas"), (canvas) => {
    const chart = window.Chart && Chart.getChart(canvas);
    if (!chart) { return null; }
    const rect = canvas.getBoundingClientRect();
    const round = chart.config.type === "doughnut";
    const values = chart.data.datasets.map((dataset) => dataset.data.map((value) => value || 0));
    const largest = Math.max(0, ...values.flat());
    const colours = [];
    chart.data.datasets.forEach((dataset, index) => {
      if (round) {
        values[index].forEach((value, slice) => { if (value) { colours.push(hex(dataset.backgroundColor[slice])); } });
      } else if (largest && Math.max(0, ...values[index]) >= %(share)s * largest) {
        colours.push(hex(chart.config.type === "line" ? dataset.borderColor : dataset.backgroundColor));
      }
    });
    return {
      name: canvas.dataset.chartName || canvas.id || "chart",
      x: rect.left + window.scrollX, y: rect.top + window.scrollY, width: rect.width, height: rect.height,
      colours: colours,
    };
  }).filter((place) => place !== null);
}
""".replace("%(share)s", str(VISIBLE_SHARE))
# A screenshot's fills are the canvas's own colours; antialiased edges blend into the
# background and are not counted.
SCREENSHOT_TOLERANCE = 10


def chart_screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """``screenshot(page, name)`` of a page with charts, then the saved PNG itself checked:
    each chart's region in it (its bounding box times the device pixel ratio) is not one flat
    colour, and holds pixels of each colour that chart should show. A screenshot taken before a
    chart drew, or of a chart drawn empty or hidden under something else, fails here."""
    page.wait_for_function("() => !window.Chart || Array.from(document.querySelectorAll('canvas'))"
                           ".every((c) => !Chart.getChart(c) || Chart.getChart(c).chartArea)")  # fmt: skip
    places: list[dict[str, Any]] = page.evaluate(_PLACES)
    assert places, f"{name}: a page with charts"
    scroll = page.evaluate("[window.scrollX, window.scrollY]")
    path = screenshot(page, name, full_page=full_page)
    ratio = float(page.evaluate("window.devicePixelRatio"))
    with Image.open(path) as image:
        rgb = image.convert("RGB")
        for place in places:
            x, y = (place["x"], place["y"]) if full_page else (place["x"] - scroll[0], place["y"] - scroll[1])
            region = rgb.crop(
                (
                    max(0, round(x * ratio)),
                    max(0, round(y * ratio)),
                    min(rgb.width, round((x + place["width"]) * ratio)),
                    min(rgb.height, round((y + place["height"]) * ratio)),
                )
            )
            label = f"{name}/{place['name']}"
            assert region.width > 0, f"{label}: the chart is in the screenshot"
            assert region.height > 0, f"{label}: the chart is in the screenshot"
            counts = region.getcolors(maxcolors=region.width * region.height) or []
            assert len(counts) > 1, f"{label}: one flat colour, nothing drawn"
            for colour in place["colours"]:
                assert _pixels_of(counts, colour) > 0, f"{label}: no pixel of {colour} in the saved PNG"
    return path


def _pixels_of(counts: list[tuple[int, Any]], colour: str) -> int:
    """How many pixels of the region are ``colour`` (#rrggbb), within the tolerance."""
    want = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return sum(
        count
        for count, pixel in counts
        if all(abs(int(have) - wanted) <= SCREENSHOT_TOLERANCE for have, wanted in zip(pixel, want, strict=True))
    )
