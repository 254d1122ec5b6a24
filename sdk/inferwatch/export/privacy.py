"""Privacy: tags and log attributes are scrubbed at one place before they leave the process.

Every tag (``iw.context(**tags)``, ``context.from_headers``, ``rec.tag``, ``monitor(tags_from=)``)
goes through `scrub_tags` once, when its scope or inference is created; every log attribute goes
through `Scrubber.attributes` in the structlog and stdlib bridges; log bodies and exception
messages go through `Scrubber.text`. One `Scrubber` is active at a time (``iw.configure``
installs it); before any configuration the default one applies.

Three rules, in this order, decide what a value becomes:

1. its key is listed in ``hash_tags``: a keyed HMAC-SHA256 of the value, truncated to 16 hex
   characters (`pseudonym`); stable for one key, unlinkable without it;
2. its key looks like a credential (password, token, secret, api key, authorization, cookie,
   session): the whole value is replaced by a marker such as ``[REDACTED:password]``;
3. otherwise the parts of a string value that look like e-mail addresses, bearer or basic
   credentials, JWTs, ``password=...`` assignments or ``user:password@`` in URLs are replaced by
   markers, and the rest of the string is kept.

A user hook ``scrub(key, value)`` then sees the result and returns the value to export (None:
drop the attribute). A marker names the rule that fired and never contains a character of what it
replaced. Decisions about keys are cached; a string without any character the default value
patterns need (``: = @ .`` or white space) skips them, results for short strings are memoised,
and each regular expression runs only on strings holding its trigger, in time linear in their
length (benchmarks/bench_privacy.py measures all of it).

>>> iw.configure(hash_tags=["user_id"], redact_values={"ssn": r"\\b\\d{3}-\\d{2}-\\d{4}\\b"})
>>> iw.privacy.pseudonym("u-123")   # what user_id="u-123" looks like in exported telemetry
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from inferwatch import semconv
from inferwatch.attributes import (
    AttributeValue,
    clean_value,
    qualified_name,
    stacktrace,
    valid_text,
)
from inferwatch.errors import contained

HASH_KEY_ENV: Final = "INFERWATCH_HASH_KEY"
"""Environment variable with the key for `pseudonym` when ``configure(hash_key=)`` is not given."""
MIN_HASH_KEY_BYTES: Final = 16
PSEUDONYM_HEX_CHARS: Final = 16

Hook = Callable[[str, Any], Any]
"""``scrub(key, value) -> value``: the value to export; None drops the attribute."""

# Keys are matched after normalisation: camelCase split, lower case, separators as "_".
DEFAULT_KEY_PATTERNS: Final[Mapping[str, str]] = {
    "password": r"(?:^|_)(?:password|passwd|passphrase|pwd)(?:_|$)",
    "secret": r"(?:^|_)(?:secrets?|credentials?)(?:_|$)",
    "api_key": r"(?:^|_)(?:api|access|private|secret)_?keys?(?:_|$)",
    # "token" alone or as a suffix: `max_tokens` and `token_count` are counts, not credentials.
    "token": r"(?:^|_|access|refresh|auth|bearer|csrf|xsrf|api)token$",
    "authorization": r"(?:^|_)(?:proxy_)?authorization(?:_|$)|(?:^|_)auth$",
    "cookie": r"(?:^|_)(?:set_)?cookies?(?:_|$)",
    # A session id, not `session_count` or `session_length`.
    "session": r"(?:^|_)session(?:_?id|_?key|_?token)?$",
}

_CREDENTIAL_WORDS = (
    r"pass(?:word|wd|phrase)?|pwd|secret|client[_-]?secret|"
    r"(?:access[_-]?|refresh[_-]?|auth[_-]?|api[_-]?|id[_-]?)?token|"
    r"api[_-]?key|access[_-]?key|session[_-]?id"
)


@dataclass(frozen=True, slots=True)
class _ValuePattern:
    """A rule for parts of string values: where it applies (triggers), what replaces a match."""

    kind: str
    regex: re.Pattern[str]
    replacement: str | Callable[[re.Match[str]], str]
    triggers: tuple[str, ...] = ()
    """Substrings a match must contain: without any of them the regex is not run."""

    def scrub(self, text: str) -> str:
        if self.triggers:
            for trigger in self.triggers:
                if trigger in text:
                    break
            else:
                return text
        return self.regex.sub(self.replacement, text)


def _marker(kind: str) -> str:
    return semconv.REDACTED.format(kind=kind)


SCRUB_ERROR: Final = _marker("scrub_error")
"""What is exported instead of a value whose scrubbing failed (the user hook raised)."""


# Ordered: credentials in URLs before e-mail addresses (``user:pw@host.com`` is not an address),
# authorization schemes before ``key=value`` credentials. Every quantifier is bounded or anchored
# on a literal, so a long string costs time linear in its length.
_DEFAULT_VALUE_PATTERNS: Final = (
    _ValuePattern(
        "url_credentials",
        re.compile(r"://[^\s/?#@:]{1,256}:[^\s/?#@]{1,256}@"),  # a literal first: fast scan
        f"://{_marker('url_credentials')}@",
        ("://",),
    ),
    _ValuePattern(
        "bearer",
        re.compile(r"(?i:\bbearer\s+)[A-Za-z0-9\-._~+/]{8,}=*"),
        _marker("bearer"),
        ("earer", "EARER"),
    ),
    _ValuePattern(
        "basic_auth",
        re.compile(r"(?i:\bbasic\s+)[A-Za-z0-9+/]{8,}={0,2}"),
        _marker("basic_auth"),
        ("asic", "ASIC"),
    ),
    _ValuePattern(
        "jwt",
        re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
        _marker("jwt"),
        ("eyJ",),
    ),
    _ValuePattern(
        "credential",
        re.compile(
            rf"(?i:\b(?P<lead>(?:{_CREDENTIAL_WORDS})\b[\"']?\s*[:=]\s*))"
            r"(?!\[REDACTED)(?:\"[^\"]*\"|'[^']*'|[^\s,;&'\"}\])]+)"
        ),
        rf"\g<lead>{_marker('credential')}",
        ("=", ":"),
    ),
    _ValuePattern(
        "email",
        re.compile(
            r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}"
            r"\.[A-Za-z]{2,24}\b"
        ),
        _marker("email"),
        ("@",),
    ),
)
DEFAULT_VALUE_KINDS: Final = tuple(p.kind for p in _DEFAULT_VALUE_PATTERNS)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[^a-z0-9]+")
_KIND = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
_MAX_CACHED = 4096
_MAX_CACHED_TEXT = 256
# Every default value pattern needs one of these: ':' (URLs, credentials), '=' (credentials),
# '@' (e-mail), '.' (JWT, e-mail) or white space (bearer, basic).
_NEEDED = frozenset(":=@." + "".join(c for c in map(chr, range(128)) if c.isspace()))
_MAX_DEPTH = 8
_KEEP: Final = "keep"
_HASH: Final = "hash"
_DROP: Any = object()


def normalize_key(key: str) -> str:
    """``"X-Api-Key"``, ``"apiKey"`` and ``"api.key"`` all become ``"x_api_key"``/``"api_key"``."""
    return _SEPARATORS.sub("_", _CAMEL.sub("_", key).lower()).strip("_")


# One random key per process (kept by forked workers, so they agree with each other): without a
# configured key, pseudonyms link requests within a process tree's life and not across restarts.
_PROCESS_KEY = os.urandom(32)


class Scrubber:
    """Decides what each tag and log attribute becomes; see the module docstring.

    >>> scrubber = Scrubber(hash_tags=["user_id"], hash_key=b"0123456789abcdef")
    >>> scrubber.tags({"user_id": "u-1", "password": "hunter2"})["password"]
    '[REDACTED:password]'

    Raises ValueError/TypeError for options that cannot work (``iw.configure`` turns them into
    `ConfigurationError`).
    """

    __slots__ = (
        "_hash_key",
        "_hash_tags",
        "_hook",
        "_key_patterns",
        "_keys",
        "_passthrough",
        "_pseudonyms",
        "_quick",
        "_texts",
        "_value_patterns",
        "defaults",
    )

    def __init__(
        self,
        *,
        defaults: bool = True,
        redact_keys: Sequence[str] = (),
        redact_values: Mapping[str, str] | None = None,
        scrub: Hook | None = None,
        hash_tags: Sequence[str] = (),
        hash_key: bytes | str | None = None,
    ) -> None:
        if isinstance(redact_keys, str) or isinstance(hash_tags, str):
            raise TypeError("redact_keys and hash_tags are lists of strings, not one string")
        if scrub is not None and not callable(scrub):
            raise TypeError(f"scrub must be a callable (key, value) -> value, got {scrub!r}")
        self.defaults = bool(defaults)
        self._key_patterns: list[tuple[re.Pattern[str], str, bool]] = []
        if self.defaults:
            self._key_patterns += [
                (re.compile(p), _marker(kind), True) for kind, p in DEFAULT_KEY_PATTERNS.items()
            ]
        self._key_patterns += [
            (_compile(p, "redact_keys", re.IGNORECASE), _marker("custom"), False)
            for p in redact_keys
        ]
        self._value_patterns: list[_ValuePattern] = (
            list(_DEFAULT_VALUE_PATTERNS) if self.defaults else []
        )
        for kind, pattern in (redact_values or {}).items():
            if not isinstance(kind, str) or not _KIND.match(kind):
                raise ValueError(
                    f"redact_values name {kind!r} must be 1-32 characters of a-z, 0-9, '_', '.', "
                    "'-' (it is shown in the marker that replaces a match)"
                )
            regex = _compile(pattern, f"redact_values[{kind!r}]")
            if regex.search("") is not None:
                raise ValueError(f"redact_values[{kind!r}] matches the empty string")
            self._value_patterns.append(_ValuePattern(kind, regex, _replacer(_marker(kind))))
        self._hash_tags = frozenset(_tag_names(hash_tags))
        self._hash_key = _hash_key(hash_key) if hash_key is not None else _PROCESS_KEY
        self._hook = scrub
        self._keys: dict[str, str] = {}
        self._texts: dict[str, str] = {}
        self._pseudonyms: dict[str, str] = {}
        # Only the default value patterns: a string without any character they need is clean.
        self._quick = self.defaults and not redact_values
        self._passthrough = not (self._key_patterns or self._value_patterns) and not (
            self._hash_tags or scrub
        )

    # -- what callers use ----------------------------------------------------------------------

    def tags(self, tags: Mapping[Any, Any]) -> dict[str, AttributeValue]:
        """Tags as exported: keys as strings, values cleaned for OTLP, then scrubbed."""
        if self._passthrough:
            return {_key(k): clean_value(v) for k, v in tags.items()}
        out: dict[str, AttributeValue] = {}
        keys, hook = self._keys, self._hook
        for k, v in tags.items():  # `_scrub`, unrolled: this runs for every request
            key = k if type(k) is str and k.isascii() else _key(k)
            value = clean_value(v)
            action = keys.get(key) or self._decide(key)
            if action is _KEEP:
                if type(value) is str:
                    value = self.text(value)
            elif action is _HASH:
                value = self.pseudonym(value)
            else:
                value = action
            if hook is not None:
                value = self._call_hook(key, value)
                if value is _DROP:
                    continue
            out[key] = value
        return out

    def value(self, key: str, value: Any) -> AttributeValue | None:
        """One tag value as exported (None: the hook dropped it)."""
        if self._passthrough:
            return clean_value(value)
        scrubbed = self._scrub(key, clean_value(value))
        return None if scrubbed is _DROP else scrubbed

    def attributes(
        self, attributes: Mapping[str, Any], scrubbed: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Log attributes as exported; nested maps and lists are scrubbed all the way down.

        ``scrubbed`` holds values already scrubbed (the scope's tags, added to every record):
        an attribute that is that very object passes as it is, so a pseudonym is not hashed twice.
        """
        if self._passthrough:
            return dict(attributes)
        out: dict[str, Any] = {}
        keys, hook, trusted = self._keys, self._hook, scrubbed or {}
        for k, v in attributes.items():  # `_scrub`, unrolled: this runs for every log record
            key = k if type(k) is str and k.isascii() else _key(k)
            if trusted.get(key, _DROP) is v:
                out[key] = v
                continue
            action = keys.get(key) or self._decide(key)
            if action is _KEEP:
                kind = type(v)
                if kind is str:
                    value = self.text(v if v.isascii() else valid_text(v))
                elif kind is int or kind is float or kind is bool or v is None:
                    value = v
                else:
                    value = self._values(key, v, 0)
            elif action is _HASH:
                value = self.pseudonym(v)
            else:
                value = action
            if hook is not None:
                value = self._call_hook(key, value)
                if value is _DROP:
                    continue
            out[key] = value
        return out

    def log(
        self,
        attributes: Mapping[str, Any],
        body: Any,
        scrubbed: Mapping[str, Any] | None = None,
        exception: BaseException | None = None,
    ) -> tuple[dict[str, Any], Any]:
        """A log record's attributes and body as exported: both log bridges come here.

        The exception's attributes are added after the hook, scrubbed: left out, the OTel SDK
        would fill them in from the exception with its raw text.
        """
        out = self.attributes(attributes, scrubbed)
        if exception is not None:
            out.update(self.exception_attributes(exception))
        return out, self.text(body) if type(body) is str else body

    def text(self, text: str) -> str:
        """A string with the parts that look like credentials or e-mail addresses replaced."""
        if self._quick and text.isascii() and _NEEDED.isdisjoint(text):
            return text
        cached = self._texts.get(text)
        if cached is not None:
            return cached
        scrubbed = valid_text(text)  # bodies and exception text arrive here uncleaned
        for pattern in self._value_patterns:
            scrubbed = pattern.scrub(scrubbed)
        _remember(self._texts, text, scrubbed)
        return scrubbed

    def pseudonym(self, value: Any) -> str:
        """The keyed hash a ``hash_tags`` value is exported as (16 hex characters)."""
        cleaned = clean_value(value)
        text = cleaned if type(cleaned) is str else str(cleaned)
        cached = self._pseudonyms.get(text)
        if cached is None:
            digest = hmac.digest(self._hash_key, text.encode("utf-8", "surrogatepass"), "sha256")
            cached = digest[: PSEUDONYM_HEX_CHARS // 2].hex()
            _remember(self._pseudonyms, text, cached)
        return cached

    def exception_attributes(self, exc: BaseException) -> dict[str, str]:
        """``exception.type``/``.message``/``.stacktrace`` of an exception, message scrubbed."""
        try:
            message = str(exc)
        except Exception:
            message = f"<unprintable {type(exc).__name__}>"
        try:
            stack = stacktrace(exc)
        except Exception:
            stack = ""
        return {
            semconv.EXCEPTION_TYPE: qualified_name(type(exc)),
            semconv.EXCEPTION_MESSAGE: self.text(message),
            semconv.EXCEPTION_STACKTRACE: self.text(stack),
        }

    # -- internals -----------------------------------------------------------------------------

    def _scrub(self, key: str, value: Any, depth: int = 0) -> Any:
        action = self._keys.get(key)
        if action is None:
            action = self._decide(key)
        if action is _KEEP:
            value = self._values(key, value, depth)
        elif action is _HASH:
            value = self.pseudonym(value)
        else:
            value = action
        if self._hook is not None and depth == 0:
            return self._call_hook(key, value)
        return value

    def _values(self, key: str, value: Any, depth: int) -> Any:
        kind = type(value)
        if kind is str:
            value = valid_text(value)
            return self.text(value) if self._value_patterns else value
        if kind is bool or kind is int or kind is float or value is None:
            return value
        if depth >= _MAX_DEPTH:
            return self.text(str(value))
        if isinstance(value, Mapping):
            nested = {}
            for k, v in value.items():
                name = _key(k)
                scrubbed = self._scrub(name, v, depth + 1)
                nested[name] = scrubbed
            return nested
        if isinstance(value, list | tuple):
            return [self._values(key, item, depth + 1) for item in value]
        if isinstance(value, str):
            return self.text(valid_text(str(value)))
        return value

    def _decide(self, key: str) -> str:
        if key in self._hash_tags:
            action = _HASH
        else:
            action = _KEEP
            normalized = normalize_key(key)
            for regex, marker, on_normalized in self._key_patterns:
                if regex.search(normalized if on_normalized else key):
                    action = marker
                    break
        if len(self._keys) < _MAX_CACHED:
            self._keys[key] = action
        return action

    def _call_hook(self, key: str, value: Any) -> Any:
        assert self._hook is not None
        try:
            result = self._hook(key, value)
        except Exception as exc:
            contained.error("privacy.scrub", exc)
            return SCRUB_ERROR  # fail closed: the value is not exported
        return _DROP if result is None else result


def _remember(cache: dict[str, str], key: str, value: str) -> None:
    """Bounded memo of short strings: repeated tag values skip the work; a flood cannot grow it."""
    if len(key) <= _MAX_CACHED_TEXT:
        if len(cache) >= _MAX_CACHED:
            cache.clear()
        cache[key] = value


def _key(key: Any) -> str:
    return valid_text(key if type(key) is str else str(key))


def _replacer(marker: str) -> Callable[[re.Match[str]], str]:
    """Replaces a non-empty match by ``marker``; an empty one (``\\b``, ``x*``) changes nothing."""

    def replace(match: re.Match[str]) -> str:
        return marker if match.group() else ""

    return replace


def _compile(pattern: Any, what: str, flags: int = 0) -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise TypeError(f"{what}: a pattern must be a string, got {pattern!r}")
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise ValueError(f"{what}: invalid regular expression {pattern!r}: {exc}") from None


def _tag_names(names: Sequence[str]) -> list[str]:
    out = []
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"hash_tags: tag names must be non-empty strings, got {name!r}")
        out.append(name)
    return out


def _hash_key(key: bytes | str) -> bytes:
    data = key.encode() if isinstance(key, str) else key
    if not isinstance(data, bytes):
        raise TypeError("hash_key must be str or bytes")
    if len(data) < MIN_HASH_KEY_BYTES:
        raise ValueError(f"hash_key must be at least {MIN_HASH_KEY_BYTES} bytes long")
    return data


# -- the active scrubber -------------------------------------------------------------------------

_DEFAULT = Scrubber()
_active = _DEFAULT


def active() -> Scrubber:
    """The scrubber in use (``iw.configure`` installs one; the default one before that)."""
    return _active


def install(scrubber: Scrubber | None) -> None:
    """Use ``scrubber`` from now on; None restores the default one."""
    global _active
    _active = _DEFAULT if scrubber is None else scrubber


def scrub_tags(tags: Mapping[Any, Any]) -> dict[str, AttributeValue]:
    """Tags as exported by the active scrubber (the single way tags enter telemetry)."""
    return _active.tags(tags)


def scrub_request_id(request_id: Any) -> str | None:
    """A request id as exported (ids arrive in headers and baggage: untrusted), or None."""
    if request_id is None or request_id == "":
        return None
    value = _active.value(semconv.ML_REQUEST_ID, str(request_id))
    return None if value is None or value == "" else str(value)


def pseudonym(value: Any) -> str:
    """What a ``hash_tags`` value is exported as with the active key; for looking a user up.

    >>> spans.slice(by=["region"], where={"user_id": iw.privacy.pseudonym("u-123")})
    """
    return _active.pseudonym(value)


__all__ = [
    "DEFAULT_KEY_PATTERNS",
    "DEFAULT_VALUE_KINDS",
    "HASH_KEY_ENV",
    "SCRUB_ERROR",
    "Hook",
    "Scrubber",
    "active",
    "install",
    "normalize_key",
    "pseudonym",
    "scrub_request_id",
    "scrub_tags",
]
