"""The scrubber: every planted format is removed wherever it sits, and code that merely talks about secrets is
left alone."""

import pytest
from hostile_repo import PLANTED

from doctune.secrets import REDACTED, scrub


@pytest.mark.parametrize("secret,fragment", PLANTED.values(), ids=list(PLANTED))
@pytest.mark.parametrize("filename", ["docs/setup.md", "pkg/settings.py", "tests/test_client.py", "CHANGES.rst"])
def test_every_planted_format_is_removed(secret: str, fragment: str, filename: str) -> None:
    clean, found = scrub(f"Configure the client first.\n\n{secret}\n\nThen call it.", filename)
    assert fragment not in clean
    assert REDACTED in clean and sum(found.values()) >= 1
    assert clean.startswith("Configure the client first.") and clean.endswith("Then call it.")


CODE_ABOUT_SECRETS = """\
password = click.prompt("Password", hide_input=True)
token = tokens[0]
def login(password: str) -> None:
api_key: str | None = None
secret = os.environ["SECRET"]
    :param token: the token to use.
The password: is never stored.
self.token = token
headers = {"Authorization": f"Bearer {token}"}
Fixed in commit 3f2a9c1e7b3d4e8a9c6f1d2e3f4a5b6c7d8e9f01.
@click.password_option()
tokenize(text, max_tokens=512)
password_hash = hash_password(password)
secret_key=None
    token: Token
url = "https://docs.example.com/api?page=2"
assert out == "Password:\\ninterrupted\\n"
"""


def test_code_that_only_names_secrets_is_kept() -> None:
    clean, found = scrub(CODE_ABOUT_SECRETS, "pkg/auth.py")
    assert clean == CODE_ABOUT_SECRETS and not found


def test_a_truncated_key_block_ends_at_the_first_line_that_is_not_key_material() -> None:
    secret, fragment = PLANTED["truncated pem"]
    clean, found = scrub(f"{secret}\n\nAfter the key.", "docs/keys.md")
    assert clean == f"{REDACTED}\n\nAfter the key." and found == {"private key": 1}


def test_counts_name_the_kind_never_the_value() -> None:
    _, found = scrub(PLANTED["github classic"][0] + "\n" + PLANTED["dotenv unquoted"][0])
    assert found == {"github token": 1, "secret assignment": 1}
    assert not any(fragment in kind for kind in found for _, fragment in PLANTED.values())
