"""Finding what in a PDF acts on its own once opened: scripts, launched programs, files inside.

A tight scanner rather than a PDF library: it reads the object syntax the
way readers do (names with #xx escapes decoded, strings and comments
skipped, stream data skipped) and inflates object streams, where Word and
LibreOffice put every dictionary, under a byte budget. It looks for names,
not for a model of the document, so there is little to get wrong and
nothing that interprets the file further than needed.

Refused: JavaScript, launch and remote actions, additional actions (/AA),
forms that submit or import, embedded files and attachments, rich media
and XFA (which carries its own scripts), and an /OpenAction other than
going to a page. Web links (/URI in a link) stay: they act only when clicked.

An object stream this scanner cannot inflate (another filter, damaged
data, over budget) is refused rather than trusted: what it hides cannot be
checked, and honest producers compress object streams with Flate only.

A reader goes where the cross-reference table sends it, even into what this
scanner skipped as a string, comment or stream's data. So wherever a skipped
span holds an object header ("12 0 obj"), the scanner reads on from there
too; honest files have none, and random compressed bytes almost never do.
"""

from __future__ import annotations

import re
import zlib
from collections import defaultdict
from collections.abc import Iterator

MAX_EXTRA_BYTES = 16 * 1024 * 1024  # read beyond the file itself: object streams inflated, skipped spans again
MAX_DEPTH = 4  # object streams and skipped spans inside each other; honest files need 1

ACTIVE_NAMES = frozenset(
    {
        b"JS",
        b"JavaScript",
        b"Launch",
        b"AA",
        b"GoToR",
        b"GoToE",
        b"SubmitForm",
        b"ImportData",
        b"EmbeddedFile",
        b"EmbeddedFiles",
        b"FileAttachment",
        b"RichMedia",
        b"RichMediaExecute",
        b"Rendition",
        b"XFA",
    }
)
OBJECT_STREAM_KEYS = frozenset({b"Type", b"ObjStm", b"N", b"First", b"Length", b"Filter", b"FlateDecode", b"Extends"})

_WS = rb"[\x00\t\n\x0c\r ]"
_REGULAR = rb"[^\x00\t\n\x0c\r ()<>\[\]{}/%]"
# One match per token that matters; "<" that opens no hex string and other bytes are passed over.
TOKEN = re.compile(
    rb"(?P<name>/" + _REGULAR + rb"*)"
    rb"|(?P<dict><<|>>)"
    rb"|(?P<skipped>%[^\r\n]*|\((?:[^()\\]|\\.)*\)|<[0-9A-Fa-f\x00\t\n\x0c\r ]*>)"  # comment, flat string, hex
    rb"|(?P<nested>\()"  # a string with parentheses inside: counted by _string_end
    rb"|(?P<obj>(?<![A-Za-z])obj(?![A-Za-z]))"
    rb"|(?P<stream>(?<![A-Za-z])stream(?=[\r\n]))",
    re.DOTALL,
)
ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
STRING_EVENT = re.compile(rb"\\.|[()]", re.DOTALL)
OBJECT = re.compile(rb"(?<![0-9])(\d+)" + _WS + rb"+\d+" + _WS + rb"+obj(?![A-Za-z])")
# What an /OpenAction (or the object it refers to) starts with.
VALUE = re.compile(_WS + rb"*(?:(?P<array>\[)|(?P<dict><<)|(?P<ref>\d+)" + _WS + rb"+\d+" + _WS + rb"+R)")
ENCRYPTED = re.compile(rb"/Encrypt(?!" + _REGULAR + rb")")  # only chooses which refusal to explain
FIRST = re.compile(rb"/First" + _WS + rb"*(\d+)")


def refusal(data: bytes) -> str | None:
    """The refusal code (a key of fields.ERRORS) for a PDF that acts on its own or cannot be checked."""
    scan = _Scan()
    scan.read(data)
    if scan.names & ACTIVE_NAMES:
        return "file_active"
    if scan.unreadable:  # before /OpenAction, whose target may be in what could not be read
        return "file_encrypted" if ENCRYPTED.search(data) else "file_damaged"
    if any(scan.runs_action(buffer, position) for buffer, position in scan.open_actions):
        return "file_active"
    return None


class _Scan:
    """What one pass over a PDF found: names, /OpenAction values, objects by number, and budget."""

    def __init__(self) -> None:
        self.names: set[bytes] = set()
        self.open_actions: list[tuple[bytes, int]] = []
        self.objects: defaultdict[int, list[tuple[bytes, int]]] = defaultdict(list)
        self.budget = MAX_EXTRA_BYTES
        self.unreadable = False

    def read(self, buffer: bytes, depth: int = 0, object_stream: bool = False) -> None:
        """Collect names and /OpenAction values from object syntax, and from what it skips that may hide objects.

        Depth 0 is the file; deeper reads are object streams and skipped spans.
        """
        object_start, object_names = 0, set()
        for kind, value, end in _tokens(buffer, 0, streams=not object_stream):
            if self.unreadable:
                return  # the answer is known: no more work for a hostile file
            if kind == "name":
                self.names.add(value)
                object_names.add(value)
                if value == b"OpenAction":
                    self.open_actions.append((buffer, end))
            elif kind == "obj":
                object_start, object_names = end, set()
            elif kind == "skipped":
                self._skipped(buffer, *value, depth)
            elif kind == "stream":
                self._skipped(buffer, *value, depth)
                raw = buffer[value[0] : value[1]]
                if b"ObjStm" in object_names or {b"N", b"First"} <= object_names:
                    self._object_stream(buffer[object_start : value[0]], object_names, raw, depth)
        for match in OBJECT.finditer(buffer) if depth == 0 else ():
            self.objects[int(match[1])].append((buffer, match.end()))

    def _skipped(self, buffer: bytes, start: int, end: int, depth: int) -> None:
        """Read on from the first object header in a skipped span, to the end, as a reader sent
        there by the cross-reference table would; a reader needs that header, so spans without one are data."""
        header = OBJECT.search(buffer, start, end)
        if header and self._spend(len(buffer) - header.start(), depth):
            self.read(buffer[header.start() :], depth + 1)

    def _object_stream(self, head: bytes, names: set[bytes], raw: bytes, depth: int) -> None:
        """Read the objects packed in an object stream, or mark the PDF unreadable."""
        if self.unreadable:
            return  # the budget may be spent: nothing more is inflated
        first = FIRST.search(ESCAPE.sub(_unescape, head))
        if not names <= OBJECT_STREAM_KEYS or first is None:
            self.unreadable = True
            return
        content = raw
        if b"FlateDecode" in names:
            try:
                content = zlib.decompressobj().decompress(raw, self.budget + 1)
            except zlib.error:
                self.unreadable = True
                return
        if not self._spend(len(content), depth):
            return
        self.read(content, depth + 1, object_stream=True)
        start = int(first[1])
        numbers = [int(number) for number in re.findall(rb"\d+", content[:start])]
        for number, offset in zip(numbers[::2], numbers[1::2], strict=False):
            self.objects[number].append((content, start + offset))

    def _spend(self, size: int, depth: int) -> bool:
        """Take `size` bytes from the budget for one more read; past it or too deep, the PDF is unreadable."""
        self.budget -= size
        if self.budget < 0 or depth >= MAX_DEPTH:
            self.unreadable = True
        return not self.unreadable

    def runs_action(self, buffer: bytes, position: int, references: int = 1) -> bool:
        """True unless the value at `position` is a destination or a plain GoTo action.

        One reference is followed (to every definition of that object number,
        as incremental updates may redefine it); anything unresolved runs.
        """
        value = VALUE.match(buffer, position)
        if value is None:
            return True
        if value["array"]:
            return False
        if value["dict"]:
            return not _is_plain_goto(buffer, value.end())
        places = self.objects.get(int(value["ref"])) if references else None
        return not places or any(self.runs_action(place, at, references - 1) for place, at in places)


def _is_plain_goto(buffer: bytes, position: int) -> bool:
    """The dictionary opened just before `position` is /S /GoTo with no /Next action chained."""
    depth, previous, action = 1, None, None
    for kind, value, _end in _tokens(buffer, position, streams=False):
        if kind == "name":
            if value == b"Next":
                return False
            if depth == 1 and previous == b"S":
                action = value
            previous = value
        elif kind in ("<<", ">>"):
            depth += 1 if kind == "<<" else -1
            if depth == 0:
                break
    return action == b"GoTo"


def _tokens(buffer: bytes, position: int, streams: bool) -> Iterator[tuple[str, object, int]]:
    """(kind, value, end) of what matters in PDF object syntax from `position`.

    Kinds: "name" (escapes decoded), "<<", ">>", "obj", "stream" (value: the
    data's span, ending at the first "endstream" as readers find it) and
    "skipped" (value: the span of a string or comment).
    """
    while match := TOKEN.search(buffer, position):
        kind, position = match.lastgroup, match.end()
        if kind == "name":
            name = match[0][1:]
            yield kind, ESCAPE.sub(_unescape, name) if b"#" in name else name, position
        elif kind == "dict":
            yield match[0].decode(), None, position
        elif kind == "obj":
            yield kind, None, position
        elif kind == "stream":
            if not streams:
                continue  # object streams hold no streams: the word is meaningless there
            start = position + (2 if buffer.startswith(b"\r\n", position) else 1)
            stop = buffer.find(b"endstream", start)
            stop = len(buffer) if stop < 0 else stop
            yield kind, (start, stop), stop
            position = stop
        else:
            end = _string_end(buffer, position) if kind == "nested" else position
            if buffer.find(b"obj", match.start(), end) >= 0:  # only then can a reader find an object inside
                yield "skipped", (match.start(), end), end
            position = end


def _string_end(buffer: bytes, position: int) -> int:
    """Just after the literal string opened before `position` (balanced parentheses, escapes)."""
    depth = 1
    for event in STRING_EVENT.finditer(buffer, position):
        if event[0] in (b"(", b")"):
            depth += 1 if event[0] == b"(" else -1
            if depth == 0:
                return event.end()
    return len(buffer)


def _unescape(match: re.Match) -> bytes:
    return bytes([int(match[1], 16)])
