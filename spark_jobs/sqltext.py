"""Lexical help with SQL text, without Spark: which characters stand outside quoted literals."""

from collections.abc import Iterator


def unquoted(text: str) -> Iterator[tuple[int, str]]:
    """Yield (index, character) for every character outside '...', "..." and `...` (backslash escapes honoured).

    A quote left open is reported last as (len(text), that quote character).
    """
    quote, i = None, 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\" and quote != "`":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in ("'", '"', "`"):
            quote = ch
        else:
            yield i, ch
        i += 1
    if quote:
        yield len(text), quote
