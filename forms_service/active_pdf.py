"""Finding what in a PDF acts on its own once opened: scripts, launched programs, files inside.

A tight scanner rather than a PDF library: one pass over the object syntax, read the way readers do (names
with #xx escapes decoded, strings, comments and stream data skipped), and over the object streams it
inflates, where Word and LibreOffice put every dictionary. It looks for names, not for a model of the
document, so there is little to get wrong. Refused: JavaScript, launch and remote actions, additional
actions (/AA), forms that submit or import, embedded files and attachments, rich media, XFA (which carries
its own scripts), and an /OpenAction other than going to a page. Web links stay: they act only when clicked.

What a reader could see but this pass cannot is refused as damaged, not trusted: an object stream it cannot
inflate (honest producers use Flate), an object header inside a string, comment or stream data (the
cross-reference table may send a reader there; honest files have none), and an object stream entry starting
inside a string. Each byte is read once (an object stream's content once more, inflated), recording on the
way what an /OpenAction needs, and every step spends from the upload's budget (budget.py).
"""

from __future__ import annotations

import bisect
import re
import zlib
from collections import defaultdict
from collections.abc import Iterator

from .budget import MAX_DEFINITIONS, MAX_PDF_DEPTH, Budget, OverBudget

ACTIVE_NAMES = frozenset(
    b"JS JavaScript Launch AA GoToR GoToE SubmitForm ImportData EmbeddedFile EmbeddedFiles FileAttachment"
    b" RichMedia RichMediaExecute Rendition XFA".split()
)
OBJECT_STREAM_KEYS = frozenset({b"Type", b"ObjStm", b"N", b"First", b"Length", b"Filter", b"FlateDecode", b"Extends"})

_WS = rb"[\x00\t\n\x0c\r ]"
_REGULAR = rb"[^\x00\t\n\x0c\r ()<>\[\]{}/%]"
# One match per token that matters; numbers, keywords and a "<" that opens no hex string are passed over.
TOKEN = re.compile(
    rb"(?P<name>/" + _REGULAR + rb"*)"
    rb"|(?P<open><<|\[)|(?P<close>>>|\])"
    rb"|(?P<skipped>%[^\r\n]*|\((?:[^()\\]|\\.)*\)|<[0-9A-Fa-f\x00\t\n\x0c\r ]*>)"  # comment, flat string, hex
    rb"|(?P<nested>\()"  # a string with parentheses inside: counted by _string_end
    rb"|(?P<obj>(?<![A-Za-z])obj(?![A-Za-z]))"
    rb"|(?P<stream>(?<![A-Za-z])stream(?=[\r\n]))",
    re.DOTALL,
)
TOKENS_PER_SPEND = 256
PARENTHESIS = re.compile(rb"(?<!\\)(?:\\\\)*([()])")  # one not escaped: after an even run of backslashes
ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
HEADER = re.compile(rb"(?<![0-9])(\d+)" + _WS + rb"+\d+" + _WS + rb"+\Z")  # before "obj", within a window:
HEADER_WINDOW = 32  # "4294967295 65535 " is 17 bytes
OBJECT = re.compile(rb"(?<![0-9])(\d+)" + _WS + rb"+\d+" + _WS + rb"+obj(?![A-Za-z])")
# What an /OpenAction (or the object it refers to) starts with.
VALUE = re.compile(_WS + rb"*(?:(?P<array>\[)|(?P<dict><<)|(?P<ref>\d+)" + _WS + rb"+\d+" + _WS + rb"+R)")
ENCRYPTED = re.compile(rb"/Encrypt(?!" + _REGULAR + rb")")  # only chooses which refusal to explain
FIRST = re.compile(rb"/First" + _WS + rb"*(\d+)")
PAIR = re.compile(rb"(\d+)" + _WS + rb"+(\d+)")


class _Active(Exception):
    """The PDF acts once opened: the answer is known before the end of the pass."""


class _Unreadable(Exception):
    """The PDF cannot be read as a reader would (see the module): the answer is known too."""


def refusal(data: bytes, budget: Budget) -> str | None:
    """The refusal code (a key of form_model.ERRORS) for a PDF that acts on its own or cannot be checked.

    Raises OverBudget for a PDF that needs more work to check than any honest one.
    """
    scan = _Scan(budget)
    try:
        scan.read(data, in_object_stream=False)
    except _Active:
        return "file_active"
    except _Unreadable:
        return "file_encrypted" if ENCRYPTED.search(data) else "file_damaged"
    if any(scan.runs_action(key, position) for key, position in scan.open_actions):
        return "file_active"
    return None


class _Scan:
    """What one pass over a PDF found: /OpenAction values, objects by number, plain GoTo dictionaries."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.buffers: list[bytes] = []  # the file, then each object stream's content
        self.open_actions: list[tuple[int, int]] = []  # (buffer, position after the name)
        self.objects: defaultdict[int, list[tuple[int, int]]] = defaultdict(list)  # number -> (buffer, position)
        self.plain_goto: set[tuple[int, int]] = set()  # (buffer, position after "<<")

    def read(self, buffer: bytes, in_object_stream: bool) -> list[tuple[int, int]]:
        """Read one buffer's object syntax: names, containers, objects, and object streams within.

        Returns an object stream's strings and comments: no object may start inside one.
        """
        key = len(self.buffers)
        self.buffers.append(buffer)
        spans: list[tuple[int, int]] = []  # strings and comments: where no object may start
        containers: list[bytes] = []  # b"<" or b"[" for each one open
        # Dictionaries that may be an action: [depth inside, doubts when opened, /S value, start]. A doubt
        # is a /Next (a chained action) or a mismatched bracket seen since: either spoils a plain GoTo.
        candidates: list[list] = []
        doubts, previous, object_start, names = 0, None, 0, set()
        for kind, value, end in _tokens(buffer, self.budget, streams=not in_object_stream):
            if kind == "name":
                if value in ACTIVE_NAMES:
                    raise _Active
                if value == b"OpenAction":
                    self.open_actions.append((key, end))
                doubts += value == b"Next"
                if previous == b"S" and candidates and candidates[-1][0] == len(containers):
                    candidates[-1][2] = value
                names.add(value)
            elif kind == "open":
                containers.append(value)
                if len(containers) > MAX_PDF_DEPTH:
                    raise OverBudget("depth")
                if value == b"<" and (len(containers) == 1 or previous == b"OpenAction"):
                    candidates.append([len(containers), doubts, None, end])
            elif kind == "close":
                if containers and containers.pop() != value:
                    doubts += 1  # "]" closing a dictionary or ">>" an array: readers may read on
                if candidates and candidates[-1][0] > len(containers):
                    _, at_open, action, start = candidates.pop()
                    if action == b"GoTo" and doubts == at_open:
                        self.plain_goto.add((key, start))
            elif kind == "obj" and not in_object_stream:  # there the word is meaningless
                # Writers put the number just before ("12 0 obj"); without one, what a reader makes of it is unknown.
                header = HEADER.search(buffer, max(0, value[0] - HEADER_WINDOW), value[0])
                if header is None:
                    raise _Unreadable
                self._record(int(header[1]), key, end)
                object_start, names = end, set()
            elif kind == "skipped":
                if in_object_stream:
                    spans.append(value)
                else:
                    self._no_object_inside(buffer, *value)
            elif kind == "stream":
                self._no_object_inside(buffer, *value)
                if b"ObjStm" in names or {b"N", b"First"} <= names:
                    self._object_stream(buffer[object_start : value[0]], names, buffer[value[0] : value[1]])
                object_start, names = end, set()
            previous = value if kind == "name" else None
        return spans

    def _record(self, number: int, key: int, position: int) -> None:
        """Object `number` is defined at `position`: each definition is one more a reader may take."""
        self.budget.spend("objects")
        definitions = self.objects[number]
        definitions.append((key, position))
        if len(definitions) > MAX_DEFINITIONS:
            raise OverBudget("definitions")

    def _no_object_inside(self, buffer: bytes, start: int, end: int) -> None:
        """A skipped span holding an object header hides an object from this pass (see the module)."""
        if buffer.find(b"obj", start, end) >= 0 and OBJECT.search(buffer, start, end):
            raise _Unreadable

    def _object_stream(self, head: bytes, names: set[bytes], raw: bytes) -> None:
        """Read the objects packed in an object stream, recording where each one starts."""
        self.budget.spend("streams")
        first = FIRST.search(ESCAPE.sub(_unescape, head))
        if not names <= OBJECT_STREAM_KEYS or first is None:
            raise _Unreadable
        content = raw
        if b"FlateDecode" in names:
            try:
                content = zlib.decompressobj().decompress(raw, self.budget.left["stream_bytes"] + 1)
            except zlib.error:
                raise _Unreadable from None
        self.budget.spend("stream_bytes", len(content))
        key = len(self.buffers)
        spans = self.read(content, in_object_stream=True)
        start = int(first[1])
        starts = [span_start for span_start, _ in spans]
        for pair in PAIR.finditer(content, 0, start):
            position = start + int(pair[2])
            inside = bisect.bisect_right(starts, position) - 1
            if inside >= 0 and position < spans[inside][1] and position != starts[inside]:
                raise _Unreadable
            self._record(int(pair[1]), key, position)

    def runs_action(self, key: int, position: int, follow: bool = True) -> bool:
        """True unless the value at `position` is a destination or a plain GoTo action.

        One reference is followed (to every definition of that object number,
        as incremental updates may redefine it); anything unresolved runs.
        """
        value = VALUE.match(self.buffers[key], position)
        if value is None:
            return True
        if value["array"]:
            return False
        if value["dict"]:
            return (key, value.end()) not in self.plain_goto
        if not follow:
            return True
        self.budget.spend("references")
        places = self.objects.get(int(value["ref"]), ())
        return not places or any(self.runs_action(*place, follow=False) for place in places)


def _tokens(buffer: bytes, budget: Budget, streams: bool) -> Iterator[tuple[str, object, int]]:
    """(kind, value, end) of what matters in PDF object syntax, each token spent from the budget.

    Kinds: "name" (escapes decoded), "open" and "close" (value: b"<" for a
    dictionary, b"[" for an array), "obj", "stream" (value: the data's span,
    ending at the first "endstream" as readers find it) and "skipped" (value:
    the span of a string or comment).
    """
    position, count = 0, 0
    while True:
        for match in TOKEN.finditer(buffer, position):
            count += 1
            if count == TOKENS_PER_SPEND:
                budget.spend("tokens", count)
                count = 0
            kind, position = match.lastgroup, match.end()
            if kind == "name":
                name = match[0][1:]
                yield kind, ESCAPE.sub(_unescape, name) if b"#" in name else name, position
            elif kind == "open" or kind == "close":
                yield kind, b"[" if match[0] in b"[]" else b"<", position
            elif kind == "skipped" or kind == "obj":
                yield kind, (match.start(), position), position
            elif kind == "nested":
                position = _string_end(buffer, position, budget)
                yield "skipped", (match.start(), position), position
                break  # read on from the string's end
            elif streams:  # object streams hold no streams: there the word is meaningless
                start = position + (2 if buffer.startswith(b"\r\n", position) else 1)
                stop = buffer.find(b"endstream", start)
                position = len(buffer) if stop < 0 else stop
                yield kind, (start, position), position
                break  # read on after the data
        else:
            budget.spend("tokens", count)
            return


def _string_end(buffer: bytes, position: int, budget: Budget) -> int:
    """Just after the literal string opened before `position` (balanced parentheses, escapes)."""
    depth = 1
    for count, parenthesis in enumerate(PARENTHESIS.finditer(buffer, position), 1):
        if count % TOKENS_PER_SPEND == 0:
            budget.spend("tokens", TOKENS_PER_SPEND)
        depth += 1 if parenthesis[1] == b"(" else -1
        if depth == 0:
            return parenthesis.end()
    return len(buffer)


def _unescape(match: re.Match) -> bytes:
    return bytes([int(match[1], 16)])
