"""Every relative link in the project's front documents leads somewhere: the file or folder exists,
and a #fragment names a heading of the markdown file it points into (GitHub's anchor rules).
Run: cd benchmarks && python3 -m unittest tests.test_docs_links"""

import os
import re
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCUMENTS = ["README.md", "docs/design.md", "docs/testing.md", "docs/echo-bench.md", "benchmarks/RESULTS.md"]

FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"`+[^`]*`+")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose_lines(text):
    """(line number, line) outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def links(text):
    """(line number, target) of every inline link, image and reference definition, code aside."""
    for number, line in prose_lines(text):
        reference = REFERENCE.match(line)
        if reference:
            yield number, reference.group(1)
            continue
        for match in INLINE_LINK.finditer(CODE_SPAN.sub("", line)):
            yield number, match.group(1)


def anchor(heading):
    """GitHub's anchor for a heading: markup and punctuation dropped, lower case, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.replace("`", "").replace("*", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text):
    seen = {}
    result = set()
    for _, line in prose_lines(text):
        match = HEADING.match(line)
        if not match:
            continue
        base = anchor(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def broken_links(path):
    """Each relative link of the markdown file at path that leads nowhere, as 'line N: target (why)'."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    problems = []
    for number, target in links(text):
        if EXTERNAL.match(target):
            continue
        file_part, _, fragment = target.partition("#")
        destination = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
        if not os.path.exists(destination):
            problems.append(f"line {number}: {target} (no such file)")
            continue
        if fragment and destination.endswith(".md"):
            with open(destination, encoding="utf-8") as f:
                if fragment not in anchors(f.read()):
                    problems.append(f"line {number}: {target} (no heading #{fragment})")
    return problems


class DocumentLinks(unittest.TestCase):
    def test_every_relative_link_resolves(self):
        for document in DOCUMENTS:
            with self.subTest(document=document):
                path = os.path.join(ROOT, document)
                self.assertTrue(os.path.isfile(path), f"{document} is missing")
                self.assertEqual(broken_links(path), [], f"broken links in {document}")

    def test_the_documents_have_links_to_check(self):
        # A parser that found nothing would pass the test above for the wrong reason.
        for document in DOCUMENTS:
            with open(os.path.join(ROOT, document), encoding="utf-8") as f:
                self.assertGreater(len(list(links(f.read()))), 0, document)


class Checker(unittest.TestCase):
    def test_finds_a_missing_file_and_a_missing_heading(self):
        with tempfile.TemporaryDirectory() as folder:
            os.mkdir(os.path.join(folder, "sub"))
            with open(os.path.join(folder, "sub", "other.md"), "w", encoding="utf-8") as f:
                f.write("# Other\n\n## Where it ran, and `what` it cost\n\n## Twice\n\n## Twice\n")
            page = os.path.join(folder, "page.md")
            with open(page, "w", encoding="utf-8") as f:
                f.write("# Page\n\n"
                        "[ok](sub/other.md) ![plot](sub) [anchor](sub/other.md#where-it-ran-and-what-it-cost)\n"
                        "[second](sub/other.md#twice-1) [own](#page) [web](https://example.org/x)\n"
                        "[gone](sub/missing.md) and `[in code](nowhere.md)`\n"
                        "```\n[fenced](nowhere-either.md)\n```\n"
                        "[bad anchor](sub/other.md#nothing)\n"
                        "[ref]: ../outside-and-missing.md\n")
            self.assertEqual(broken_links(page), [
                "line 5: sub/missing.md (no such file)",
                "line 9: sub/other.md#nothing (no heading #nothing)",
                "line 10: ../outside-and-missing.md (no such file)",
            ])


if __name__ == "__main__":
    unittest.main()
