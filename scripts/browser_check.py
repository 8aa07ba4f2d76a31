"""Open every page of the built book in headless Chromium and check what a reader sees.

Serves the site (default ``_build/html``) on localhost, loads each page of
``_toc.yml`` with Playwright in ``/usr/bin/chromium`` and checks that

* math is typeset: MathJax output (``mjx-container``) where the source has math,
  no MathJax errors, no ``.math`` element left untypeset and no raw ``$$``,
  ``\\(`` or TeX command in the visible text outside code;
* every image served by the site loads (``naturalWidth > 0``);
* notebook pages carry the Colab and Binder launch URLs derived from
  ``_config.yml`` (repository url and branch) and the page's source path;
* sphinx-proof and sphinx-exercise boxes render, as many as the source has;
* with ``--student``: no solution box, no "Solution to" or ``### BEGIN SOLUTION``
  text, no solution directive in the downloadable sources and no launch link
  to the full notebooks.

Requests that leave localhost are blocked (``--allow-external`` lets them
through), so a page that needs the MathJax CDN fails: run ``make mathjax`` and
rebuild. A screenshot of each chapter's first page goes to ``_build/screenshots``.
Exits 1 with the list of failures, 0 when every page passes.

Usage::

    python scripts/browser_check.py                          # _build/html
    python scripts/browser_check.py --site _build/student/html \\
        --book _build/student/source --student
"""

from __future__ import annotations

import argparse
import functools
import http.server
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from site_pages import (
    Page,
    SourceFeatures,
    find_raw_math,
    find_source,
    launch_urls,
    read_toc,
    source_features,
)

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# One pass over the page after MathJax has finished: everything the checks need.
COLLECT_JS = """
async (timeoutMs) => {
  const timer = () => new Promise((r) => setTimeout(() => r('timeout'), timeoutMs));
  const wait = (p) => Promise.race([p, timer()]);
  let mathjax = 'absent';
  if (window.MathJax && window.MathJax.startup && window.MathJax.startup.promise) {
    mathjax = (await wait(window.MathJax.startup.promise.then(() => 'ok'))) || 'ok';
  }
  const imgs = [...document.images];
  imgs.forEach((i) => { if (i.loading === 'lazy') i.loading = 'eager'; });
  await wait(Promise.all(imgs.map((i) => i.complete ? null : new Promise((r) => {
    i.addEventListener('load', r); i.addEventListener('error', r);
  }))));
  const skip = 'pre, code, script, style, noscript, template, textarea, mjx-container, .highlight';
  const block = 'p, li, td, th, dt, dd, h1, h2, h3, h4, h5, h6, figcaption, caption, summary, '
    + 'a, button, div, section, nav, main, body';
  const groups = new Map();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const parent = n.parentElement;
    if (!parent || parent.closest(skip)) continue;
    const key = parent.closest(block) || document.body;
    groups.set(key, (groups.get(key) || '') + n.textContent);
  }
  const hasText = (el) => el.textContent.trim().length > 0;
  const boxes = (sel) => [...document.querySelectorAll(sel)];
  return {
    mathjax,
    mjx: document.querySelectorAll('mjx-container').length,
    untypeset: boxes('.math')
      .filter((e) => !e.querySelector('mjx-container') && !e.closest('mjx-container'))
      .map((e) => e.textContent.trim().slice(0, 60)),
    merrors: boxes('mjx-merror')
      .map((e) => e.getAttribute('data-mjx-error') || e.textContent.slice(0, 60))
      .concat(boxes('mjx-container mtext[mathcolor="red"]')
        .map((e) => `undefined macro ${e.textContent}`)),
    texts: [...groups.values()],
    images: imgs.map((i) => ({src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0})),
    links: boxes('a[href]').map((a) => a.href),
    proofs: boxes('.proof.admonition').map(hasText),
    exercises: boxes('.exercise.admonition').map(hasText),
    solutions: boxes('.solution, .admonition.solution, [class*="solution-"]').length,
    bodyText: document.body.innerText,
  };
}
"""

# Errors raised by the book's toolchain on every page, not by its content.
KNOWN_JS_ERRORS = {
    "Identifier 'THEBE_JS_URL' has already been declared": (
        "sphinx-thebe 0.3.1 adds its configuration <script> twice under Sphinx 7.4; "
        "the first copy defines it and launch buttons are unaffected"
    ),
}

# Text that gives a solution away: sphinx-exercise's solution titles and the
# nbgrader markers around solution code in the exercise notebooks.
STUDENT_FORBIDDEN_TEXT = ("Solution to", "### BEGIN SOLUTION", "### END SOLUTION")


@dataclass
class PageResult:
    """The failures found on one page."""

    page: Page
    failures: list[str] = field(default_factory=list)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        # The browser drops connections it no longer needs (favicon, aborted loads).
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def serve(site: Path) -> Iterator[str]:
    """Serve ``site`` on a free localhost port; yield its base URL (ending in ``/``)."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def expected_checks(
    data: dict, base: str, features: SourceFeatures, launch: dict[str, str], student: bool
) -> list[str]:
    """Compare what the browser collected on one page with what its source asks for."""
    failures = []
    if features.has_math:
        if data["mathjax"] != "ok":
            failures.append(
                f"math not typeset: MathJax {data['mathjax']} (offline? run `make mathjax` "
                "and rebuild so the book serves its own copy)"
            )
        elif data["mjx"] == 0:
            failures.append("the source has math but the page has no MathJax output")
    if data["untypeset"]:
        failures.append(
            f"{len(data['untypeset'])} math element(s) not typeset, e.g. {data['untypeset'][0]!r}"
        )
    for error in data["merrors"]:
        failures.append(f"MathJax error: {error}")
    raw = find_raw_math(data["texts"])
    for snippet in raw[:3]:
        failures.append(f"raw LaTeX in the visible text: ...{snippet}...")
    if len(raw) > 3:
        failures.append(f"raw LaTeX in {len(raw) - 3} more text block(s)")
    for image in data["images"]:
        if image["src"].startswith(base) and not image["ok"]:
            failures.append(f"image does not load: {image['src'][len(base) - 1 :]}")
    links = set(data["links"])
    for service, expected in launch.items():
        if expected not in links:
            found = sorted(link for link in links if service in link.lower())
            failures.append(
                f"no {service} launch link {expected} (found: {', '.join(found) or 'none'})"
            )
    for key, expected, kind in (
        ("proofs", features.n_proof, "sphinx-proof"),
        ("exercises", features.n_exercise, "exercise"),
    ):
        if len(data[key]) < expected:
            failures.append(
                f"{expected} {kind} directive(s) in the source, {len(data[key])} rendered"
            )
        if not all(data[key]):
            failures.append(f"a{'n' if kind[0] in 'aeiou' else ''} {kind} box is empty")
    if student:
        launchers = sorted(
            link for link in data["links"] if "colab.research" in link or "/v2/gh/" in link
        )
        if launchers:
            failures.append(f"student edition links to the full notebooks: {launchers[0]}")
        if data["solutions"]:
            failures.append(f"student edition shows {data['solutions']} solution element(s)")
        for marker in STUDENT_FORBIDDEN_TEXT:
            if marker in data["bodyText"]:
                failures.append(f"student edition page contains the text {marker!r}")
        if features.n_solution:
            failures.append(
                f"student edition source has {features.n_solution} solution directive(s)"
            )
    elif data["solutions"] < features.n_solution:
        failures.append(
            f"{features.n_solution} solution directive(s) in the source, "
            f"{data['solutions']} rendered"
        )
    return failures


class _Tab:
    """One browser tab that loads page after page, recording each page's broken loads
    (status ≥ 400 from the site) and JavaScript errors.

    One tab for the whole site, not a new one per page: a same-site navigation keeps its
    renderer process and the scripts it has compiled, which halves the time of a check
    (each load is still a new document, checked from scratch).
    """

    def __init__(self, context, base: str):
        self.page = context.new_page()
        self.broken: list[str] = []
        self.js_errors: list[str] = []

        def on_response(response) -> None:
            if response.url.startswith(base) and response.status >= 400:
                self.broken.append(f"{response.status} {response.url[len(base) - 1 :]}")

        self.page.on("response", on_response)
        self.page.on("pageerror", lambda error: self.js_errors.append(str(error)))

    def load(self, url: str, timeout_s: float) -> tuple[dict, list[str], list[str]]:
        """Open ``url``; return its collected data, broken loads and JavaScript errors."""
        self.broken.clear()
        self.js_errors.clear()
        self.page.goto(url, wait_until="load", timeout=timeout_s * 1000)
        data = self.page.evaluate(COLLECT_JS, timeout_s * 1000)
        return data, list(self.broken), list(self.js_errors)


def check_site(
    site: Path,
    pages: list[Page],
    config: dict,
    source_root: Path,
    screenshots: Path | None,
    student: bool = False,
    allow_external: bool = False,
    timeout_s: float = 30.0,
) -> tuple[list[PageResult], set[str]]:
    """Load every page in headless Chromium.

    Returns the failures of each page and the known upstream JavaScript errors seen
    (``KNOWN_JS_ERRORS``), which are reported but do not fail the check.
    """
    from playwright.sync_api import sync_playwright

    results = []
    known_seen: set[str] = set()
    if screenshots is not None:
        screenshots.mkdir(parents=True, exist_ok=True)
    with serve(site) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        if not allow_external:

            def local_only(route) -> None:
                url = route.request.url
                if url.startswith(base) or url.startswith("data:"):
                    route.continue_()
                else:
                    route.abort()

            context.route("**/*", local_only)
        tab = _Tab(context, base)
        for page_info in pages:
            result = PageResult(page_info)
            results.append(result)
            html = site / f"{page_info.docname}.html"
            source = find_source(page_info.docname, [site / "_sources", source_root])
            if not html.is_file():
                result.failures.append(f"not built: {html} is missing")
                continue
            if source is None:
                result.failures.append("source not found in _sources/ or the book folder")
                continue
            features = source_features(source.read_text(encoding="utf-8"), source.suffix)
            launch = launch_urls(config, f"{page_info.docname}{source.suffix}")
            data, broken, js_errors = tab.load(f"{base}{page_info.docname}.html", timeout_s)
            result.failures.extend(
                expected_checks(
                    data,
                    base,
                    features,
                    # a MyST text notebook (.md in the book) is not in the Jupyter edition:
                    # it has no launch buttons
                    launch
                    if features.is_notebook
                    and not (source_root / f"{page_info.docname}.md").exists()
                    else {},
                    student,
                )
            )
            result.failures.extend(f"failed to load: {b}" for b in broken)
            for error in js_errors:
                if error in KNOWN_JS_ERRORS:
                    known_seen.add(error)
                else:
                    result.failures.append(f"JavaScript error: {error}")
            if screenshots is not None and page_info.is_chapter_start:
                name = page_info.docname.replace("/", "__") + ".png"
                tab.page.screenshot(path=str(screenshots / name))
        browser.close()
    return results, known_seen


def report(results: list[PageResult]) -> str:
    """A readable summary: one block per failing page, then the totals."""
    lines = []
    failing = [r for r in results if r.failures]
    for result in failing:
        lines.append(f"{result.page.docname}:")
        lines.extend(f"  - {failure}" for failure in result.failures)
    total = sum(len(r.failures) for r in results)
    lines.append(
        f"{len(results)} pages checked, {len(failing)} with failures, {total} failures in all"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument(
        "--book",
        type=Path,
        default=ROOT,
        help="folder with the _toc.yml, _config.yml and sources the site was built from "
        "(the student edition: _build/student/source)",
    )
    parser.add_argument(
        "--screenshots",
        type=Path,
        default=None,
        help="default _build/screenshots (…/student with --student)",
    )
    parser.add_argument("--student", action="store_true", help="also check no solution shows")
    parser.add_argument(
        "--allow-external",
        action="store_true",
        help="let pages load resources from outside localhost",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per page")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        parser.error(f"--site {args.site} has no index.html; build the book first (make book)")
    if not Path(CHROMIUM).is_file():
        parser.error(f"{CHROMIUM} not found; install it with apt-get install -y chromium")
    screenshots = args.screenshots or ROOT / "_build" / "screenshots"
    if args.screenshots is None and args.student:
        screenshots = screenshots / "student"
    config = yaml.safe_load((args.book / "_config.yml").read_text(encoding="utf-8"))
    results, known = check_site(
        args.site.resolve(),
        read_toc(args.book / "_toc.yml"),
        config,
        args.book,
        screenshots,
        student=args.student,
        allow_external=args.allow_external,
        timeout_s=args.timeout,
    )
    print(report(results))
    for error in sorted(known):
        print(f"known upstream JavaScript error, not counted: {error} ({KNOWN_JS_ERRORS[error]})")
    print(f"screenshots of the chapters' first pages in {screenshots}")
    return 1 if any(r.failures for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
