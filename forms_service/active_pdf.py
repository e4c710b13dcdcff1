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

Where a reader could see objects that the scanner skipped, the scanner
looks there with a cruder eye: a skipped string or comment that holds an
object or stream keyword, and every stream's raw bytes (a cross-reference
may point into them), are searched for the same names followed by what
follows a name in a dictionary; their text or random compressed bytes
rarely look like that.
"""

from __future__ import annotations

import re
import zlib
from collections import defaultdict
from collections.abc import Iterator

MAX_OBJECT_STREAM_BYTES = 16 * 1024 * 1024  # all object streams of one PDF, inflated

ACTIVE_NAMES = frozenset({
    b"JS", b"JavaScript", b"Launch", b"AA", b"GoToR", b"GoToE", b"SubmitForm", b"ImportData",
    b"EmbeddedFile", b"EmbeddedFiles", b"FileAttachment", b"RichMedia", b"RichMediaExecute", b"Rendition",
    b"XFA",
})
OBJECT_STREAM_KEYS = frozenset({b"Type", b"ObjStm", b"N", b"First", b"Length", b"Filter", b"FlateDecode", b"Extends"})

_WS = rb"[\x00\t\n\x0c\r ]"
_REGULAR = rb"[^\x00\t\n\x0c\r ()<>\[\]{}/%]"
TOKEN = re.compile(rb"%|\(|<<|>>|<|/|(?<![A-Za-z])obj(?![A-Za-z])|(?<![A-Za-z])stream(?=[\r\n])")
NAME = re.compile(_REGULAR + rb"*")
ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
HEX_STRING = re.compile(rb"<[0-9A-Fa-f\x00\t\n\x0c\r ]*>")
STRING_EVENT = re.compile(rb"\\.|[()]", re.DOTALL)
END_OF_LINE = re.compile(rb"[\r\n]")
BOUNDARY = re.compile(rb"obj|stream")  # a skipped span holding these may hide an object from this scanner
# A name as a dictionary key or value: followed by a value or by the dictionary's end.
KEY_LIKE_NAME = re.compile(rb"/(" + _REGULAR + rb"+)(?=" + _WS + rb"*[(<\[/>0-9])")
OBJECT = re.compile(rb"(?<![0-9])(\d+)" + _WS + rb"+\d+" + _WS + rb"+obj(?![A-Za-z])")
# What an /OpenAction (or the object it refers to) starts with.
VALUE = re.compile(_WS + rb"*(?:(?P<array>\[)|(?P<dict><<)|(?P<ref>\d+)" + _WS + rb"+\d+" + _WS + rb"+R)")
FIRST = re.compile(rb"/First" + _WS + rb"*(\d+)")


def refusal(data: bytes) -> str | None:
    """The refusal code (a key of fields.ERRORS) for a PDF that acts on its own or cannot be checked."""
    scan = _Scan()
    scan.read(data, top_level=True)
    if scan.names & ACTIVE_NAMES or scan.roughly_seen & (ACTIVE_NAMES | {b"OpenAction"}):
        return "file_active"
    if scan.unreadable:  # before /OpenAction, whose target may be in what could not be read
        return "file_encrypted" if b"Encrypt" in scan.names else "file_damaged"
    if any(scan.runs_action(buffer, position) for buffer, position in scan.open_actions):
        return "file_active"
    return None


class _Scan:
    """What one pass over a PDF found: names, /OpenAction values, objects by number, and budget."""

    def __init__(self) -> None:
        self.names: set[bytes] = set()
        self.roughly_seen: set[bytes] = set()
        self.open_actions: list[tuple[bytes, int]] = []
        self.objects: defaultdict[int, list[tuple[bytes, int]]] = defaultdict(list)
        self.budget = MAX_OBJECT_STREAM_BYTES
        self.unreadable = False

    def read(self, buffer: bytes, top_level: bool) -> None:
        """Collect from object syntax; at top level also inflate and read object streams."""
        object_start, object_names = 0, set()
        for kind, value, end in _tokens(buffer, 0, streams=top_level):
            if kind == "name":
                self.names.add(value)
                object_names.add(value)
                if value == b"OpenAction":
                    self.open_actions.append((buffer, end))
            elif kind == "obj":
                object_start, object_names = end, set()
            elif kind == "hidden":
                self.roughly_seen |= _key_like_names(buffer[value[0]:value[1]])
            elif kind == "stream":
                raw = buffer[value[0]:value[1]]
                self.roughly_seen |= _key_like_names(raw)
                if b"ObjStm" in object_names or {b"N", b"First"} <= object_names:
                    self._object_stream(buffer[object_start:value[0]], object_names, raw)
        for match in OBJECT.finditer(buffer) if top_level else ():
            self.objects[int(match[1])].append((buffer, match.end()))

    def _object_stream(self, head: bytes, names: set[bytes], raw: bytes) -> None:
        """Read the objects packed in an object stream, or mark the PDF unreadable."""
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
        self.budget -= len(content)
        if self.budget < 0:
            self.unreadable = True
            return
        self.read(content, top_level=False)
        start = int(first[1])
        numbers = [int(number) for number in re.findall(rb"\d+", content[:start])]
        for number, offset in zip(numbers[::2], numbers[1::2]):
            self.objects[number].append((content, start + offset))

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
        if kind == "hidden" or (kind == "name" and value == b"Next"):
            return False
        if kind == "name":
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
    "hidden" (value: the span of a skipped string or comment that might hold objects).
    """
    while match := TOKEN.search(buffer, position):
        token, position = match[0], match.end()
        if token == b"/":
            name = NAME.match(buffer, position)
            position = name.end()
            yield "name", ESCAPE.sub(_unescape, name[0]), position
        elif token in (b"<<", b">>", b"obj"):
            yield token.decode(), None, position
        elif token == b"<":
            hex_string = HEX_STRING.match(buffer, match.start())
            position = hex_string.end() if hex_string else position
        elif token == b"stream":
            if not streams:
                continue  # object streams hold no streams: the word is meaningless there
            start = position + (2 if buffer.startswith(b"\r\n", position) else 1)
            stop = buffer.find(b"endstream", start)
            stop = len(buffer) if stop < 0 else stop
            yield "stream", (start, stop), stop
            position = stop
        else:
            end = _comment_end(buffer, position) if token == b"%" else _string_end(buffer, position)
            if BOUNDARY.search(buffer, position, end):
                yield "hidden", (position, end), end
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


def _comment_end(buffer: bytes, position: int) -> int:
    end_of_line = END_OF_LINE.search(buffer, position)
    return end_of_line.start() if end_of_line else len(buffer)


def _key_like_names(span: bytes) -> set[bytes]:
    """Names in bytes this scanner did not read as syntax, where they look like dictionary entries."""
    return {ESCAPE.sub(_unescape, match[1]) for match in KEY_LIKE_NAME.finditer(span)}


def _unescape(match: re.Match) -> bytes:
    return bytes([int(match[1], 16)])
