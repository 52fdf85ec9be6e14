"""The secrets in a URL (a Redis URL's password: ``--cache-url``) and the URL as it may be shown.

The password is registered with ``errors.register_secret`` by whoever takes the URL in
(``CacheSettings``, ``RedisTier``), so ``redact`` removes it from any message; what dscall
prints or stores of the URL itself is ``public_url``'s form.
"""

from __future__ import annotations

from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit, urlunsplit


def url_secrets(url: str) -> list[str]:
    """The passwords in a Redis URL (its userinfo's, a ``password=`` query parameter's), as
    written and decoded."""
    parts = urlsplit(url)
    found = [parts.password] if parts.password else []
    found += [value for value in parse_qs(parts.query).get("password", []) if value]
    return [form for secret in found for form in {secret, unquote(secret)}]


def public_url(url: str) -> str:
    """``url`` as it may be shown: its password and ``password=`` parameter as ``***``."""
    if not url_secrets(url):
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        netloc = f"{user}:***@{host}"
    query = "&".join(
        f"{name}=***" if name == "password" else f"{name}={value}"
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
