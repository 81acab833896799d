"""Credentials and private hosts never leave the repository: every text doctune builds from a repository passes
through :func:`scrub`, which replaces what it finds with ``<REDACTED>`` and counts it by kind (never the value).

Two layers. doctune's own rules come first because they know where a secret *ends* (a whole PEM block, also a
truncated one; the value of an unquoted ``.env``/YAML/INI assignment; a connection string's key) and cover formats
detect-secrets 1.5 does not know (fine-grained GitHub, Hugging Face, PyPI, npm and Google keys, Azure, Slack
webhooks, Authorization headers). Then Yelp's detect-secrets scans what is left with all its plugins (keyword,
base64/hex entropy, the vendor formats) and its false-positive filters. A finding it cannot place exactly (some
plugins report only a prefix such as ``ghp``) costs its whole line: when unsure, the text goes, not the secret.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

REDACTED = "<REDACTED>"

# Names of settings that hold secrets, as keys of assignments in code, .env, YAML, INI and JSON.
_SECRET_NAME = r"[A-Za-z0-9_.-]*(?:password|passwd|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key|auth[_-]?key|private[_-]?key|credentials?)[A-Za-z0-9_.-]*"  # noqa: E501
_ASSIGNMENT = re.compile(
    rf"""(?ix)(?<![\w.-])(?P<key>{_SECRET_NAME})(?P<sep>["']?\s*(?::|=|:=|=>)\s*)
    (?: (?P<quote>["'])(?P<quoted>[^"'\n]{{4,}}?)(?P=quote) | (?P<bare>[^\s"',;)\]}}\\]{{4,}}) )"""
)
# An unquoted value that is code (a name, attribute, call or subscript without digits) or a placeholder.
_NOT_A_VALUE = re.compile(
    r"""(?x)^(?: [A-Za-z_][A-Za-z_.]*(?:[(\[].*)? | [A-Za-z_][\w.]*[(\[].* | [<{$%*].* | .*[{}]{2}.*
    | (?i:none|null|true|false|nil|str|bytes|int|optional|required|changeme|example|your[-_].*|x{4,}|\*+) )$"""
)
_QUOTED_PLACEHOLDER = re.compile(r"(?i)^(?:[<{$%*].*|.*\{\{.*|x{4,}|\*+|your[-_ ].*|change[-_ ]?me|example|\.\.\.)$")

# Formats with a known prefix or shape, replaced as a whole.
TOKEN_RULES: dict[str, re.Pattern[str]] = {
    "aws access key": re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),
    "github token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})"),
    "gitlab token": re.compile(r"\bgl(?:pat|dt|rt|ptt|cbt|soat|ffct)-[A-Za-z0-9_-]{20,}"),
    "hugging face token": re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),
    "pypi token": re.compile(r"\bpypi-[A-Za-z0-9_-]{50,}"),
    "npm token": re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"),
    "stripe key": re.compile(r"\b[spr]k_(?:live|test)_[A-Za-z0-9]{16,}"),
    "api key": re.compile(r"\b(?:sk|pk|rk)-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"),
    "google api key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}"),
    "slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "slack webhook": re.compile(r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]+"),
    "jwt": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    "private host": re.compile(r"\b[a-z0-9.-]+\.(?:internal|corp|intranet|lan)\b(?::\d+)?", re.I),
}
# Rules that keep a prefix (what kind of thing it was) and replace only the secret part, group "secret".
VALUE_RULES: dict[str, re.Pattern[str]] = {
    "credentials in url": re.compile(r"(?<=://)(?P<secret>[^/\s:@]+:[^/\s@]+)@"),
    "azure key": re.compile(r"(?i)\b(?:AccountKey|SharedAccessKey|SharedAccessSignature)=(?P<secret>[^;\s\"']+)"),
    "azure sas signature": re.compile(r"[?&]sig=(?P<secret>[A-Za-z0-9%+/=]{16,})"),
    "authorization header": re.compile(
        r"(?i)\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?(?:bearer|basic|token|digest|negotiate)?\s*"
        r"(?P<secret>[A-Za-z0-9._~+/=-]{8,})"
    ),
    "bearer token": re.compile(r"(?i)\bbearer\s+(?P<secret>[A-Za-z0-9._~+/-]{20,}=*)"),
}
_KEY_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----")
_KEY_BODY = re.compile(r"^\s*[A-Za-z0-9+/=]{16,}\s*$")
_KEY_HEADER = re.compile(r"^\s*[A-Za-z-]+: .*$")


def _private_keys(text: str, found: Counter[str]) -> str:
    """Whole PEM and PGP private-key blocks, also truncated ones: a block with no END line ends at the first line
    that is not key material (a blank line may only separate PGP's header lines from the body)."""
    while match := _KEY_BEGIN.search(text):
        end_line = f"-----END {match[1]}-----"
        end = text.find(end_line, match.end())
        if end >= 0:
            end += len(end_line)
        else:
            end, body = match.end(), False
            for line in text[match.end() :].split("\n")[1:]:
                if _KEY_BODY.match(line):
                    body = True
                elif not (_KEY_HEADER.match(line) or (not line.strip() and not body)):
                    break
                end += len(line) + 1
        text = text[: match.start()] + REDACTED + text[end:]
        found["private key"] += 1
    return text


def _assignments(text: str, found: Counter[str]) -> str:
    def replace(m: re.Match[str]) -> str:
        quoted, bare = m["quoted"], m["bare"]
        value = quoted if quoted is not None else bare
        if REDACTED in value or (quoted is not None and _QUOTED_PLACEHOLDER.match(value)):
            return m[0]
        if bare is not None and _NOT_A_VALUE.match(bare):
            return m[0]
        found["secret assignment"] += 1
        quote = m["quote"] or ""
        return f"{m['key']}{m['sep']}{quote}{REDACTED}{quote}"

    return _ASSIGNMENT.sub(replace, text)


@functools.cache
def _detect_secrets_configured() -> Callable[..., Any]:
    """detect-secrets keeps its settings globally; doctune is its only user in the process, so all plugins and the
    default filters are switched on once."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.core.scan import _process_line_based_plugins
    from detect_secrets.settings import cache_bust, configure_settings_from_baseline

    cache_bust()
    plugins: dict[str, type] = get_mapping_from_secret_type_to_class()
    names = [plugin.__name__ for plugin in plugins.values()]
    configure_settings_from_baseline({"plugins_used": [{"name": name} for name in names]})
    return _process_line_based_plugins


def _detect_secrets(text: str, filename: str, found: Counter[str]) -> str:
    scan = _detect_secrets_configured()
    original = text.split("\n")
    lines = list(original)
    for secret in scan(list(enumerate(original, 1)), filename=filename):
        index = secret.line_number - 1
        value = secret.secret_value or ""
        if len(value) >= 6 and value in original[index]:
            if value not in lines[index]:
                continue  # another plugin's finding of the same value, already replaced
            lines[index] = lines[index].replace(value, REDACTED)
        else:
            line = original[index]
            lines[index] = line[: len(line) - len(line.lstrip())] + REDACTED
        found[secret.type.lower()] += 1
    return "\n".join(lines)


def scrub(text: str, filename: str = "text.md") -> tuple[str, Counter[str]]:
    """``text`` with every credential and private host replaced by ``<REDACTED>``, and what was removed, by kind.
    ``filename`` (its suffix) lets detect-secrets read assignments the way that file type writes them."""
    found: Counter[str] = Counter()
    text = _private_keys(text, found)
    for kind, pattern in VALUE_RULES.items():
        text, n = pattern.subn(lambda m: m[0].replace(m["secret"], REDACTED), text)
        found[kind] += n
    for kind, pattern in TOKEN_RULES.items():
        text, n = pattern.subn(REDACTED, text)
        found[kind] += n
    text = _assignments(text, found)
    text = _detect_secrets(text, filename, found)
    return text, +found
