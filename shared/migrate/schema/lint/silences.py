"""Silences: `# migrate: allow <rule>[, <rule>] -- <reason>` in a revision file, read with
Python's tokenizer. A comment on its own line at the left margin covers the whole file; one
inside a statement (or on the lines right above it) covers that statement.

Levels from migrations.yaml (`lint:` for the project, a module's `lint:` over it) come last:
`off` silences a rule with that as its reason.
"""

from __future__ import annotations

import io
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from shared.migrate.errors import shown

PREFIX = "migrate:"
_LAYOUT = (tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING)
VERB = "allow"


@dataclass(frozen=True)
class Silence:
    rules: tuple[str, ...]
    reason: str
    line: int
    first: int  # the lines it covers (0, 0: none; the whole file is `whole`)
    last: int
    whole: bool  # at the top level: the whole file


@dataclass(frozen=True)
class Problem:
    line: int
    detail: str


@dataclass
class FileSilences:
    silences: list[Silence] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def reason(self, rule: str, line: int | None) -> str | None:
        """The reason a silence gives for `rule` at `line`, if one covers it."""
        for silence in self.silences:
            if rule not in silence.rules:
                continue
            if silence.whole or (line is not None and silence.first <= line <= silence.last):
                return silence.reason
        return None


def read(path: Path, known: set[str]) -> FileSilences:
    """The silences in a revision file, and the ones that are findings themselves (no reason,
    an unknown rule)."""
    found = FileSilences()
    try:
        source = path.read_text(encoding="utf-8")
        if PREFIX not in source:
            return found  # most files: no tokenizing
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (OSError, SyntaxError, tokenize.TokenError, UnicodeDecodeError):
        return found  # the index reports an unreadable file
    pending: list[tuple[int, str, bool]] = []  # comments waiting for their statement
    inside: list[tuple[int, str]] = []  # comments within the current logical line
    start: int | None = None
    for token in tokens:
        kind = token.type
        if kind == tokenize.COMMENT:
            body = _directive(token.string)
            if body is None:
                continue
            if start is not None:
                inside.append((token.start[0], body))
            else:
                pending.append((token.start[0], body, token.start[1] == 0))
        elif kind == tokenize.NEWLINE and start is not None:
            end = token.start[0]
            for line, body, top in pending:
                _add(found, known, line, body, start, end, top)
            for line, body in inside:
                _add(found, known, line, body, start, end, False)
            pending, inside, start = [], [], None
        elif kind not in _LAYOUT and start is None:
            start = token.start[0]
            # a top-level comment is about the file, whatever follows it
            for line, body, _ in [p for p in pending if p[2]]:
                _add(found, known, line, body, 0, 0, True)
            pending = [p for p in pending if not p[2]]
    for line, body, top in pending:
        _add(found, known, line, body, 0, 0, top)
    return found


def _directive(comment: str) -> str | None:
    """What follows `# migrate: allow`, or None for any other comment."""
    text = comment.lstrip("#").strip()
    if not text.startswith(PREFIX):
        return None
    rest = text[len(PREFIX) :].strip()
    if not rest.startswith(VERB):
        return None
    return rest[len(VERB) :].strip()


def _add(
    found: FileSilences,
    known: set[str],
    line: int,
    body: str,
    first: int,
    last: int,
    whole: bool,
) -> None:
    names, dashes, reason = body.partition("--")
    rules = tuple(r.strip() for r in names.replace(",", " ").split() if r.strip())
    reason = reason.strip()
    if not rules:
        found.problems.append(
            Problem(line, "a silence names no rule; write # migrate: allow <rule> -- <reason>")
        )
        return
    unknown = [r for r in rules if r not in known]
    for rule in unknown:
        found.problems.append(
            Problem(line, f"the silence names unknown rule '{shown(rule)}'{suggest(rule, known)}")
        )
    if not dashes or not reason:
        found.problems.append(
            Problem(
                line,
                f"the silence of {', '.join(rules)} gives no reason; add it after ' -- ' "
                "(why it is safe here)",
            )
        )
        return
    kept = tuple(r for r in rules if r in known)
    if kept:
        found.silences.append(Silence(kept, reason, line, first, last, whole))


def suggest(name: str, known: set[str]) -> str:
    """ "; did you mean X?" for a misspelt rule, else where the rules are listed."""
    import difflib

    close = difflib.get_close_matches(name, sorted(known), n=1)
    if close:
        return f"; did you mean {close[0]}?"
    return "; the rules are listed in the README (Safe on hot tables)"
